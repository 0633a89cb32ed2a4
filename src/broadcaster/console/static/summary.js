/* The send summary shown right before "Approve and send" (approvals) and "Publish" (compose): people and messages
   per channel, the audience in plain words, how long reaching everyone takes, who approves, and the send hold.
   For a critical live send the person types the incident's title before the button enables; the server checks
   the same `confirm` field (POST /v1/updates/{id}/approve and /publish).

   BC.sendSummary(box, preview, {title, severity, approver, holdSeconds, onChange}) -> {ready(), confirm()} */
(function () {
  "use strict";
  var el = BC.el;
  var KIND = { sms: ["text", "texts"], voice: ["call", "calls"], email: ["e-mail", "e-mails"],
               social: ["post", "posts"], webhook: ["webhook call", "webhook calls"], banner: ["banner", "banners"] };

  function plural(n, pair) { return BC.number(n) + " " + (n === 1 ? pair[0] : pair[1]); }
  function norm(s) { return String(s || "").split(/\s+/).filter(Boolean).join(" ").toLowerCase(); }
  function list(items) {
    if (items.length < 2) { return items.join(""); }
    return items.slice(0, -1).join(", ") + " and " + items[items.length - 1];
  }
  function people(ch) { return ["sms", "voice", "email"].indexOf(ch.kind) !== -1; }

  function audienceWords(p) {
    var b = p.binding || {};
    if (p.test || b.test_group_only) { return "The test group only (every message is marked TEST)."; }
    var parts = ["Subscribers of " + list(b.categories && b.categories.length ? b.categories : [p.category])];
    if ((b.services || []).length && b.reach !== "category") { parts[0] += " and followers of " + list(b.services); }
    if ((b.tags || []).length) { parts.push("only those tagged " + list(b.tags)); }
    if ((b.areas || []).length) { parts.push("only those inside " + list(b.areas.map(function (a) { return a.name; }))); }
    if ((b.locales || []).length) { parts.push("only those reading " + list(b.locales)); }
    return parts.join(", ") + ".";
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) { return "unknown"; }
    if (seconds < 1) { return "under a second"; }
    if (seconds < 90) { return "about " + Math.round(seconds) + " seconds"; }
    if (seconds < 5400) { return "about " + Math.round(seconds / 60) + " minutes"; }
    return "about " + (seconds / 3600).toFixed(1) + " hours";
  }

  function sendSummary(box, p, opts) {
    opts = opts || {};
    BC.clear(box);
    var critical = !p.test && (opts.severity || p.severity) === "critical";
    var rows = [], messages = 0, widest = 0, slowest = null;
    (p.channels || []).forEach(function (ch) {
      var pair = KIND[ch.kind] || ["message", "messages"];
      var n = ch.recipients || 0;
      messages += n;
      if (people(ch)) { widest = Math.max(widest, n); }
      var seconds = ch.eta ? ch.eta.seconds : null;
      if (seconds !== null && seconds !== undefined && (slowest === null || seconds > slowest)) { slowest = seconds; }
      rows.push(el("tr", { "data-channel": ch.channel }, [
        el("th", { scope: "row", text: ch.channel }),
        el("td", { "class": "people", text: people(ch) ? BC.number(n) : "–" }),
        el("td", { "class": "messages", text: plural(n, pair) }),
        el("td", { "class": "eta", text: ch.eta ? ch.eta.text : "" })
      ]));
    });
    var heading = el("h3", { text: critical ? "Check before you send: critical" : "Check before you send" });
    var total = el("p", { "class": "summary-total", text: "This sends " + plural(messages, ["message", "messages"]) +
      (widest ? " to up to " + plural(widest, ["person", "people"]) : "") + "." });
    var table = el("table", { "class": "summary-table" }, [
      el("caption", { "class": "visually-hidden", text: "People and messages per channel" }),
      el("thead", {}, [el("tr", {}, [el("th", { scope: "col", text: "Channel" }), el("th", { scope: "col", text: "People" }),
        el("th", { scope: "col", text: "Messages" }), el("th", { scope: "col", text: "Time to reach everyone" })])]),
      el("tbody", {}, rows.length ? rows : [el("tr", {}, [el("td", { colspan: "4", text: "No channel sends anything." })])])
    ]);
    var facts = el("dl", { "class": "summary-facts" }, [
      el("dt", { text: "Who" }), el("dd", { "class": "summary-audience", text: audienceWords(p) }),
      el("dt", { text: "Reaching everyone" }), el("dd", { "class": "summary-eta", text: duration(slowest) }),
      el("dt", { text: "Approved by" }), el("dd", { "class": "summary-approver", text: opts.approver || "you" })
    ]);
    var hold = opts.holdSeconds > 0 && !p.test
      ? el("p", { "class": "help summary-hold", text: "Sending starts " + Math.round(opts.holdSeconds) + " seconds after you press the button: the broadcast page shows a countdown and a Stop button until then." })
      : null;
    box.appendChild(el("section", { "class": "send-summary" + (critical ? " critical" : ""), "aria-label": "Send summary" },
      [heading, total, el("div", { "class": "table-wrap" }, [table]), facts, hold]));

    var input = null;
    if (critical) {
      var id = "confirm-" + Math.random().toString(36).slice(2, 8);
      input = el("input", { id: id, "class": "confirm-input", autocomplete: "off", spellcheck: "false", maxlength: "300" });
      box.firstChild.appendChild(el("div", { "class": "field confirm-field" }, [
        el("label", { "for": id }, ["To send this critical update, type the incident's title: ", el("strong", { text: opts.title || "" })]),
        input
      ]));
      input.addEventListener("input", function () { if (opts.onChange) { opts.onChange(); } });
    }
    return {
      critical: critical,
      ready: function () { return !input || norm(input.value) === norm(opts.title); },
      confirm: function () { return input ? input.value : null; },
      focus: function () { if (input) { input.focus(); } }
    };
  }

  BC.sendSummary = sendSummary;
})();
