/* Responses page: the live tallies of an update's question from the server-sent events of
   /v1/updates/{id}/responses/stream (sent whenever they change), needs-help people first; Close question. */
(function () {
  "use strict";
  var el = BC.el;
  var cfg = BC.pageData();
  var id = cfg.update_id;
  var $ = function (x) { return document.getElementById(x); };
  var source = null;

  function labels(tally) {
    var out = {};
    (tally.options || []).forEach(function (o) { out[o.key] = o.label; });
    return out;
  }
  function link(scheme, value) { return value ? [el("a", { href: scheme + value, text: value })] : []; }
  function when(iso) {
    if (!iso) { return []; }
    var d = new Date(iso);
    var text = isNaN(d) ? iso : d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
    return [el("time", { datetime: iso, text: text })];
  }

  function render(tally) {
    $("answered").textContent = tally.answered;
    $("recipients").textContent = tally.recipients;
    $("no-answer").textContent = tally.no_answer_yet;
    $("no-answer-count").textContent = tally.no_answer_yet;
    $("unrecognised-count").textContent = tally.unrecognised;
    /* free-text replies are sorted on the server: fetch the ones a person should read when new replies came */
    if (tally.unrecognised !== lastUnrecognised) {
      lastUnrecognised = tally.unrecognised;
      refreshNeedsAPerson(tally);
    }
    $("answered-progress").max = Math.max(tally.recipients, 1);
    $("answered-progress").value = tally.answered;
    $("q-state").textContent = tally.question.state;
    $("q-state").className = "badge state-" + tally.question.state;
    (tally.options || []).forEach(function (o) {
      var row = document.querySelector('#option-rows tr[data-option="' + CSS.escape(o.key) + '"]');
      if (!row) { return; }
      row.querySelector(".count").textContent = o.count;
      row.querySelector(".share").textContent = (tally.answered ? Math.round(o.count / tally.answered * 100) : 0) + "%";
      row.querySelector(".by-channel").textContent = Object.keys(o.by_channel || {}).map(function (ch) {
        return ch + ": " + o.by_channel[ch];
      }).join(", ");
    });
    var names = labels(tally);
    var rows = $("people-rows");
    BC.clear(rows);
    (tally.people || []).forEach(function (p) {
      rows.appendChild(el("tr", { "data-subscriber": String(p.subscriber_id), "class": p.needs_help ? "needs-help" : "" }, [
        el("th", { scope: "row", text: p.name || ("subscriber " + p.subscriber_id) }),
        el("td", { text: names[p.option_key] || p.option_key || "" }),
        el("td", {}, link("tel:", p.phone)),
        el("td", {}, link("mailto:", p.email)),
        el("td", { text: p.answer_channel || "" }),
        el("td", {}, when(p.answered_at))
      ]));
    });
    if (!(tally.people || []).length) {
      rows.appendChild(el("tr", { "class": "empty" }, [el("td", { colspan: "6", text: "Nobody has chosen an answer yet." })]));
    }
    if (tally.question.state !== "open" && $("close-question")) { $("close-question").hidden = true; }
  }

  var lastUnrecognised = cfg.tally.unrecognised;
  var shownFlagged = cfg.needs_a_person;
  function refreshNeedsAPerson(tally) {
    BC.api("GET", "/v1/updates/" + id + "/responses/needs-a-person").then(function (r) {
      if (!r.ok) { return; }
      var names = labels(tally);
      var rows = $("free-text-rows");
      BC.clear(rows);
      r.data.forEach(function (x) {
        var answer = [el("q", { text: x.body }), el("br"), el("span", { "class": "badge sev-critical", text: "A person should read this" })];
        if (x.current_answer) {
          answer.push(el("br"), el("small", { text: "Their answer now: " + (names[x.current_answer] || x.current_answer) }));
        }
        rows.appendChild(el("tr", { "class": "needs-help needs-a-person", "data-response": String(x.id) }, [
          el("th", { scope: "row", text: x.name || (x.subscriber_id ? "subscriber " + x.subscriber_id : x.address) }),
          el("td", {}, answer),
          el("td", {}, link("tel:", x.phone)),
          el("td", {}, link("mailto:", x.email)),
          el("td", { text: x.channel }),
          el("td", {}, when(x.received_at))
        ]));
      });
      $("needs-a-person-count").textContent = r.data.length;
      $("needs-a-person-note").hidden = !r.data.length;
      /* the others are listed at the bottom as of loading the page */
      var fresh = (tally.unrecognised - cfg.tally.unrecognised) - (r.data.length - shownFlagged);
      $("new-replies").textContent = fresh > 0 ? " · " + fresh + " more we did not understand: reload to read them" : "";
    });
  }

  function finished() {
    if (source) { source.close(); source = null; }
    $("stream-state").textContent = " · question closed";
  }

  /* EventSource: the session cookie goes along (same origin); the stream ends once the question is closed */
  function connect() {
    if (!window.EventSource || cfg.tally.question.state === "closed") { return; }
    source = new EventSource("/v1/updates/" + id + "/responses/stream");
    source.addEventListener("responses", function (event) {
      var tally;
      try { tally = JSON.parse(event.data); } catch (e) { return; }
      if (tally && tally.question) { render(tally); }
    });
    source.addEventListener("end", finished);
    source.onopen = function () { $("stream-state").textContent = " · live"; };
    source.onerror = function () { if (source) { $("stream-state").textContent = " · reconnecting…"; } };
  }

  if ($("close-question")) {
    $("close-question").addEventListener("click", function () {
      if (!window.confirm("Close this question? Later answers are still recorded but count nowhere, and every pending escalation stops.")) { return; }
      BC.api("POST", "/v1/updates/" + id + "/question/close").then(function (r) {
        if (!r.ok) { BC.show($("rs-error"), BC.errorText(r)); return; }
        $("close-question").hidden = true;
        $("q-state").textContent = r.data.state;
        $("q-state").className = "badge state-" + r.data.state;
      });
    });
  }

  render(cfg.tally);
  connect();
})();
