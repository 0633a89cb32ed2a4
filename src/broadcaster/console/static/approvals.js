/* Approvals queue: each pending update's exact preview (POST /v1/updates/{id}/preview, with its content
   ETag); Approve sends that ETag in If-Match; Reject sends a comment (POST /v1/updates/{id}/reject). */
(function () {
  "use strict";
  var cfg = BC.pageData();
  function setup(item) {
    var id = item.getAttribute("data-update-id");
    var status = item.querySelector(".approval-status");
    var errorBox = item.querySelector(".error-box");
    var approve = item.querySelector(".approve");
    var reject = item.querySelector(".reject");
    var etag = null;

    status.textContent = "Loading the preview…";
    BC.api("POST", "/v1/updates/" + id + "/preview").then(function (r) {
      if (!r.ok) { status.textContent = ""; BC.show(errorBox, "Preview unavailable: " + BC.errorText(r)); return; }
      etag = r.headers.get("ETag") || r.data.etag;
      BC.renderPreview(item.querySelector(".preview-grid"), item.querySelector(".warnings"), r.data, {
        palette: cfg.palette, title: item.getAttribute("data-title"), severity: item.getAttribute("data-severity")
      });
      status.textContent = "Preview loaded (version " + etag + ").";
      if (approve) { approve.disabled = false; }
    });

    function done(message) {
      status.textContent = message;
      if (approve) { approve.disabled = true; }
      reject.disabled = true;
    }
    if (approve) {
      approve.addEventListener("click", function () {
        BC.show(errorBox, "");
        approve.disabled = true;
        BC.api("POST", "/v1/updates/" + id + "/approve", null, { headers: { "If-Match": etag || "" } }).then(function (r) {
          if (!r.ok) {
            var why = BC.errorText(r);
            if (r.status === 412 || (r.data && r.data.error === "not_pending")) {
              why = "This update changed after you reviewed it, so your approval was not applied. " + why;
              done("");
            } else {
              approve.disabled = false;
            }
            BC.show(errorBox, why);
            return;
          }
          done("Approved and sent.");
          if (r.data.broadcast_id) { window.location.assign("/console/broadcasts/" + r.data.broadcast_id); }
        });
      });
    }
    reject.addEventListener("click", function () {
      var comment = item.querySelector(".reject-comment").value.trim();
      BC.show(errorBox, "");
      if (!comment) { BC.show(errorBox, "Say why you reject it (the author sees the comment)."); item.querySelector(".reject-comment").focus(); return; }
      BC.api("POST", "/v1/updates/" + id + "/reject", { comment: comment }).then(function (r) {
        if (!r.ok) { BC.show(errorBox, BC.errorText(r)); return; }
        done("Rejected: the update is back with its author as a draft.");
      });
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll(".approval"), setup);
  /* a card notify.js added to the live queue */
  document.addEventListener("bc:approval-added", function (e) { setup(e.detail); });
})();
