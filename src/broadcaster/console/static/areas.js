/* Areas: Import sends the chosen GeoJSON file to POST /v1/areas/import (all or nothing) and reloads the list. */
(function () {
  "use strict";
  var form = document.getElementById("import-form");
  if (!form) { return; }
  var input = document.getElementById("geojson-file");
  var out = form.querySelector(".form-result");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var file = input.files && input.files[0];
    if (!file) { out.textContent = "Choose a GeoJSON file first."; input.setAttribute("aria-invalid", "true"); input.focus(); return; }
    input.removeAttribute("aria-invalid");
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    out.textContent = "Importing " + file.name + "…";
    file.text().then(function (text) {
      return BC.api("POST", "/v1/areas/import", text, { contentType: "application/geo+json" });
    }).then(function (r) {
      button.disabled = false;
      if (!r.ok) {
        out.textContent = "Nothing was imported: " + BC.errorText(r);
        input.setAttribute("aria-invalid", "true");
        return;
      }
      out.textContent = "Imported: " + r.data.created.length + " new, " + r.data.updated.length + " replaced. Loading…";
      window.location.reload();
    }, function () {
      button.disabled = false;
      out.textContent = "The file could not be read.";
    });
  });
})();
