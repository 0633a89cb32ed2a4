/* Broadcaster banner: <script src="https://status.example.org/v1/banner.js" async
 *   data-site="www" data-refresh="60" data-lang="fr"></script>
 * Dependency-free. User text is only ever set with textContent (never innerHTML). */
(function () {
  "use strict";
  var CONFIG = /*CONFIG*/null;
  var script = document.currentScript;
  if (!script) {
    var all = document.querySelectorAll("script[src*='/v1/banner.js']");
    script = all[all.length - 1];
  }
  if (!script || script.getAttribute("data-bc-started")) { return; }
  script.setAttribute("data-bc-started", "1");
  var src = new URL(script.src, document.baseURI);
  var site = script.getAttribute("data-site") || "";
  var lang = script.getAttribute("data-lang") || "";
  var refresh = parseFloat(script.getAttribute("data-refresh") || "") || CONFIG.refresh;
  /* the service's banner: from CONFIG.api in the static copy of this script, else next to this script */
  var api = (CONFIG.api || src.origin + src.pathname.replace(/\.js$/, "")) + query();
  /* the static copy (data-static or STATIC_PUBLIC_URL) is read first; the service is the fallback */
  var staticBase = (script.getAttribute("data-static") || CONFIG.static || "").replace(/\/+$/, "");
  var staticUrl = staticBase ? staticBase + (site ? "/v1/sites/" + encodeURIComponent(site) : "/v1") +
    "/banner" + (staticLang() ? "." + staticLang() : "") + ".json" : "";
  var STORE = "broadcaster-banner-dismissed";
  var root = null;
  var assertive = {};
  CONFIG.assertive.forEach(function (s) { assertive[s] = true; });

  function staticLang() {
    /* static files exist per supported locale; without data-lang use the browser's language when offered */
    if (lang) { return lang; }
    var nav = (navigator.language || "").toLowerCase();
    var found = "";
    (CONFIG.locales || []).forEach(function (l) {
      if (!found && (l.toLowerCase() === nav || l.toLowerCase() === nav.split("-")[0])) { found = l; }
    });
    return found;
  }
  function query() {
    var q = [];
    if (site) { q.push("site=" + encodeURIComponent(site)); }
    if (lang) { q.push("lang=" + encodeURIComponent(lang)); }
    return q.length ? "?" + q.join("&") : "";
  }
  function dismissed() {
    try { return JSON.parse(window.localStorage.getItem(STORE) || "[]"); } catch (e) { return []; }
  }
  function dismiss(id) {
    var ids = dismissed().filter(function (x) { return x !== id; });
    ids.push(id);
    try { window.localStorage.setItem(STORE, JSON.stringify(ids.slice(-50))); } catch (e) { /* private mode */ }
  }
  function safeHref(url) {
    return /^(https?:|tel:|sms:|mailto:)/i.test(url || "") ? url : null;
  }
  function el(tag, text, style) {
    var node = document.createElement(tag);
    if (text) { node.textContent = text; }
    if (style) { node.setAttribute("style", style); }
    return node;
  }
  function link(text, url, fg) {
    var href = safeHref(url);
    if (!href) { return el("span", text); }
    var a = el("a", text, "color:" + fg + ";text-decoration:underline;margin-left:0.5em;");
    a.href = href;
    if (/^https?:/i.test(href)) { a.rel = "noopener"; }
    return a;
  }
  function ensureRoot() {
    if (root && root.isConnected) { return root; }
    root = document.createElement("section");
    root.className = "bc-banners";
    root.setAttribute("aria-label", "Service announcements");
    document.body.insertBefore(root, document.body.firstChild);
    return root;
  }
  function render(data) {
    var hidden = dismissed();
    var box = ensureRoot();
    var keep = {};
    (data.banners || []).forEach(function (b) {
      if (hidden.indexOf(b.id) !== -1) { return; }
      keep[b.id] = true;
      var sig = [b.severity, b.title, b.text, b.status, b.kind, b.locale,
        b.earlier ? b.earlier.locale + b.earlier.text : ""].join("\u0000");
      var existing = box.querySelector("[data-update-id='" + Number(b.id) + "']");
      if (existing && existing.bcSig === sig) { return; }
      /* new, or edited (e.g. severity or title changed): (re)draw in place */
      var colours = CONFIG.palette[b.severity] || CONFIG.palette.info;
      var loud = !!assertive[b.severity];
      var div = el("div", "", "background:" + colours.bg + ";color:" + colours.fg +
        ";padding:0.75em 3em 0.75em 1em;position:relative;font-family:inherit;line-height:1.4;");
      div.className = "bc-banner bc-" + b.severity;
      div.setAttribute("data-update-id", String(Number(b.id)));
      div.bcSig = sig;
      div.setAttribute("role", loud ? "alert" : "status");
      div.setAttribute("aria-live", loud ? "assertive" : "polite");
      if (b.locale) { div.setAttribute("lang", b.locale); }
      var title = el("strong", b.title);
      title.className = "bc-title";
      div.appendChild(title);
      var text = el("span", " " + b.text);
      text.className = "bc-text";
      if (b.locale) { text.setAttribute("lang", b.locale); }
      div.appendChild(text);
      if (b.earlier && b.earlier.text) {
        /* the latest update has no text in the reader's language: the earlier one that has, beside it */
        var earlier = el("span", " Earlier update: ");
        earlier.className = "bc-earlier";
        var earlierText = el("span", b.earlier.text);
        if (b.earlier.locale) { earlierText.setAttribute("lang", b.earlier.locale); }
        earlier.appendChild(earlierText);
        div.appendChild(earlier);
      }
      div.appendChild(link("Details", b.link, colours.fg));
      if (b.routes && b.routes.length) {
        /* one contact detail per list item: "Call: ...", "Hours: ...", "Note: ..." never run together */
        var list = el("ul", "", "margin:0.3em 0 0;padding:0 0 0 1.2em;");
        list.className = "bc-routes";
        list.setAttribute("aria-label", "How to reach us");
        b.routes.forEach(function (r) {
          var item = el("li", "");
          var a = link(r.label + ": " + r.value, r.href, colours.fg);
          a.style.marginLeft = "0";
          item.appendChild(a);
          list.appendChild(item);
        });
        div.appendChild(list);
      }
      var close = el("button", "\u00d7", "position:absolute;top:0.4em;right:0.6em;background:transparent;border:1px solid " +
        colours.fg + ";color:" + colours.fg + ";font-size:1.1em;line-height:1;padding:0.1em 0.45em;cursor:pointer;border-radius:3px;");
      close.type = "button";
      close.className = "bc-dismiss";
      close.setAttribute("aria-label", "Dismiss announcement: " + b.title);
      close.addEventListener("click", function () { dismiss(b.id); div.parentNode.removeChild(div); });
      div.appendChild(close);
      if (existing) { box.replaceChild(div, existing); } else { box.appendChild(div); }
    });
    Array.prototype.slice.call(box.children).forEach(function (child) {
      if (!keep[child.getAttribute("data-update-id")]) { box.removeChild(child); }
    });
  }
  function fetchJson(url) {
    return window.fetch(url, { mode: "cors", credentials: "omit" })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); });
  }
  function load() {
    if (!window.fetch) { return; }
    var first = fetchJson(staticUrl || api);
    (staticUrl ? first.catch(function () { return fetchJson(api); }) : first)
      .then(function (data) { if (data) { render(data); } })
      .catch(function () { /* keep what is shown; try again at the next refresh */ });
  }
  function start() {
    load();
    if (refresh > 0) { window.setInterval(load, Math.max(refresh, 1) * 1000); }
  }
  if (document.body) { start(); } else { document.addEventListener("DOMContentLoaded", start); }
})();
