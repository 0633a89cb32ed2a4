/* Audit log (admins): GET /v1/audit with the filters, newest first, paged by cursor; before/after shown. */
(function () {
  "use strict";
  var el = BC.el;
  var $ = function (x) { return document.getElementById(x); };
  var form = $("audit-filters"), body = document.querySelector("#audit-table tbody");
  var cursor = null;

  function query() {
    var params = new URLSearchParams();
    Array.prototype.forEach.call(form.elements, function (input) {
      if (!input.name || !input.value.trim()) { return; }
      var v = input.value.trim();
      if (input.type === "datetime-local") { v = v + (v.length === 16 ? ":00" : "") + "Z"; }
      params.set(input.name, v);
    });
    params.set("limit", "50");
    if (cursor) { params.set("cursor", cursor); }
    return params.toString();
  }
  function pretty(value) { return value === null || value === undefined ? "" : JSON.stringify(value, null, 1); }
  function load(append) {
    BC.show($("audit-error"), "");
    BC.api("GET", "/v1/audit?" + query()).then(function (r) {
      if (!r.ok) { BC.show($("audit-error"), BC.errorText(r)); return; }
      if (!append) { BC.clear(body); }
      r.data.items.forEach(function (e) {
        var details = [el("pre", { text: pretty(e.detail) })];
        if (e.before || e.after) {
          details.push(el("details", {}, [el("summary", { text: "Before and after" }),
            el("div", { "class": "row2" }, [el("pre", { text: "before: " + pretty(e.before) }), el("pre", { text: "after: " + pretty(e.after) })])]));
        }
        body.appendChild(el("tr", {}, [el("td", { text: e.at.replace("T", " ").slice(0, 19) }), el("td", { text: e.actor }),
          el("td", { text: e.action }), el("td", { text: e.target_type + " " + e.target_id }), el("td", {}, details)]));
      });
      cursor = r.data.next_cursor;
      $("more").hidden = !cursor;
      $("audit-status").textContent = body.children.length + " entries shown.";
    });
  }
  form.addEventListener("submit", function (e) { e.preventDefault(); cursor = null; load(false); });
  $("more").addEventListener("click", function () { load(true); });
  load(false);
})();
