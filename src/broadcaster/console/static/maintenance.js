/* Scheduled maintenance: Schedule (POST /v1/maintenance), Move (PATCH /v1/maintenance/{id}), Cancel
   (POST /v1/maintenance/{id}/cancel), and who each upcoming notice reaches on which channels, from
   GET /v1/maintenance/{id}/preview (exactly what approving the schedule approves). Times are UTC. */
(function () {
  "use strict";
  var el = BC.el;
  function result(box, text) { box.textContent = text; }
  /* a datetime-local value ("2026-12-08T10:00") read as UTC */
  function utc(value) { return value ? value + ":00Z" : null; }
  function people(n) { return BC.number(n) + (n === 1 ? " person" : " people"); }
  function markInvalid(form, r) {
    var parts = r.data && r.data.field ? String(r.data.field).replace(/\[\d+\]/g, "").split(".") : [];
    var node = null;
    parts.forEach(function (name) { node = node || (/^[a-z_]+$/.test(name) ? form.querySelector("[name=" + name + "]") : null); });
    if (node) { node.setAttribute("aria-invalid", "true"); node.focus(); }
  }

  var plan = document.getElementById("plan-form");
  if (plan) {
    plan.addEventListener("submit", function (event) {
      event.preventDefault();
      var out = plan.querySelector(".form-result");
      Array.prototype.forEach.call(plan.querySelectorAll("[aria-invalid]"), function (x) { x.removeAttribute("aria-invalid"); });
      var hours = plan.querySelector("[name=hours_before]").value.split(/[\s,;]+/).filter(Boolean).map(Number);
      var services = Array.prototype.map.call(plan.querySelectorAll("[name=services]:checked"), function (x) { return x.value; });
      if (!services.length) { result(out, "Choose at least one affected service."); plan.querySelector("[name=services]").focus(); return; }
      var button = plan.querySelector("button[type=submit]");
      button.disabled = true;
      result(out, "Scheduling…");
      BC.api("POST", "/v1/maintenance", {
        title: plan.querySelector("[name=title]").value.trim(),
        message: plan.querySelector("[name=message]").value.trim(),
        services: services,
        category: plan.querySelector("[name=category]").value,
        starts_at: utc(plan.querySelector("[name=starts_at]").value),
        ends_at: utc(plan.querySelector("[name=ends_at]").value),
        notify: {
          at_creation: plan.querySelector("[name=at_creation]").checked,
          at_start: plan.querySelector("[name=at_start]").checked,
          at_end: plan.querySelector("[name=at_end]").checked,
          hours_before: hours
        }
      }).then(function (r) {
        button.disabled = false;
        if (!r.ok) { result(out, "Not scheduled: " + BC.errorText(r)); markInvalid(plan, r); return; }
        result(out, r.data.approval.state === "pending" ? "Scheduled. Its notices wait for a second person." : "Scheduled.");
        window.location.reload();
      });
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll(".window"), function (card) {
    var id = card.getAttribute("data-id");
    var move = card.querySelector(".move-form");
    if (move) {
      move.addEventListener("submit", function (event) {
        event.preventDefault();
        var out = move.querySelector(".form-result");
        var body = {};
        ["starts_at", "ends_at"].forEach(function (name) {
          var input = move.querySelector("[name=" + name + "]");
          input.removeAttribute("aria-invalid");
          if (!input.disabled && input.value !== input.defaultValue) { body[name] = utc(input.value); }
        });
        if (!Object.keys(body).length) { result(out, "Change the start or the end first."); return; }
        var button = move.querySelector("button");
        button.disabled = true;
        result(out, "Moving…");
        BC.api("PATCH", "/v1/maintenance/" + id, body).then(function (r) {
          button.disabled = false;
          if (!r.ok) { result(out, "Not moved: " + BC.errorText(r)); markInvalid(move, r); return; }
          result(out, "Moved. People already told get a notice that it moved.");
          window.location.reload();
        });
      });
    }
    var cancel = card.querySelector(".cancel-window");
    if (cancel) {
      cancel.addEventListener("click", function () {
        if (!window.confirm("Cancel this maintenance? People already told get a notice that it will not happen.")) { return; }
        var out = card.querySelector(".cancel-result");
        cancel.disabled = true;
        result(out, "Cancelling…");
        BC.api("POST", "/v1/maintenance/" + id + "/cancel").then(function (r) {
          cancel.disabled = false;
          if (!r.ok) { result(out, "Not cancelled: " + BC.errorText(r)); return; }
          window.location.reload();
        });
      });
    }
    /* approve exactly the schedule previewed (If-Match: its ETag), or reject it with a comment */
    var etag = null;
    var decide = card.querySelector(".decide-form");
    if (decide) {
      var out = decide.querySelector(".form-result");
      decide.querySelector(".approve-window").addEventListener("click", function () {
        if (!etag) { result(out, "Still working out who the notices reach; try again in a moment."); return; }
        result(out, "Approving…");
        BC.api("POST", "/v1/maintenance/" + id + "/approve", null, { headers: { "If-Match": etag } }).then(function (r) {
          if (r.status === 412 || r.status === 409) { result(out, "The notices changed since this page loaded: reload and read them again."); return; }
          if (!r.ok) { result(out, "Not approved: " + BC.errorText(r)); return; }
          window.location.reload();
        });
      });
      decide.querySelector(".reject-window").addEventListener("click", function () {
        var comment = decide.querySelector("[name=comment]");
        if (!comment.value.trim()) { comment.setAttribute("aria-invalid", "true"); result(out, "Say why you reject them."); comment.focus(); return; }
        comment.removeAttribute("aria-invalid");
        BC.api("POST", "/v1/maintenance/" + id + "/reject", { comment: comment.value.trim() }).then(function (r) {
          if (!r.ok) { result(out, "Not rejected: " + BC.errorText(r)); return; }
          window.location.reload();
        });
      });
    }
    /* who each upcoming notice reaches, per channel */
    if (!card.querySelector(".upcoming td.audience .loading")) { return; }
    BC.api("GET", "/v1/maintenance/" + id + "/preview").then(function (r) {
      if (r.ok) { etag = r.data.etag; }
      var byNotice = {};
      if (r.ok) { (r.data.notices || []).forEach(function (n) { byNotice[n.notice_id] = n; }); }
      Array.prototype.forEach.call(card.querySelectorAll(".upcoming tr[data-notice]"), function (row) {
        var cell = row.querySelector("td.audience");
        if (!cell.querySelector(".loading")) { return; }
        BC.clear(cell);
        if (!r.ok) { cell.appendChild(el("span", { text: "Could not work it out: " + BC.errorText(r) })); return; }
        var n = byNotice[row.getAttribute("data-notice")];
        if (!n) { cell.appendChild(el("span", { text: "Not planned to be sent any more." })); return; }
        var channels = (n.preview.channels || []).filter(function (c) { return c.kind !== "status_page"; });
        var list = el("ul", { "class": "inline" }, channels.map(function (c) {
          var what = c.channel + ": " + (c.configured ? people(c.recipients || 0) : "not set up, nothing sent");
          return el("li", { text: what });
        }));
        cell.appendChild(channels.length ? list : el("span", { text: "No channel: shown on the status page only." }));
        if (n.high_impact) { cell.appendChild(el("p", { "class": "help", text: "Needs a second person: " + n.high_impact })); }
      });
    });
  });
})();
