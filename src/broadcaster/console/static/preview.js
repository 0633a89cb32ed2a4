/* Renders a /v1 preview (POST /v1/preview or /v1/updates/{id}/preview) side by side per channel, then what the
   approval also binds (audience, areas, escalation). Used by the compose form and by the approvals queue (the
   approver sees exactly what the author saw). */
(function () {
  "use strict";
  var el = BC.el;
  /* in the words of the people reached; the provider is detail in the card's small print */
  var KIND_TITLES = { sms: "Text message", voice: "Voice call", email: "E-mail", social: "Social media post",
                      webhook: "Webhooks", banner: "Website banner" };
  var SOCIAL_NAMES = { x: "X post", mastodon: "Mastodon post", bluesky: "Bluesky post" };

  function lengthLine(r) {
    var parts = [];
    if (r.encoding) { parts.push(r.encoding); }
    if (r.segments !== null && r.segments !== undefined) { parts.push(r.segments + (r.segments === 1 ? " segment" : " segments")); }
    parts.push(r.length + (r.max_length ? " / " + r.max_length : "") + " characters");
    if (r.used_summary) { parts.push("uses the summary"); }
    if (r.truncated) { parts.push("shortened"); }
    var over = r.max_length && r.length > r.max_length;
    return el("p", { "class": "counts" + (over ? " over" : "") , text: parts.join(" · ") });
  }

  function banner(r, ch, opts) {
    /* the same structure and colours as the embeddable banner (public/templates/banner.html) */
    var palette = (opts.palette || {});
    var colours = palette[opts.severity] || palette.info || { bg: "#1d4ed8", fg: "#ffffff" };
    var box = el("div", { "class": "bc-banner bc-" + (opts.severity || "info"), lang: r.locale,
      style: "background:" + colours.bg + ";color:" + colours.fg + ";padding:0.75em 1em;margin:0 0 2px 0;font:inherit;" }, [
      el("strong", { "class": "bc-title", text: opts.title || "" }), " ",
      el("span", { "class": "bc-text", text: r.text }), " ",
      el("span", { style: "text-decoration:underline;", text: "Details" })
    ]);
    return el("div", { "class": "banner-frame" }, [box]);
  }

  function body(r, ch, opts) {
    var kind = ch.kind;
    var out = [];
    if (kind === "email") {
      out.push(el("p", {}, [el("strong", { text: "Subject: " }), r.subject || ""]));
      out.push(el("details", {}, [el("summary", { text: "Plain text" }), el("pre", { "class": "text", text: r.text })]));
      if (r.html) {
        out.push(el("iframe", { "class": "email-html", sandbox: "", srcdoc: r.html, title: "Email HTML (" + r.locale + ")",
                                 loading: "lazy" }));
      }
    } else if (kind === "banner") {
      out.push(banner(r, ch, opts));
    } else if (kind === "voice") {
      out.push(el("p", { "class": "voice", text: r.text }));
    } else {
      out.push(el("pre", { "class": "text", text: r.text }));
    }
    if (kind !== "email") { out.push(lengthLine(r)); }
    (r.actions || []).forEach(function (a) { out.push(el("p", { "class": "help", text: a })); });
    return out;
  }

  function title(ch) {
    if (ch.kind === "social") { return SOCIAL_NAMES[ch.adapter] || "Social post (" + (ch.adapter || ch.channel) + ")"; }
    return KIND_TITLES[ch.kind] || ch.channel;
  }

  function card(ch, opts) {
    var warnings = (ch.warnings || []).slice();
    var head = el("div", { "class": "card-head" }, [
      el("h3", { text: title(ch) }),
      opts.test ? el("span", { "class": "badge test", text: "TEST" }) : null,
      ch.configured ? null : el("span", { "class": "badge warn", text: "not configured" }),
      opts.extra && opts.extra[ch.channel] ? el("span", { "class": "badge", text: opts.extra[ch.channel] }) : null
    ]);
    var meta = el("p", { "class": "meta", text: BC.number(ch.recipients) + (ch.recipients === 1 ? " recipient" : " recipients") +
      (ch.eta ? " · " + ch.eta.text : "") + (ch.adapter ? " · sent through " + ch.adapter : "") +
      (ch.failover && ch.failover.length ? " (if that fails: " + ch.failover.join(", ") + ")" : "") });
    var children = [head, meta];
    if (warnings.length) {
      children.push(el("ul", { "class": "warnings" }, warnings.map(function (w) { return el("li", { text: w }); })));
    }
    body(ch, ch, opts).forEach(function (n) { children.push(n); });
    Object.keys(ch.translations || {}).forEach(function (loc) {
      var tr = ch.translations[loc];
      var inner = [el("summary", { text: "Translation: " + loc })];
      (tr.warnings || []).forEach(function (w) { inner.push(el("p", { "class": "warn-text", text: w })); });
      body(tr, ch, opts).forEach(function (n) { inner.push(n); });
      children.push(el("details", { lang: loc }, inner));
    });
    return el("article", { "class": "preview-card kind-" + ch.kind + (opts.test ? " is-test" : ""),
                           "data-channel": ch.channel, "aria-label": title(ch) + " preview" }, children);
  }

  function statusEntry(opts) {
    var s = opts.status;
    if (!s) { return null; }
    var links = (s.links || []).filter(function (l) { return l.title && l.url; });
    return el("article", { "class": "preview-card kind-status", "data-channel": "status-page", "aria-label": "Status page entry preview" }, [
      el("div", { "class": "card-head" }, [el("h3", { text: "Status page entry" }),
        opts.test ? el("span", { "class": "badge test", text: "TEST (not shown publicly)" }) : null]),
      el("div", { "class": "status-entry" }, [
        el("p", { "class": "meta" }, [el("strong", { text: (s.state || "Investigating") }), " · " + (opts.severity || "")]),
        el("h4", { text: opts.title || "" }),
        el("p", { text: s.body || "" }),
        links.length ? el("ul", {}, links.map(function (l) { return el("li", { text: l.title + ": " + l.url }); })) : null
      ])
    ]);
  }

  /* What approving also binds (PreviewOut.binding, part of the content ETag): who is reached, the areas with
     their geometry versions, the question and the escalation that runs, with every summary recipient. */
  var SOURCES = { question: "the question's own rules", published: "fixed when it was published",
                  category: "the category's rules in the routing map (fixed when it is published)" };

  function escalationLines(e) {
    if (!e) { return [el("li", { text: "No escalation: nobody is asked again and no summary is sent." })]; }
    var out = [el("li", { text: "Rules: " + (SOURCES[e.source] || e.source) +
      (e.respect_quiet_hours ? "; held during quiet hours (except critical)" : "; also during quiet hours") })];
    (e.steps || []).forEach(function (s, i) {
      out.push(el("li", { text: "Step " + (i + 1) + ": after " + s.after + " without an answer, ask again by " + s.channel }));
    });
    var t = e.threshold;
    if (t) {
      var g = t.group, to = (g.emails || []).concat(g.phones || []);
      if (g.tag) { to.push("everyone tagged " + g.tag + (g.tag_members !== null && g.tag_members !== undefined ? " (" + BC.number(g.tag_members) + " now)" : "")); }
      out.push(el("li", { "class": "warn-text", text: "If fewer than " + t.percent + "% answered after " + t.after +
        ": the names, phone numbers and e-mail addresses of those who did not answer go to " + to.join(", ") }));
    }
    return out;
  }

  function bindingCard(b) {
    if (!b) { return null; }
    var rows = [];
    function row(label, value) { rows.push(el("dt", { text: label })); rows.push(el("dd", {}, [value])); }
    row("Categories", b.categories.join(", ") + " (reach: " + b.reach + ")");
    row("Services", (b.services || []).length ? b.services.join(", ") : "none");
    if ((b.tags || []).length) { row("Only tags", b.tags.join(", ")); }
    if ((b.locales || []).length) { row("Only languages", b.locales.join(", ")); }
    if (b.test_group_only) { row("Only", "the test group"); }
    if ((b.areas || []).length) {
      row("Areas", el("ul", {}, b.areas.map(function (a) {
        return el("li", { text: a.name + (a.slug ? " (" + a.slug + ")" : "") + " · " +
          (a.geometry_version ? "shape " + a.geometry_version : "no longer exists") });
      })));
    }
    if (b.question) {
      row("Question", b.question.text + " — " + b.question.options.join("; "));
      row("Escalation", el("ul", { "class": "escalation" }, escalationLines(b.question.escalation)));
    }
    return el("article", { "class": "preview-card kind-binding", "data-channel": "binding",
                           "aria-label": "What approving also binds" }, [
      el("div", { "class": "card-head" }, [el("h3", { text: "Audience, areas and escalation" })]),
      el("p", { "class": "help", text: "Part of what you approve: any change to it needs a new approval." }),
      el("dl", { "class": "binding" }, rows)
    ]);
  }

  /* container: the grid; warningsList: <ul> for the preview's own warnings; preview: PreviewOut */
  function renderPreview(container, warningsList, preview, opts) {
    opts = opts || {};
    opts.test = !!(preview.test || opts.test);
    opts.severity = opts.severity || preview.severity;
    BC.clear(container);
    if (warningsList) {
      BC.clear(warningsList);
      (preview.warnings || []).forEach(function (w) { warningsList.appendChild(el("li", { text: w })); });
    }
    if (opts.test) {
      container.appendChild(el("p", { "class": "test-banner", text: "TEST — sent only to the test group, marked TEST in every channel." }));
    }
    (preview.channels || []).forEach(function (ch) { container.appendChild(card(ch, opts)); });
    var entry = statusEntry(opts);
    if (entry) { container.appendChild(entry); }
    var bound = bindingCard(preview.binding);
    if (bound) { container.appendChild(bound); }
  }

  BC.renderPreview = renderPreview;
})();
