/* Approvals that reach people (issue 21): every console page of someone who can approve polls
   GET /console/approvals/live.json and keeps the navigation's count of pending approvals current; a new request
   is announced (a visible line, read out by screen readers: aria-live) with a short beep (Web Audio; browsers
   allow sound only after the person has clicked or typed on the page, so it stays muted until then).
   On the approvals page the queue follows along without a reload: a new request's card is added (its preview
   loads through approvals.js, told by the `bc:approval-added` event) and approved, rejected or withdrawn ones
   are removed. On an incident page the editor's "who can approve" lines stay current. */
(function () {
  "use strict";
  var POLL_MS = 4000;
  var badge = document.getElementById("approvals-badge");
  var announce = document.getElementById("approval-announce");
  var followers = document.querySelectorAll("[data-approval-for]");
  var onQueue = !!document.querySelector('.top nav a[aria-current="page"][href="/console/approvals"]');
  if (!badge && !followers.length) { return; }

  var known = null; /* ids of the requests seen so far (null: not polled yet) */
  var baseTitle = document.title;
  var audio = null;

  /* --- sound: unlocked by the first interaction --- */
  function unlock() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) { return; }
    try {
      audio = audio || new Ctx();
      if (audio.state === "suspended") { audio.resume(); }
    } catch (e) { audio = null; }
  }
  ["pointerdown", "keydown"].forEach(function (name) {
    document.addEventListener(name, unlock, { once: true, capture: true });
  });
  function beep() {
    if (!audio || audio.state !== "running") { return; }
    var osc = audio.createOscillator();
    var gain = audio.createGain();
    osc.type = "sine";
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.0001, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.2, audio.currentTime + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.35);
    osc.connect(gain);
    gain.connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + 0.4);
  }

  function say(text, link) {
    if (!announce) { return; }
    BC.clear(announce);
    announce.appendChild(document.createTextNode(text + " "));
    if (link) { announce.appendChild(BC.el("a", { href: link.href, text: link.text })); }
  }

  function setBadge(count) {
    if (!badge) { return; }
    BC.clear(badge);
    badge.hidden = count < 1;
    if (count > 0) {
      badge.appendChild(document.createTextNode(String(count)));
      badge.appendChild(BC.el("span", { class: "visually-hidden", text: " waiting" }));
    }
    document.title = (count > 0 ? "(" + count + ") " : "") + baseTitle;
  }

  function lineFor(item) {
    var parts = ["Waiting " + (item.waited || "less than a minute") + "."];
    if (item.escalated_at_text) {
      parts.push("Escalated to " + item.escalated_to.join(", ") + " at " + item.escalated_at_text + ".");
    }
    parts.push(item.approvers.length ? "Who can approve: " + item.approvers.join(", ") + "."
      : "Nobody can approve it yet: ask an admin.");
    return parts.join(" ");
  }

  /* --- the queue on the approvals page --- */
  function list() {
    var ol = document.getElementById("approvals");
    if (ol) { return ol; }
    ol = BC.el("ol", { class: "approvals", id: "approvals" });
    var empty = document.querySelector("main .empty");
    if (empty) { empty.parentNode.replaceChild(ol, empty); } else { document.getElementById("main").appendChild(ol); }
    return ol;
  }

  function addCards(ids) {
    if (!ids.length) { return; }
    fetch("/console/approvals", { credentials: "same-origin" }).then(function (r) { return r.text(); }).then(function (html) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      ids.forEach(function (id) {
        if (document.getElementById("approval-" + id)) { return; }
        var card = doc.getElementById("approval-" + id);
        if (!card) { return; }
        card = document.importNode(card, true);
        list().appendChild(card);
        document.dispatchEvent(new CustomEvent("bc:approval-added", { detail: card }));
      });
      jumpToHash();
    });
  }

  function removeGone(pending) {
    Array.prototype.forEach.call(document.querySelectorAll("#approvals > .approval"), function (card) {
      var id = Number(card.getAttribute("data-update-id"));
      if (pending[id] || card.contains(document.activeElement)) { return; }
      card.parentNode.removeChild(card);
    });
  }

  function annotate(item) {
    var card = document.getElementById("approval-" + item.update_id);
    if (!card) { return; }
    var p = card.querySelector(".approval-live");
    if (!p) {
      p = BC.el("p", { class: "approval-live meta" });
      var meta = card.querySelector(".meta");
      if (meta) { meta.parentNode.insertBefore(p, meta.nextSibling); } else { card.appendChild(p); }
    }
    p.textContent = lineFor(item);
  }

  function jumpToHash() {
    var m = /^#update-(\d+)$/.exec(window.location.hash || "");
    if (!m || !onQueue) { return; }
    var card = document.getElementById("approval-" + m[1]);
    if (card && !card.hasAttribute("data-jumped")) {
      card.setAttribute("data-jumped", "");
      card.setAttribute("tabindex", "-1");
      card.scrollIntoView({ block: "start" });
      card.focus({ preventScroll: true });
    }
  }

  function followIncident(items) {
    var byId = {};
    items.forEach(function (i) { byId[i.update_id] = i; });
    Array.prototype.forEach.call(followers, function (node) {
      var item = byId[Number(node.getAttribute("data-approval-for"))];
      if (item) { node.textContent = lineFor(item); }
    });
  }

  function poll() {
    BC.api("GET", "/console/approvals/live.json").then(function (r) {
      if (!r.ok || !r.data) { return; }
      var items = r.data.items || [];
      var pending = {};
      items.forEach(function (i) { pending[i.update_id] = i; });
      setBadge(r.data.count || 0);
      if (badge && known !== null) {
        var fresh = items.filter(function (i) { return !known[i.update_id] && !i.mine; });
        if (fresh.length) {
          var first = fresh[0];
          say(
            (fresh.length > 1 ? fresh.length + " new approval requests, the first: " : "New approval request: ") +
              "“" + first.title + "” (" + first.severity + ") from " + first.requested_by_name + ".",
            onQueue ? null : { href: first.link, text: "Review it" }
          );
          beep();
        }
        var gone = Object.keys(known).filter(function (id) { return !pending[id]; });
        if (onQueue && gone.length && !fresh.length) {
          say(gone.length === 1 ? "Update " + gone[0] + " no longer waits for approval (approved, rejected or changed)."
            : gone.length + " updates no longer wait for approval.");
        }
        if (onQueue) {
          addCards(items.filter(function (i) { return !known[i.update_id]; }).map(function (i) { return i.update_id; }));
          removeGone(pending);
        }
      }
      if (onQueue) { items.forEach(annotate); }
      followIncident(items);
      known = pending;
    });
  }

  jumpToHash();
  window.addEventListener("hashchange", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-jumped]"), function (n) { n.removeAttribute("data-jumped"); });
    jumpToHash();
  });
  poll();
  window.setInterval(function () {
    if (document.hidden && Math.random() < 0.75) { return; } /* a hidden tab polls about every 16 s */
    poll();
  }, POLL_MS);
})();
