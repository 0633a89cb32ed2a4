/* Channels: "Send a check" runs POST /v1/channels/{name}/check (admin) and shows the result. */
(function () {
  "use strict";
  Array.prototype.forEach.call(document.querySelectorAll(".check-button"), function (button) {
    var item = button.closest(".channel");
    var name = item.getAttribute("data-channel");
    button.addEventListener("click", function () {
      var out = item.querySelector(".last-check");
      button.disabled = true;
      out.textContent = "Checking…";
      BC.api("POST", "/v1/channels/" + encodeURIComponent(name) + "/check").then(function (r) {
        button.disabled = false;
        if (!r.ok) { out.textContent = "Check could not run: " + BC.errorText(r); return; }
        out.textContent = "Last check: " + (r.data.ok ? "OK" : "FAILED") + " just now — " + r.data.detail;
      });
    });
  });
})();
