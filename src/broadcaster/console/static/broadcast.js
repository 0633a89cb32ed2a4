/* Broadcast page: live per-channel progress from the server-sent events of /v1/broadcasts/{id}/events
   (the report, every second), a small SVG chart of deliveries per second from /timeline, Cancel. */
(function () {
  "use strict";
  var el = BC.el;
  var cfg = BC.pageData();
  var id = cfg.id;
  var $ = function (x) { return document.getElementById(x); };
  var FINAL = { done: 1, cancelled: 1, failed: 1 };
  var lastSummary = "";
  var source = null;

  function cell(cls, text, extra) { return el("td", { "class": cls }, [String(text)].concat(extra || [])); }
  function render(report) {
    $("state").textContent = report.state;
    $("finished").textContent = report.finished;
    $("total").textContent = report.total;
    $("progress").value = report.progress;
    $("progress").textContent = Math.round(report.progress * 100) + "%";
    $("rate").textContent = Number(report.rate_per_second || 0).toFixed(1);
    var rows = $("report-rows");
    BC.clear(rows);
    Object.keys(report.channels_report || {}).forEach(function (name) {
      var ch = report.channels_report[name];
      var reasons = [];
      Object.keys(ch.failed_by_reason || {}).forEach(function (r) { reasons.push(el("br")); reasons.push(el("small", { text: r + ": " + ch.failed_by_reason[r] })); });
      rows.appendChild(el("tr", { "data-channel": name }, [
        el("th", { scope: "row", text: name }), cell("sent", ch.sent), cell("delivered", ch.delivered),
        cell("failed", ch.failed, reasons), cell("pending", (ch.pending || 0) + (ch.sending || 0)), cell("eta", ch.eta ? ch.eta.text : "")
      ]));
    });
    if (FINAL[report.state]) {
      if ($("cancel")) { $("cancel").hidden = true; }
      if (source) { source.close(); source = null; $("stream-state").textContent = " · finished"; }
      drawChart();
    }
  }

  /* --- live updates: EventSource (the session cookie goes along; same origin) --- */
  function connect() {
    if (!window.EventSource || FINAL[cfg.report.state]) { return; }
    source = new EventSource("/v1/broadcasts/" + id + "/events");
    var onData = function (event) {
      var report;
      try { report = JSON.parse(event.data); } catch (e) { return; }
      if (report && report.channels_report) { render(report); }
    };
    source.onmessage = onData;
    source.addEventListener("report", onData);
    source.addEventListener("end", function () {
      if (source) { source.close(); source = null; }
      $("stream-state").textContent = " · finished";
      drawChart();
    });
    source.onopen = function () { $("stream-state").textContent = " · live"; };
    source.onerror = function () { $("stream-state").textContent = " · reconnecting…"; };
  }

  /* --- chart: deliveries per second, inline SVG --- */
  /* sparse buckets {at, sent, failed} -> one bar per bucket from the first to the last (gaps are zero) */
  function points(data) {
    var width = (data && data.bucket_seconds) || 1;
    var list = (data && data.points) || [];
    if (!list.length) { return []; }
    var byT = {};
    list.forEach(function (p) { byT[Math.round(Date.parse(p.at) / 1000 / width)] = (p.sent || 0) + (p.failed || 0); });
    var keys = Object.keys(byT).map(Number);
    var first = Math.min.apply(null, keys), last = Math.max.apply(null, keys);
    var out = [];
    for (var t = first; t <= last && out.length < 600; t++) { out.push({ t: t, n: byT[t] || 0 }); }
    return out;
  }
  function drawChart(bucket) {
    bucket = bucket || "1s";
    BC.api("GET", "/v1/broadcasts/" + id + "/timeline?bucket=" + bucket).then(function (r) {
      var box = $("chart");
      BC.clear(box);
      if (!r.ok) { $("chart-caption").textContent = "The chart is unavailable: " + BC.errorText(r); return; }
      var pts = points(r.data);
      if (pts.length > 300 && bucket !== "1m") { drawChart(bucket === "1s" ? "10s" : "1m"); return; }
      var unit = r.data.bucket_seconds === 1 ? "second" : r.data.bucket;
      if (!pts.length) { $("chart-caption").textContent = "No deliveries yet."; return; }
      var W = 600, H = 160, P = 28;
      var max = Math.max.apply(null, pts.map(function (p) { return p.n; }).concat([1]));
      var step = Math.min((W - 2 * P) / Math.max(pts.length, 1), 24);
      var ns = "http://www.w3.org/2000/svg";
      var svg = document.createElementNS(ns, "svg");
      svg.setAttribute("viewBox", "0 0 " + W + " " + H);
      svg.setAttribute("role", "img");
      var total = pts.reduce(function (a, p) { return a + p.n; }, 0);
      var label = "Deliveries per " + unit + " over " + pts.length + " buckets, peak " + max + ", " + total + " in all";
      svg.setAttribute("aria-label", label);
      function add(tag, attrs) {
        var node = document.createElementNS(ns, tag);
        Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
        svg.appendChild(node);
        return node;
      }
      add("line", { x1: P, y1: H - P, x2: W - P, y2: H - P, stroke: "#4b5563" });
      add("line", { x1: P, y1: P / 2, x2: P, y2: H - P, stroke: "#4b5563" });
      pts.forEach(function (p, i) {
        var h = (H - 1.5 * P) * p.n / max;
        add("rect", { x: P + i * step + 1, y: H - P - h, width: Math.max(step - 2, 1), height: h, fill: "#1d4ed8" });
      });
      var top = add("text", { x: 2, y: P / 2 + 4, "font-size": "11", fill: "#1b1f24" });
      top.textContent = String(max);
      var bottom = add("text", { x: P, y: H - 8, "font-size": "11", fill: "#1b1f24" });
      bottom.textContent = "time (1 bar = " + r.data.bucket + ")";
      box.appendChild(svg);
      $("chart-caption").textContent = label + ".";
    });
  }

  if ($("cancel")) {
    $("cancel").addEventListener("click", function () {
      if (!window.confirm("Cancel this broadcast? Pending deliveries will not be sent.")) { return; }
      BC.api("POST", "/v1/broadcasts/" + id + "/cancel").then(function (r) {
        if (!r.ok) { BC.show($("bc-error"), BC.errorText(r)); return; }
        $("cancel").hidden = true;
        $("state").textContent = "cancelled";
      });
    });
  }

  /* --- the send hold: countdown (from the seconds left when the page was built) and Stop --- */
  function hold() {
    var box = $("send-hold");
    if (!box) { return; }
    var started = Date.now(), left = Number(cfg.hold_left || 0), stopped = false;
    function tick() {
      if (stopped) { return; }
      var now = Math.max(0, Math.ceil(left - (Date.now() - started) / 1000));
      var state = $("state").textContent;
      if (state !== "planning") {
        box.hidden = state !== "cancelled";
        window.clearInterval(timer);
        return;
      }
      var text = now >= 120 ? Math.floor(now / 60) + " min " + (now % 60) + " s" : now + " s";
      $("hold-countdown").textContent = now > 0 ? "Sending starts in " + text + "." : "Sending is starting…";
    }
    var timer = window.setInterval(tick, 250);
    tick();
    if ($("stop")) {
      $("stop").addEventListener("click", function () {
        $("stop").disabled = true;
        BC.api("POST", "/v1/broadcasts/" + id + "/stop").then(function (r) {
          if (!r.ok) {
            BC.show($("bc-error"), BC.errorText(r) + (r.data && r.data.error === "hold_over" ? " Use Cancel broadcast to stop the rest." : ""));
            return;
          }
          stopped = true;
          window.clearInterval(timer);
          $("stop").hidden = true;
          if ($("cancel")) { $("cancel").hidden = true; }
          $("hold-title").textContent = "Stopped";
          $("hold-countdown").textContent = "Stopped: nothing was sent.";
          $("hold-status").textContent = "The broadcast is cancelled; no message reached anyone.";
          $("state").textContent = "cancelled";
        });
      });
    }
  }

  render(cfg.report);
  hold();
  connect();
  drawChart();
  window.setInterval(function () { if (source) { drawChart(); } }, 5000);
})();
