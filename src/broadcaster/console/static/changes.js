/* A pending change request on the incident page: Approve sends the ETag of exactly the diff shown (If-Match:
   POST /v1/incidents/{id}/change-requests/{cid}/approve); Reject sends a comment (.../reject). */
(function () {
  "use strict";
  Array.prototype.forEach.call(document.querySelectorAll(".change-request"), function (box) {
    var url = "/v1/incidents/" + box.getAttribute("data-incident-id") + "/change-requests/" +
      box.getAttribute("data-change-id");
    var etag = box.getAttribute("data-etag") || "";
    var status = box.querySelector(".change-status");
    var errorBox = box.querySelector(".error-box");
    var approve = box.querySelector(".approve-change");
    var reject = box.querySelector(".reject-change");
    var comment = box.querySelector(".reject-comment");

    function done(message) {
      status.textContent = message;
      if (approve) { approve.disabled = true; }
      if (reject) { reject.disabled = true; }
    }
    function failed(r, button) {
      var why = BC.errorText(r);
      if (r.status === 412 || (r.data && r.data.error === "not_pending")) {
        why = "The incident or the change moved on after you looked at it, so nothing was applied: reload the " +
          "page to see what is waiting now. " + why;
        done("");
      } else {
        button.disabled = false;
      }
      BC.show(errorBox, why);
    }
    if (approve) {
      approve.addEventListener("click", function () {
        BC.show(errorBox, "");
        approve.disabled = true;
        BC.api("POST", url + "/approve", null, { headers: { "If-Match": etag } }).then(function (r) {
          if (!r.ok) { failed(r, approve); return; }
          done("Approved: the change is live.");
          window.location.reload();
        });
      });
    }
    if (reject) {
      reject.addEventListener("click", function () {
        var text = comment.value.trim();
        BC.show(errorBox, "");
        if (!text) { BC.show(errorBox, "Say why you reject it (the requester sees the comment)."); comment.focus(); return; }
        reject.disabled = true;
        BC.api("POST", url + "/reject", { comment: text }).then(function (r) {
          if (!r.ok) { failed(r, reject); return; }
          done("Rejected: the incident stays as it is.");
          window.location.reload();
        });
      });
    }
  });
})();
