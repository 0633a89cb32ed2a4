/* Services: "Set state" runs POST /v1/services/{slug}/state with the reason and shows the new state. */
(function () {
  "use strict";
  Array.prototype.forEach.call(document.querySelectorAll(".state-form"), function (form) {
    var row = form.closest(".service");
    var slug = row.getAttribute("data-slug");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var select = form.querySelector("select");
      var out = form.querySelector(".form-result");
      var button = form.querySelector("button");
      button.disabled = true;
      out.textContent = "Saving…";
      BC.api("POST", "/v1/services/" + encodeURIComponent(slug) + "/state", {
        state: select.value,
        reason: form.querySelector("input[name=reason]").value
      }).then(function (r) {
        button.disabled = false;
        if (!r.ok) { out.textContent = "Not changed: " + BC.errorText(r); return; }
        row.querySelector(".service-state").textContent = select.options[select.selectedIndex].text;
        out.textContent = "Saved.";
      });
    });
  });
})();
