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
  /* The picker offers one choice per kind of channel in the audience's words (Text message, E-mail ...); the
     API keeps its names: a kind ("sms") or, when the channel plan names one, a provider ("x"). state.sel holds
     the names chosen per kind, so a plan that names a provider keeps it. */
  state.sel = {};
  function kindOf(name) { return (cfg.kinds || {})[name] || null; }
  function groupOf(kind) { return (cfg.groups || []).filter(function (g) { return g.kind === kind; })[0]; }
  function providerText(g, names) {
    var own = names.filter(function (n) { return n !== g.kind; });
    if (own.length) { return "This update: only through " + own.join(", ") + " (from the channel plan)."; }
    if (!g.configured) { return "Not set up: no provider has credentials yet" + (g.installed.length ? " (" + g.installed.join(", ") + ")" : "") + ". Nothing goes out on it."; }
    var first = g.providers[0], rest = g.providers.slice(1);
    return "Sent through " + first + (rest.length ? "; if that fails, through " + rest.join(", then ") : "") + ".";
  }
  function syncAll() {
    var boxes = document.querySelectorAll("#channels input.group"), on = 0;
    Array.prototype.forEach.call(boxes, function (b) { if (b.checked) { on += 1; } });
    var all = $("ch-all");
    if (all) { all.checked = on > 0 && on === boxes.length; all.indeterminate = on > 0 && on < boxes.length; }
  }
  function check(id, label, checked, extra) {
    var input = el("input", { type: "checkbox", id: id, "class": extra.cls, value: extra.value || "", checked: checked,
                              "aria-describedby": extra.describedby || null });
    return el("div", { "class": "check" }, [input, el("label", { "for": id, text: label })]);
  }
  function renderChannels(selected) {
    var box = $("channels");
    BC.clear(box);
    state.sel = {};
    (selected || []).forEach(function (name) {
      var kind = kindOf(name);
      if (kind) { (state.sel[kind] = state.sel[kind] || []).push(name); }
    });
    box.appendChild(check("ch-all", "All channels", false, { cls: "all" }));
    (cfg.groups || []).forEach(function (g) {
      var names = state.sel[g.kind] || [];
      var detailId = "ch-" + g.kind + "-detail";
      var row = check("ch-" + g.kind, g.label + (g.configured ? "" : " (not set up)"), names.length > 0,
                      { cls: "group", value: g.kind, describedby: detailId });
      var wrap = el("div", { "class": "channel-choice" }, [row,
        el("details", { "class": "providers" }, [el("summary", { text: "How it is sent" }),
          el("p", { "class": "help", id: detailId, text: providerText(g, names) })])]);
      box.appendChild(wrap);
    });
    Array.prototype.forEach.call(box.querySelectorAll("input.group"), function (input) {
      input.addEventListener("change", function () {
        state.channelsTouched = true;
        if (!input.checked) { delete state.sel[input.value]; } else if (!state.sel[input.value]) { state.sel[input.value] = [input.value]; }
        syncAll(); schedule();
      });
    });
    $("ch-all").addEventListener("change", function () {
      var on = $("ch-all").checked;
      state.channelsTouched = true;
      Array.prototype.forEach.call(box.querySelectorAll("input.group"), function (input) {
        var g = groupOf(input.value);
        if (on && !input.checked && g && g.configured) { input.checked = true; state.sel[input.value] = [input.value]; }
        if (!on && input.checked) { input.checked = false; delete state.sel[input.value]; }
      });
      syncAll(); schedule();
    });
    syncAll();
  }
  function selectedChannels() {
    var out = [];
    Array.prototype.forEach.call(document.querySelectorAll("#channels input.group:checked"), function (i) {
      (state.sel[i.value] || [i.value]).forEach(function (n) { out.push(n); });
    });
    return out;
  }
  function channelLabel(name) {
    var g = groupOf(kindOf(name) || name);
    return g ? g.label : name;
  }

  /* --- a question ("Are you safe?") with its answers and escalation --- */
  var ESCALATIONS = {
    sms15: { steps: [{ after_minutes: 15, channel: "sms" }] },
    voice15: { steps: [{ after_minutes: 15, channel: "voice" }] },
    sms10voice30: { steps: [{ after_minutes: 10, channel: "sms" }, { after_minutes: 30, channel: "voice" }] }
  };
  function addOption(label, needsHelp) {
    if (!$("q-options") || document.querySelectorAll(".option-row").length >= 5) { return; }
    rowCount += 1;
    var n = rowCount;
    var row = el("div", { "class": "option-row" }, [
      el("div", { "class": "field" }, [el("label", { "for": "q-label-" + n, "class": "q-label-name", text: "Answer" }),
        el("input", { id: "q-label-" + n, "class": "q-label", maxlength: "40", value: label || "", autocomplete: "off" })]),
      el("div", { "class": "check" }, [el("input", { type: "checkbox", id: "q-help-" + n, "class": "q-help", checked: !!needsHelp }),
        el("label", { "for": "q-help-" + n, text: "Means they need help" })])
    ]);
    var remove = removeButton(row, "answer");
    row.appendChild(remove);
    $("q-options").appendChild(row);
    numberOptions();
  }
  function numberOptions() {
    Array.prototype.forEach.call(document.querySelectorAll(".option-row"), function (row, i) {
      row.querySelector(".q-label-name").textContent = "Answer " + (i + 1) + " (reply " + (i + 1) + ")";
    });
  }
  function question() {
    if (!$("ask") || !$("ask").checked) { return null; }
    var q = { text: $("q-text").value, options: Array.prototype.map.call(document.querySelectorAll(".option-row"), function (row) {
      return { label: row.querySelector(".q-label").value, needs_help: row.querySelector(".q-help").checked };
    }) };
    var esc = ESCALATIONS[$("q-escalation").value];
    if (esc) { q.escalation = esc; }
    return q;
  }
  function checkQuestion(errors) {
    if (!question()) { return; }
    if (!$("q-text").value.trim()) { errors.push({ node: $("q-text"), text: "Write the question" }); }
    Array.prototype.forEach.call(document.querySelectorAll(".option-row .q-label"), function (input) {
      if (!input.value.trim()) { errors.push({ node: input, text: "Write what this answer means" }); }
    });
    if (document.querySelectorAll(".option-row").length < 2) { errors.push({ node: $("add-option"), text: "Give at least two answers" }); }
  }
  /* how people answer on each channel, under its preview card */
  function howToAnswer(kind, q) {
    var keys = q.options.map(function (o, i) { return String(i + 1); });
    var list = keys.slice(0, -1).join(", ") + (keys.length > 1 ? " or " : "") + keys[keys.length - 1];
    if (kind === "sms") { return "People answer by replying " + list + "."; }
    if (kind === "voice") { return "People answer by pressing " + list + " on the phone."; }
    if (kind === "email") { return "People answer with one link per answer: " + q.options.map(function (o) { return o.label; }).join(" / ") + "."; }
    return "This channel cannot be answered: people answer by text message, call or e-mail.";
  }
  function showHowToAnswer(data) {
    var q = question();
    if (!q) { return; }
    (data.channels || []).forEach(function (ch) {
      var card = document.querySelector('#preview .preview-card[data-channel="' + ch.channel + '"]');
      if (card) { card.appendChild(el("p", { "class": "how-to-answer", text: howToAnswer(ch.kind, q) })); }
    });
  }

  /* --- an area: the subscribers inside it, with how many there are --- */
  function loadAreas() {
    if (!$("area") || draft.corrects) { return; }
    BC.api("GET", "/v1/areas").then(function (r) {
      if (!r.ok) { return; }
      (r.data || []).forEach(function (a) {
        $("area").appendChild(el("option", { value: a.slug, text: a.name }));
      });
      var chosen = draft.area && (draft.area.areas || [])[0];
      if (chosen) { $("area").value = chosen; areaCount(); }
    });
  }
  function areaCount() {
    var slug = $("area").value, box = $("area-count");
    if (!slug) { box.textContent = ""; return; }
    box.textContent = "Counting the people in this area…";
    BC.api("GET", "/v1/areas/" + encodeURIComponent(slug) + "/subscribers/count").then(function (r) {
      if ($("area").value !== slug) { return; }
      box.textContent = r.ok ? BC.number(r.data.subscribers) + (r.data.subscribers === 1 ? " subscriber lives" : " subscribers live") +
        " in this area. Only they get this update." : "The number of people in this area is not available.";
    });
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
    if (!draft.corrects || test) {
      var q = question();
      if (q) { update.question = q; } else if (state.updateId) { update.question = null; }
      if ($("area") && $("area").value) { update.area = { areas: [$("area").value] }; } else if (state.updateId) { update.area = null; }
    }
    return update;
  }
  /* the typed title (never a made-up one: an empty title is an error shown beside the field) */
  function title() { return $("title") ? $("title").value.trim() : null; }

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
    /* a link or an answer still being typed does not stop the preview (saving checks them) */
    update.links = update.links.filter(function (l) { return l.title && /^https?:\/\/\S+$/i.test(l.url); });
    if (update.question) {
      update.question.options = update.question.options.filter(function (o) { return o.label.trim(); });
      if (!update.question.text.trim() || update.question.options.length < 2) { delete update.question; }
    }
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
      request.title = title() || "New incident"; /* the preview only: nothing is stored */
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
        palette: cfg.palette, title: $("title") ? (title() || "(incident title)") : cfg.title,
        severity: severity(), extra: chosen.extra,
        status: { body: $("body").value, links: update.links, state: $("status").value || "Update" }
      });
      showHowToAnswer(result.data);
      renderAudience(result.data, chosen.extra);
      updatePublishButton();
      var n = result.data.channels.length;
      $("preview-status").textContent = "Preview updated: " + n + (n === 1 ? " channel" : " channels") +
        ((result.data.warnings || []).length ? ", " + result.data.warnings.length + " warnings" : "") + ".";
    });
  }
  var schedule = BC.debounce(preview, 400);

  /* the send summary above the buttons: who gets what, and how long reaching them takes */
  function renderSendLine(data, extra) {
    var people = 0, personal = [], other = [], slowest = 0;
    data.channels.forEach(function (ch) {
      if (extra[ch.channel]) { return; }
      var label = channelLabel(ch.channel);
      if (["sms", "voice", "email"].indexOf(ch.kind) !== -1) {
        people = Math.max(people, ch.recipients || 0);
        if (personal.indexOf(label) === -1) { personal.push(label + " (" + BC.number(ch.recipients) + ")"); }
      } else if (other.indexOf(label) === -1) { other.push(label); }
      slowest = Math.max(slowest, (ch.eta && ch.eta.seconds) || 0);
    });
    var parts = [];
    if (personal.length) { parts.push("Goes to up to " + BC.number(people) + (people === 1 ? " person" : " people") + " by " + personal.join(", ")); }
    if (other.length) { parts.push((personal.length ? "and appears on " : "Appears on ") + other.join(", ")); }
    var text = parts.length ? parts.join(" ") + "." : "No channel is ticked: nothing would go out.";
    if (slowest) { text += " Reaching everyone takes " + (slowest < 90 ? "about " + Math.max(1, Math.round(slowest)) + " s" : "about " + Math.round(slowest / 60) + " min") + "."; }
    $("send-line").textContent = text;
  }
  function renderAudience(data, extra) {
    renderSendLine(data, extra);
    var body = $("audience-sizes");
    BC.clear(body);
    data.channels.forEach(function (ch) {
      if (extra[ch.channel]) { return; }
      var via = ch.adapter && ch.adapter !== ch.kind ? ch.adapter : "";
      body.appendChild(el("tr", {}, [el("th", { scope: "row" }, [channelLabel(ch.channel),
        via ? el("span", { "class": "provider-name", text: " (" + via + ")" }) : null]), el("td", { text: BC.number(ch.recipients) }),
        el("td", { text: BC.etaText(ch.eta) })]));
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
  /* --- errors: beside each field (aria-invalid + aria-describedby), listed with links in the summary at the
     top (role=alert) and repeated next to the buttons; focus goes to the first field in error --- */
  var LABELS = { title: "title", body: "message", summary: "summary", category: "category", severity: "severity",
                 status: "status", "aud-tags": "tags", "aud-locales": "languages", "q-text": "question" };
  function clearErrors() {
    Array.prototype.forEach.call(form.querySelectorAll(".field-error"), function (p) { p.parentNode.removeChild(p); });
    Array.prototype.forEach.call(form.querySelectorAll("[aria-invalid]"), function (node) {
      node.removeAttribute("aria-invalid");
      var ids = (node.getAttribute("aria-describedby") || "").split(" ").filter(function (i) { return i && !/-error$/.test(i); });
      if (ids.length) { node.setAttribute("aria-describedby", ids.join(" ")); } else { node.removeAttribute("aria-describedby"); }
    });
    BC.clear(errorBox); errorBox.hidden = true;
    BC.show($("action-error"), "");
  }
  /* errors: [{node, text}] (node null: not about one field) */
  function showErrors(errors) {
    clearErrors();
    var list = el("ul", {});
    var first = null;
    errors.forEach(function (e, i) {
      if (!e.node) { list.appendChild(el("li", { text: e.text })); return; }
      var node = e.node;
      if (!node.id) { node.id = "err-target-" + i; }
      var msgId = node.id + "-error";
      if (!$(msgId)) {
        var msg = el("p", { "class": "field-error", id: msgId, text: e.text });
        var anchor = node.closest(".check, .option-row") || node;
        anchor.parentNode.insertBefore(msg, anchor.nextSibling);
        node.setAttribute("aria-invalid", "true");
        var ids = (node.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
        ids.unshift(msgId);
        node.setAttribute("aria-describedby", ids.join(" "));
      }
      list.appendChild(el("li", {}, [el("a", { href: "#" + node.id, text: e.text })]));
      if (!first) { first = node; }
    });
    var n = errors.length;
    errorBox.appendChild(el("h2", { "class": "error-title", text: n === 1 ? "There is a problem" : "There are " + n + " problems" }));
    errorBox.appendChild(list);
    errorBox.hidden = false;
    BC.show($("action-error"), "Nothing was sent or saved. " + (n === 1 ? "Fix the problem" : "Fix the " + n + " problems") +
      " shown above, then try again.");
    Array.prototype.forEach.call(list.querySelectorAll("a"), function (a) {
      a.addEventListener("click", function (ev) {
        var target = $(a.getAttribute("href").slice(1));
        if (target) { ev.preventDefault(); target.focus(); }
      });
    });
    if (first) { first.focus(); } else { errorBox.setAttribute("tabindex", "-1"); errorBox.focus(); }
  }
  /* the form field an API field name (dotted, e.g. "update.links.0.url") stands for */
  function fieldNode(name) {
    var parts = String(name || "").split(".");
    if (parts[0] === "update") { parts.shift(); }
    var head = parts[0];
    var simple = { title: "title", body: "body", summary: "summary", category: "category", severity: "severity",
                   status: "status", locale: "body" };
    if (simple[head]) { return $(simple[head]); }
    if (head === "links") {
      var row = document.querySelectorAll(".link-row")[Number(parts[1])];
      return row ? row.querySelector(parts[2] === "title" ? ".link-title" : ".link-url") : $("add-link");
    }
    if (head === "translations") {
      var rows = Array.prototype.filter.call(document.querySelectorAll(".translation-row"), function (r) {
        return !parts[1] || r.querySelector(".tr-locale").value.trim().toLowerCase() === parts[1].toLowerCase();
      });
      var tr = rows[0] || document.querySelector(".translation-row");
      if (!tr) { return null; }
      return tr.querySelector(parts[2] === "body" ? ".tr-body" : parts[2] === "summary" ? ".tr-summary" : ".tr-locale");
    }
    if (head === "channels") { return document.querySelector("#channels input:not(:disabled)"); }
    if (head === "audience") { return parts[1] === "locales" ? $("aud-locales") : $("aud-tags"); }
    if (head === "question") {
      if (parts[1] === "options") {
        var opt = document.querySelectorAll(".option-row")[Number(parts[2]) || 0];
        return opt ? opt.querySelector(".q-label") : $("q-text");
      }
      if (parts[1] === "escalation") { return $("q-escalation") || $("q-text"); }
      return $("q-text");
    }
    if (head === "area") { return $("area"); }
    return null;
  }
  /* an API error reason in plain words for the field it is about */
  function plainReason(name, reason, type) {
    var node = fieldNode(name);
    var what = node ? (LABELS[node.id] || "") : "";
    var max = /at most (\d+)/.exec(reason || "");
    if (type === "missing" || type === "string_too_short" || /must not be blank/.test(reason || "")) {
      if (node && node.classList.contains("link-title")) { return "Give the link a title"; }
      if (node && node.classList.contains("link-url")) { return "Enter the link's web address"; }
      if (node && node.classList.contains("tr-body")) { return "Write the translated message"; }
      if (node && node.classList.contains("q-label")) { return "Write what this answer means"; }
      if (node && node.id === "title") { return "Write a title for the incident"; }
      if (node && node.id === "body") { return "Write the message"; }
      if (node && node.id === "q-text") { return "Write the question"; }
      if (what) { return "Fill in the " + what; }
    }
    if (type === "string_too_long" && max) { return "Shorten the " + (what || "text") + " to at most " + max[1] + " characters"; }
    if (/^url_/.test(type || "")) { return "Enter a full web address, starting with https://"; }
    var text = String(reason || "This is not valid").replace(/^Value error, /, "");
    return text.charAt(0).toUpperCase() + text.slice(1);
  }
  /* the errors of an API answer: each 422 entry beside its field, anything else as one sentence */
  function apiErrors(result, prefix) {
    var d = (result && result.data) || {};
    var out = [];
    var entries = Array.isArray(d.errors) && d.errors.length ? d.errors : (d.field ? [{ field: d.field, reason: d.detail }] : []);
    entries.forEach(function (e) {
      var name = e.field || "";
      if (prefix && name.indexOf(prefix) === 0) { name = name.slice(prefix.length); }
      var node = fieldNode(name);
      out.push({ node: node, text: node ? plainReason(name, e.reason, e.type) : BC.errorText(result) });
    });
    if (!out.length) {
      var general = result && result.status === 403 ? "You are not allowed to do this: " + (d.detail || "ask an approver or an admin.") :
        BC.errorText(result);
      out.push({ node: null, text: general });
    }
    return out;
  }
  function fail(result, prefix) {
    showErrors(apiErrors(result, prefix));
    busy(false);
    return Promise.reject(result);
  }
  /* what the form can tell before anything is sent (the server checks it all again) */
  function checkForm() {
    var errors = [];
    if ($("title") && !title()) { errors.push({ node: $("title"), text: "Write a title for the incident" }); }
    if (!$("body").value.trim()) { errors.push({ node: $("body"), text: "Write the message" }); }
    Array.prototype.forEach.call(document.querySelectorAll(".link-row"), function (row) {
      var t = row.querySelector(".link-title"), u = row.querySelector(".link-url");
      if (u.value.trim() && !t.value.trim()) { errors.push({ node: t, text: "Give the link a title" }); }
      if (t.value.trim() && !/^https?:\/\/\S+$/i.test(u.value.trim())) {
        errors.push({ node: u, text: "Enter a full web address, starting with https://" });
      }
    });
    if (typeof checkQuestion === "function") { checkQuestion(errors); }
    if (errors.length) { showErrors(errors); return false; }
    return true;
  }
  /* an incident this form created earlier (a test send, or a request that failed later): bring its title,
     category and severity in line with the form before the next update is saved */
  function syncIncident() {
    var patch = {};
    if (!draft.corrects && $("category")) {
      if (category() !== cfg.category) { patch.category = category(); }
      if (severity() !== cfg.severity) { patch.severity = severity(); }
    }
    if ($("title") && title() && title() !== cfg.title) { patch.title = title(); }
    if (!Object.keys(patch).length) { return Promise.resolve(); }
    return BC.api("PATCH", "/v1/incidents/" + state.incidentId, patch).then(function (r) {
      if (!r.ok) { return fail(r); }
      cfg.category = category(); cfg.severity = severity();
      if (patch.title) { cfg.title = patch.title; }
    });
  }
  function save(test) {
    clearErrors();
    if (!checkForm()) { return Promise.reject(null); }
    busy(true);
    if (!state.incidentId) {
      /* a new incident and its first update in one request: both are written, or neither */
      var request = { title: title(), category: category(), severity: severity(), update: payload(test) };
      return BC.api("POST", "/v1/incidents", request).then(function (r) {
        if (!r.ok) { return fail(r, "update."); }
        state.incidentId = r.data.id;
        cfg.category = request.category; cfg.severity = request.severity; cfg.title = request.title;
        var update = r.data.updates[r.data.updates.length - 1];
        if (!test) { state.updateId = update.id; }
        return update;
      });
    }
    return syncIncident().then(function () {
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
  if ($("ask")) {
    if (draft.question) {
      $("ask").checked = true;
      $("q-text").value = draft.question.text || "";
      (draft.question.options || []).forEach(function (o) { addOption(o.label, o.needs_help); });
    } else {
      addOption("I'm safe", false);
      addOption("I need help", true);
    }
    $("question").hidden = !$("ask").checked;
    $("ask").addEventListener("change", function () { $("question").hidden = !$("ask").checked; schedule(); });
    $("add-option").addEventListener("click", function () { addOption("", false); schedule(); });
    $("q-options").addEventListener("click", function () { window.setTimeout(numberOptions, 0); });
  }
  if ($("area")) { $("area").addEventListener("change", function () { areaCount(); schedule(); }); loadAreas(); }
  $("add-translation").addEventListener("click", function () { addTranslation(); });
  if ($("reset-channels")) {
    $("reset-channels").addEventListener("click", function () { state.channelsTouched = false; renderChannels(routed()); schedule(); });
  }
  ["category", "severity"].forEach(function (id) {
    if ($(id)) {
      $(id).addEventListener("change", function () { if (!state.channelsTouched) { renderChannels(routed()); } updatePublishButton(); schedule(); });
    }
  });
  form.addEventListener("input", function (e) { if (!e.target.closest("#channels")) { schedule(); } });
  form.addEventListener("submit", function (e) { e.preventDefault(); });
  updatePublishButton();
  preview();
})();
