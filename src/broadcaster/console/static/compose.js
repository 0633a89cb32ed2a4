/* The compose form: one form for a new incident, a new update, a draft, a correction or a retraction.
   Live preview (debounced POST /v1/preview) side by side per channel; Save draft, Test send, Publish or
   Request approval through the /v1 API. */
(function () {
  "use strict";
  var el = BC.el;
  var cfg = BC.pageData();
  var draft = cfg.draft || {};
  var state = { incidentId: cfg.incident_id, updateId: cfg.update_id, channelsTouched: draft.channels !== null && draft.channels !== undefined,
                lastPreview: null, seq: 0 };
  var $ = function (id) { return document.getElementById(id); };
  var form = $("compose-form");
  var statusBox = $("form-status");
  var errorBox = $("form-error");

  /* --- links and translations (repeatable rows) --- */
  var rowCount = 0;
  function removeButton(row, label) {
    var b = el("button", { type: "button", "class": "link", text: "Remove", "aria-label": "Remove " + label });
    b.addEventListener("click", function () { row.parentNode.removeChild(row); schedule(); });
    return b;
  }
  function addLink(link) {
    rowCount += 1;
    var n = rowCount;
    var row = el("div", { "class": "row2 link-row" }, [
      el("div", { "class": "field" }, [el("label", { "for": "link-title-" + n, text: "Link title" }),
        el("input", { id: "link-title-" + n, "class": "link-title", maxlength: "200", value: (link && link.title) || "" })]),
      el("div", { "class": "field" }, [el("label", { "for": "link-url-" + n, text: "URL" }),
        el("input", { id: "link-url-" + n, "class": "link-url", type: "url", value: (link && link.url) || "" })])
    ]);
    row.appendChild(removeButton(row, "link " + n));
    $("links").appendChild(row);
  }
  function addTranslation(locale, tr) {
    rowCount += 1;
    var n = rowCount;
    var row = el("div", { "class": "translation-row" }, [
      el("div", { "class": "field" }, [el("label", { "for": "tr-locale-" + n, text: "Language (e.g. fr)" }),
        el("input", { id: "tr-locale-" + n, "class": "tr-locale", maxlength: "16", value: locale || "" })]),
      el("div", { "class": "field" }, [el("label", { "for": "tr-body-" + n, text: "Translated message" }),
        el("textarea", { id: "tr-body-" + n, "class": "tr-body", rows: "3", maxlength: "10000" }, [(tr && tr.body) || ""])]),
      el("div", { "class": "field" }, [el("label", { "for": "tr-summary-" + n, text: "Translated summary" }),
        el("input", { id: "tr-summary-" + n, "class": "tr-summary", maxlength: "320", value: (tr && tr.summary) || "" })])
    ]);
    row.appendChild(removeButton(row, "translation " + n));
    $("translations").appendChild(row);
  }

  /* --- channels --- */
  function category() { return $("category") ? $("category").value : cfg.category; }
  function severity() { return $("severity") ? $("severity").value : cfg.severity; }
  function routed() {
    var byCat = (cfg.routing || {})[category()] || {};
    return byCat[severity()] || [];
  }
  function renderChannels(selected) {
    var box = $("channels");
    BC.clear(box);
    var names = (cfg.choices || []).map(function (c) { return c.name; });
    selected.forEach(function (s) { if (names.indexOf(s) === -1) { cfg.choices.push({ name: s, label: s, configured: false, kind: s }); } });
    (cfg.choices || []).forEach(function (c) {
      var id = "ch-" + c.name;
      var input = el("input", { type: "checkbox", id: id, name: "channels", value: c.name, checked: selected.indexOf(c.name) !== -1 });
      input.addEventListener("change", function () { state.channelsTouched = true; schedule(); });
      box.appendChild(el("div", { "class": "check" }, [input, el("label", { "for": id, text: c.label + (c.configured ? "" : " (not configured)") })]));
    });
  }
  function selectedChannels() {
    return Array.prototype.map.call(document.querySelectorAll("#channels input:checked"), function (i) { return i.value; });
  }

  /* --- the update as the API takes it --- */
  function splitList(value) { return value.split(",").map(function (s) { return s.trim(); }).filter(Boolean); }
  function payload(test) {
    var links = Array.prototype.map.call(document.querySelectorAll(".link-row"), function (row) {
      return { title: row.querySelector(".link-title").value.trim(), url: row.querySelector(".link-url").value.trim() };
    }).filter(function (l) { return l.title || l.url; });
    var translations = {};
    Array.prototype.forEach.call(document.querySelectorAll(".translation-row"), function (row) {
      var loc = row.querySelector(".tr-locale").value.trim();
      var body = row.querySelector(".tr-body").value;
      if (loc && body.trim()) { translations[loc] = { body: body, summary: row.querySelector(".tr-summary").value }; }
    });
    var update = { body: $("body").value, summary: $("summary").value, links: links, translations: translations, test: !!test };
    if (draft.corrects && !test) { /* a test send is a plain test update: it never targets the original's audience */
      update.kind = draft.kind;
      update.corrects = draft.corrects;
    } else {
      if (state.channelsTouched) { update.channels = selectedChannels(); }
      var tags = splitList($("aud-tags").value), locales = splitList($("aud-locales").value);
      if (tags.length || locales.length) {
        update.audience = {};
        if (tags.length) { update.audience.tags = tags; }
        if (locales.length) { update.audience.locales = locales; }
      }
    }
    if ($("status").value) { update.status = $("status").value; }
    return update;
  }
  function title() { return $("title") ? ($("title").value.trim() || "Untitled incident") : null; }

  /* --- live preview --- */
  function previewChannels() {
    /* the channels the preview shows: the fixed ones of a correction, else the selection, plus each social
       failover adapter so X, Mastodon and Bluesky posts can be compared (marked "failover only") */
    var names = draft.corrects ? (cfg.fixed_channels || []) : selectedChannels();
    var extra = {};
    if (names.indexOf("social") !== -1) {
      (cfg.choices || []).forEach(function (c) {
        if (c.kind === "social" && c.name !== "social" && names.indexOf(c.name) === -1) { extra[c.name] = "failover only"; }
      });
    }
    return { names: names.concat(Object.keys(extra)), extra: extra };
  }
  function preview() {
    if (!$("body").value.trim()) {
      $("preview-status").textContent = "Type a message to see each channel's preview.";
      return;
    }
    var update = payload(false);
    var chosen = previewChannels();
    update.channels = chosen.names;
    if (update.kind && update.kind !== "normal") { /* previewed like a normal update on the original's channels */
      delete update.kind; delete update.corrects;
    }
    var request = { update: update };
    if (state.incidentId) {
      request.incident_id = state.incidentId;
      request.severity = severity();
    } else {
      request.category = category();
      request.severity = severity();
      request.title = title();
    }
    var seq = ++state.seq;
    $("preview-status").textContent = "Updating preview…";
    BC.api("POST", "/v1/preview", request).then(function (result) {
      if (seq !== state.seq) { return; } /* a newer preview is on its way */
      if (!result.ok) {
        $("preview-status").textContent = "Preview unavailable: " + BC.errorText(result);
        return;
      }
      state.lastPreview = result.data;
      BC.renderPreview($("preview"), $("preview-warnings"), result.data, {
        palette: cfg.palette, title: $("title") ? title() : cfg.title,
        severity: severity(), extra: chosen.extra,
        status: { body: $("body").value, links: update.links, state: $("status").value || "Update" }
      });
      renderAudience(result.data, chosen.extra);
      updatePublishButton();
      var n = result.data.channels.length;
      $("preview-status").textContent = "Preview updated: " + n + (n === 1 ? " channel" : " channels") +
        ((result.data.warnings || []).length ? ", " + result.data.warnings.length + " warnings" : "") + ".";
    });
  }
  var schedule = BC.debounce(preview, 400);

  function renderAudience(data, extra) {
    var body = $("audience-sizes");
    BC.clear(body);
    data.channels.forEach(function (ch) {
      if (extra[ch.channel]) { return; }
      body.appendChild(el("tr", {}, [el("th", { scope: "row", text: ch.channel }), el("td", { text: BC.number(ch.recipients) }),
        el("td", { text: ch.eta ? ch.eta.text : "" })]));
    });
    if (!body.firstChild) { body.appendChild(el("tr", {}, [el("td", { colspan: "3", text: "No channels selected." })])); }
  }

  /* --- approval needed? (the server decides; this only names the button) --- */
  function highImpact() {
    var sevs = cfg.severities || [];
    if (cfg.approval_severity !== "none" && sevs.indexOf(severity()) >= sevs.indexOf(cfg.approval_severity)) { return true; }
    var max = 0;
    ((state.lastPreview || {}).channels || []).forEach(function (c) { max = Math.max(max, c.recipients || 0); });
    return cfg.approval_audience_threshold > 0 && max > cfg.approval_audience_threshold;
  }
  function updatePublishButton() {
    var button = $("publish"), help = $("publish-help");
    if (!cfg.can_publish) { /* an editor's live update always waits for an approver (the server decides so) */
      button.textContent = "Request approval";
      button.hidden = false;
      help.textContent = "An approver must approve exactly this content before it goes out.";
    } else if (highImpact()) {
      button.textContent = "Request approval";
      button.hidden = false;
      help.textContent = "High impact: a second person (an approver) must approve exactly this content before it goes out.";
    } else {
      button.textContent = "Publish";
      button.hidden = false;
      help.textContent = "";
    }
    renderSummary();
  }

  /* --- the send summary before a direct Publish (summary.js); a critical one needs the typed title --- */
  var summary = null;
  function renderSummary() {
    var box = $("send-summary");
    if (!box) { return; }
    var direct = $("publish").textContent === "Publish" && state.lastPreview;
    if (!direct) { BC.clear(box); summary = null; $("publish").disabled = false; return; }
    var typed = summary ? summary.confirm() : null;
    summary = BC.sendSummary(box, state.lastPreview, {
      title: $("title") ? title() : cfg.title, severity: severity(), approver: "you: no second person is needed",
      holdSeconds: cfg.hold_seconds, onChange: function () { $("publish").disabled = !summary.ready(); }
    });
    var input = box.querySelector(".confirm-input");
    if (input && typed) { input.value = typed; }
    $("publish").disabled = !summary.ready();
  }

  /* --- saving and sending --- */
  function busy(on) {
    ["save-draft", "test-send", "publish"].forEach(function (id) { $(id).disabled = on; });
    if (!on && summary && !summary.ready()) { $("publish").disabled = true; } /* a critical send: title first */
  }
  function fail(result) {
    BC.show(errorBox, BC.errorText(result));
    busy(false);
    return Promise.reject(result);
  }
  function ensureIncident() {
    if (state.incidentId) {
      if (draft.corrects || !$("category") || (category() === cfg.category && severity() === cfg.severity)) { return Promise.resolve(); }
      return BC.api("PATCH", "/v1/incidents/" + state.incidentId, { category: category(), severity: severity() }).then(function (r) {
        if (!r.ok) { return fail(r); }
        cfg.category = category(); cfg.severity = severity();
      });
    }
    return BC.api("POST", "/v1/incidents", { title: title(), category: category(), severity: severity() }).then(function (r) {
      if (!r.ok) { return fail(r); }
      state.incidentId = r.data.id;
      cfg.category = category(); cfg.severity = severity();
    });
  }
  function save(test) {
    BC.show(errorBox, "");
    busy(true);
    return ensureIncident().then(function () {
      var update = payload(test);
      if (state.updateId && !test) {
        var patch = Object.assign({}, update);
        delete patch.kind; delete patch.corrects;
        if (!("status" in patch)) { patch.status = null; }
        return BC.api("PATCH", "/v1/updates/" + state.updateId, patch).then(function (r) { return r.ok ? r.data : fail(r); });
      }
      return BC.api("POST", "/v1/incidents/" + state.incidentId + "/updates", update).then(function (r) {
        if (!r.ok) { return fail(r); }
        if (!test) { state.updateId = r.data.id; }
        return r.data;
      });
    });
  }
  function publish(update) {
    var body = !update.test && summary && summary.critical ? { confirm: summary.confirm() } : null;
    return BC.api("POST", "/v1/updates/" + update.id + "/publish", body).then(function (r) {
      if (!r.ok) { return fail(r); }
      return r;
    });
  }

  $("save-draft").addEventListener("click", function () {
    save(false).then(function (update) {
      busy(false);
      statusBox.textContent = "Draft saved (update " + update.id + ").";
      window.location.assign("/console/incidents/" + state.incidentId + "#update-" + update.id);
    }).catch(function () {});
  });
  $("test-send").addEventListener("click", function () {
    save(true).then(publish).then(function (r) {
      busy(false);
      var link = el("a", { href: "/console/broadcasts/" + r.data.broadcast_id, text: "TEST broadcast " + r.data.broadcast_id });
      BC.clear(statusBox);
      statusBox.appendChild(document.createTextNode("TEST sent to the test group only: "));
      statusBox.appendChild(link);
    }).catch(function () {});
  });
  $("publish").addEventListener("click", function () {
    save(false).then(publish).then(function (r) {
      if (r.status === 202) {
        window.location.assign("/console/incidents/" + state.incidentId + "?requested=" + r.data.update.id + "#update-" + r.data.update.id);
      } else if (r.data.broadcast_id) {
        window.location.assign("/console/broadcasts/" + r.data.broadcast_id);
      } else {
        window.location.assign("/console/incidents/" + state.incidentId);
      }
    }).catch(function () {});
  });

  /* --- start --- */
  (draft.links || []).forEach(addLink);
  Object.keys(draft.translations || {}).forEach(function (loc) { addTranslation(loc, draft.translations[loc]); });
  if (draft.audience) {
    $("aud-tags").value = (draft.audience.tags || []).join(", ");
    $("aud-locales").value = (draft.audience.locales || []).join(", ");
  }
  renderChannels(draft.corrects ? (cfg.fixed_channels || []) : (state.channelsTouched ? draft.channels : routed()));
  $("add-link").addEventListener("click", function () { addLink(); });
  $("add-translation").addEventListener("click", function () { addTranslation(); });
  if ($("reset-channels")) {
    $("reset-channels").addEventListener("click", function () { state.channelsTouched = false; renderChannels(routed()); schedule(); });
  }
  ["category", "severity"].forEach(function (id) {
    if ($(id)) {
      $(id).addEventListener("change", function () { if (!state.channelsTouched) { renderChannels(routed()); } updatePublishButton(); schedule(); });
    }
  });
  form.addEventListener("input", function (e) { if (e.target.name !== "channels") { schedule(); } });
  form.addEventListener("submit", function (e) { e.preventDefault(); });
  updatePublishButton();
  preview();
})();
