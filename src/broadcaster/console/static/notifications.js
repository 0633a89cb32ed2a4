/* My notifications: how this person hears of approval requests besides the console
   (PUT /v1/users/me/notifications; the server checks the number and the URL). */
(function () {
  "use strict";
  var form = document.getElementById("notifications-form");
  if (!form) { return; }
  var errorBox = form.querySelector(".error-box");
  var status = form.querySelector(".save-status");
  var fields = { sms: form.querySelector("#notify-sms"), webhook: form.querySelector("#notify-webhook") };
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    BC.show(errorBox, "");
    status.textContent = "";
    Object.keys(fields).forEach(function (k) { fields[k].removeAttribute("aria-invalid"); });
    var body = {
      email: form.querySelector("#notify-email").checked,
      sms: fields.sms.value.trim() || null,
      webhook: fields.webhook.value.trim() || null
    };
    BC.api("PUT", "/v1/users/me/notifications", body).then(function (r) {
      if (!r.ok) {
        var field = r.data && r.data.field;
        if (fields[field]) { fields[field].setAttribute("aria-invalid", "true"); fields[field].focus(); }
        BC.show(errorBox, BC.errorText(r));
        return;
      }
      fields.sms.value = r.data.sms || "";
      fields.webhook.value = r.data.webhook || "";
      status.textContent = "Saved.";
    });
  });
})();
