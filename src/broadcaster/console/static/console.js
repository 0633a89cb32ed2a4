/* Broadcaster console: shared helpers (no build step, no dependencies).
   Every state change goes through the /v1 JSON API with the session cookie and the X-CSRF-Token header. */
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";

  /* fetch a /v1 URL; resolves to {status, ok, data, headers} (data: parsed JSON, text, or null) */
  function api(method, url, body, options) {
    options = options || {};
    var headers = { "Accept": options.accept || "application/json" };
    if (method !== "GET" && method !== "HEAD") { headers["X-CSRF-Token"] = csrf; }
    var init = { method: method, headers: headers, credentials: "same-origin" };
    if (body instanceof FormData) {
      init.body = body;
    } else if (typeof body === "string") {
      headers["Content-Type"] = options.contentType || "text/plain";
      init.body = body;
    } else if (body !== undefined && body !== null) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    Object.keys(options.headers || {}).forEach(function (k) { headers[k] = options.headers[k]; });
    return fetch(url, init).then(function (resp) {
      var type = resp.headers.get("content-type") || "";
      var read = type.indexOf("json") !== -1 ? resp.json() : resp.text();
      return read.catch(function () { return null; }).then(function (data) {
        return { status: resp.status, ok: resp.ok, data: data, headers: resp.headers };
      });
    });
  }

  /* the API's one error shape {error, detail, field} as a sentence */
  function errorText(result) {
    var d = result && result.data;
    if (d && typeof d === "object") {
      var detail = d.detail;
      if (Array.isArray(detail)) {
        detail = detail.map(function (x) { return (x.loc ? x.loc.join(".") + ": " : "") + x.msg; }).join("; ");
      } else if (detail && typeof detail === "object") {
        detail = JSON.stringify(detail);
      }
      return (detail || d.error || "Request failed") + (d.field ? " (field: " + d.field + ")" : "");
    }
    return "Request failed (HTTP " + (result ? result.status : "?") + ")";
  }

  /* el("p", {class: "x", text: "hi"}, [children]) */
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) { return; }
      if (k === "text") { node.textContent = v; } else if (k === "class") { node.className = v; } else { node.setAttribute(k, v === true ? "" : v); }
    });
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) { return; }
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } }

  function pageData() {
    var node = document.getElementById("page-data");
    return node ? JSON.parse(node.textContent) : {};
  }

  function debounce(fn, ms) {
    var timer = null;
    return function () {
      var args = arguments;
      window.clearTimeout(timer);
      timer = window.setTimeout(function () { fn.apply(null, args); }, ms);
    };
  }

  function show(box, message) {
    if (!box) { return; }
    box.textContent = message || "";
    box.hidden = !message;
  }

  function number(n) { return (n === null || n === undefined) ? "–" : Number(n).toLocaleString("en"); }

  /* the admins' notice of new approvers and admins: "I have seen these" acknowledges them for this admin */
  function grantNotice() {
    var box = document.getElementById("role-grants");
    var button = box ? box.querySelector(".ack-grants") : null;
    if (!button) { return; }
    button.addEventListener("click", function () {
      button.disabled = true;
      var upTo = Number(box.getAttribute("data-up-to"));
      api("POST", "/v1/role-grants/acknowledge", { up_to: upTo }).then(function (r) {
        if (r.ok) { box.hidden = true; return; }
        button.disabled = false;
        show(box.querySelector(".ack-status"), errorText(r));
      });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", grantNotice);
  } else {
    grantNotice();
  }

  window.BC = { api: api, errorText: errorText, el: el, clear: clear, pageData: pageData, debounce: debounce,
                show: show, number: number, csrf: csrf };
})();
