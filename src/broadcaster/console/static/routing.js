/* Routing map page. Proposed versions: Approve sends the proposal's ETag in If-Match (POST
   /v1/routing-map/versions/{n}/approve); Reject sends a comment. Editor (admins): GET/PUT /v1/routing-map as YAML;
   a 422 names the field, shown beside the editor; a change that loosens safety comes back as a proposal (202). */
(function () {
  "use strict";
  var $ = function (x) { return document.getElementById(x); };

  Array.prototype.forEach.call(document.querySelectorAll(".map-proposal"), function (item) {
    var number = item.getAttribute("data-number");
    var etag = item.getAttribute("data-etag");
    var status = item.querySelector(".approval-status");
    var errorBox = item.querySelector(".error-box");
    var approve = item.querySelector(".approve");
    var reject = item.querySelector(".reject");
    var url = "/v1/routing-map/versions/" + number;

    function done(message) {
      status.textContent = message;
      if (approve) { approve.disabled = true; }
      reject.disabled = true;
    }
    if (approve) {
      approve.addEventListener("click", function () {
        BC.show(errorBox, "");
        approve.disabled = true;
        BC.api("POST", url + "/approve", null, { headers: { "If-Match": etag } }).then(function (r) {
          if (!r.ok) {
            var why = BC.errorText(r);
            if (r.status === 412 || (r.data && r.data.error === "not_pending")) {
              why = "This proposal changed or was replaced after you reviewed it, so your approval was not applied. " + why;
              done("");
            } else {
              approve.disabled = false;
            }
            BC.show(errorBox, why);
            return;
          }
          done("Approved: version " + number + " is now the routing map.");
          if (typeof loadEditor === "function") { loadEditor(); }
        });
      });
    }
    reject.addEventListener("click", function () {
      var box = item.querySelector(".reject-comment");
      var comment = box.value.trim();
      BC.show(errorBox, "");
      if (!comment) { BC.show(errorBox, "Say why you reject it (the proposer sees the comment)."); box.focus(); return; }
      BC.api("POST", url + "/reject", { comment: comment }).then(function (r) {
        if (!r.ok) { BC.show(errorBox, BC.errorText(r)); return; }
        done("Rejected: the routing map stays as it is.");
      });
    });
  });

  var text = $("yaml");
  var loadEditor = null;
  if (!text) { return; }
  var errors = $("yaml-errors"), status = $("yaml-status");

  loadEditor = function () {
    BC.show(errors, "");
    BC.api("GET", "/v1/routing-map?format=yaml", null, { accept: "application/yaml" }).then(function (r) {
      if (!r.ok) { BC.show(errors, BC.errorText(r)); return; }
      text.value = r.data;
      status.textContent = "Loaded the current routing map.";
    });
  };
  $("save").addEventListener("click", function () {
    BC.show(errors, "");
    status.textContent = "Saving…";
    BC.api("PUT", "/v1/routing-map", text.value, { contentType: "application/yaml" }).then(function (r) {
      if (!r.ok) {
        status.textContent = "";
        var d = r.data || {};
        BC.show(errors, "Not saved. " + (d.field ? "Field " + d.field + ": " : "") + (typeof d.detail === "string" ? d.detail : BC.errorText(r)));
        text.setAttribute("aria-invalid", "true");
        text.focus();
        return;
      }
      text.removeAttribute("aria-invalid");
      if (r.status === 202) {
        /* a proposal: show it (with its diff) at the top of the page */
        window.location.assign("/console/routing?proposed=" + r.data.number + "#version-" + r.data.number);
        return;
      }
      status.textContent = "Saved: " + r.data.categories.length + " categories.";
      loadEditor();
    });
  });
  $("reload").addEventListener("click", loadEditor);
  $("import-file").addEventListener("change", function (e) {
    var file = e.target.files[0];
    if (!file) { return; }
    file.text().then(function (content) {
      text.value = content;
      status.textContent = "Loaded " + file.name + " into the editor: not saved yet.";
    });
  });
  loadEditor();
})();
