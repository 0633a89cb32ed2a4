/* Subscriber CSV import: POST /v1/subscribers/import (multipart), then poll GET /v1/imports/{id} for
   progress and page the per-row error report from /v1/imports/{id}/errors. */
(function () {
  "use strict";
  var el = BC.el;
  var $ = function (x) { return document.getElementById(x); };
  if (!$("upload")) { return; }
  var FINAL = { done: 1, failed: 1 };

  function showErrors(id, cursor) {
    var url = "/v1/imports/" + id + "/errors?limit=200" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : "");
    BC.api("GET", url).then(function (r) {
      if (!r.ok) { return; }
      var table = $("import-errors"), body = table.querySelector("tbody");
      if (!cursor) { BC.clear(body); }
      r.data.items.forEach(function (e) {
        body.appendChild(el("tr", {}, [el("td", { text: String(e.row) }), el("td", { text: e.field || "(row)" }), el("td", { text: e.reason })]));
      });
      table.hidden = !body.firstChild;
      if (r.data.next_cursor && body.children.length < 2000) { showErrors(id, r.data.next_cursor); }
    });
  }
  function poll(id) {
    BC.api("GET", "/v1/imports/" + id).then(function (r) {
      if (!r.ok) { BC.show($("import-error"), BC.errorText(r)); return; }
      var job = r.data;
      $("import-bar").value = job.progress || 0;
      var text = job.state + ": " + job.rows_done + (job.total_rows !== null ? " of " + job.total_rows : "") + " rows — " +
        job.created + " created, " + job.updated + " updated, " + job.rejected + " rejected";
      if (job.error) { text += ". " + job.error; }
      $("import-status").textContent = text + ".";
      if (FINAL[job.state]) {
        $("upload").disabled = false;
        if (job.rejected) { showErrors(id); }
      } else {
        window.setTimeout(function () { poll(id); }, 1000);
      }
    });
  }
  $("upload").addEventListener("click", function () {
    var file = $("csv-file").files[0];
    BC.show($("import-error"), "");
    if (!file) { BC.show($("import-error"), "Choose a CSV file first."); $("csv-file").focus(); return; }
    var data = new FormData();
    data.append("file", file);
    $("upload").disabled = true;
    $("import-errors").hidden = true;
    $("import-progress").hidden = false;
    $("import-status").textContent = "Uploading " + file.name + "…";
    BC.api("POST", "/v1/subscribers/import", data).then(function (r) {
      if (!r.ok) { $("upload").disabled = false; BC.show($("import-error"), BC.errorText(r)); $("import-status").textContent = ""; return; }
      poll(r.data.id);
    });
  });
})();
