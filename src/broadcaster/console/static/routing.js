/* Routing-map editor: GET/PUT /v1/routing-map as YAML; a 422 names the field, shown beside the editor. */
(function () {
  "use strict";
  var $ = function (x) { return document.getElementById(x); };
  var errors = $("yaml-errors"), status = $("yaml-status"), text = $("yaml");

  function load() {
    BC.show(errors, "");
    BC.api("GET", "/v1/routing-map?format=yaml", null, { accept: "application/yaml" }).then(function (r) {
      if (!r.ok) { BC.show(errors, BC.errorText(r)); return; }
      text.value = r.data;
      status.textContent = "Loaded the current routing map.";
    });
  }
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
      status.textContent = "Saved: " + r.data.categories.length + " categories.";
      load();
    });
  });
  $("reload").addEventListener("click", load);
  $("import-file").addEventListener("change", function (e) {
    var file = e.target.files[0];
    if (!file) { return; }
    file.text().then(function (content) {
      text.value = content;
      status.textContent = "Loaded " + file.name + " into the editor: not saved yet.";
    });
  });
  load();
})();
