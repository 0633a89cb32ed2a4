"""The one-person matrix (issue 19, "Done when"): for each door and each role, one person tries, alone, to get a
critical message out or to change what a live critical incident shows the public. Nothing may reach a provider and
no public surface may change.

Roles: keys of each scope (editor read+write, approver read+write+publish, publish only, alerts, read, metrics,
admin), console people (editor, approver, editor+approver, admin) and people with both a console session and a key
of their own (an editor+approver, an admin). Every attack is tried with every identity the person has: each of
them asks, and each of them approves. For an admin, the CLI on the server is one more of their identities (doors 6
and 9).

Doors, each attack with its own marker word (EVACUATE<DOOR>) in every text it writes:
  1. publish   a critical update of a new incident (written by the person, or by someone else when they cannot
               write), then approve it;
  2. alert     a critical `POST /v1/alerts`, then approve it;
  3. correct   a correction and a retraction (kind cancel) of the live critical update, then approve them;
  4. question  a minor update whose question mails a threshold summary to an outside address (high impact whatever
               the severity), then approve it; the escalation clock moves on: no re-send, no summary;
  5. edit      PATCH the live critical incident's public fields, then approve the change request;
  6. map       PUT a routing map whose alert rule publishes critical alerts alone (`publish: auto`,
               `two_person_rule: automation_allowed`) and which puts an attacker's number on the live category,
               then approve the proposal, then an inbound critical alert; for an admin, the same map through
               `broadcaster routing import` (its own test, at the end);
  7. maint     a maintenance window on the live category (the person plans it when they may), its incident raised
               to critical and retitled; approve what one can; the clock moves to the next notice;
  8. test      a test send of a critical update and a test correction of the live update: the test group only;
  9. grant     an admin makes a new approver (POST /v1/users with the approver role; `broadcaster keys create
               --scopes read,publish`) and approves their own pending critical update with it: APPROVER_GRANT_DELAY.
After each door, the worker drains (and the door's runner runs); then no request with the door's marker, nor any
marker, reached the fake provider for anyone but the test group (a social post or a webhook counts as the public),
and every public surface (banner JSON/HTML/JS, status pages, Atom/RSS, CAP index and the live update's CAP alert,
Statuspage JSON) is byte for byte what it was before the door, and shows no marker. Two exceptions, each checked
precisely where it is made: the maintenance window itself is legitimately public (its own notices, below
APPROVAL_SEVERITY), and test sends are listed in the CAP index as CAP test alerts (docs/public.md).

Each refusal is also checked to be the right one (a 403 for one's own request, not an incidental 412), and at the
end each identity that may approve does approve somebody else's request: what stopped it was being one person.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.delivery.conftest import run_until_idle
from tests.integrations import payloads
from tests.provider_env import UNLIMITED_RATES, use_fake_provider
from tests.users.conftest import PASSWORD, session_csrf, sign_in

from broadcaster import clock
from broadcaster.fakes.counting import recipients

from .helpers import approve_map_change
from .people import Person, changed, surfaces

ROLES = [
    "editor-key",
    "approver-key",
    "publish-only-key",
    "alerts-key",
    "read-key",
    "metrics-key",
    "admin-key",
    "console-editor",
    "console-approver",
    "console-editor+approver",
    "console-admin",
    "both",
    "both-admin",
]
#: every marker starts with this word: no request carrying it may reach anyone outside the test group
WORD = "EVACUATE"
#: the subscribers: two of the public (every update reaches them) and one of the test group
PUBLIC = [("+15550000001", "p1@example.org"), ("+15550000002", "p2@example.org")]
TESTER = ("+15550000009", "tester@example.org")
#: where a hostile threshold summary or contact would go
OUTSIDER_EMAIL, OUTSIDER_PHONE = "collector@outside.example", "+15559990000"
AM = "/v1/inbound/alertmanager/matrix"
CAP_INDEX = "/v1/feeds/cap.xml"
QUESTION_OPTIONS = [
    {"label": "I'm safe", "keywords": ["SAFE"]},
    {"label": "I need help", "needs_help": True, "keywords": ["SOS"]},
]


#: a marker in a request or a page: EVACUATE<DOOR><n>, n naming the identity that wrote it
TOKEN = re.compile(r"EVACUATE[A-Z]+[0-9]*")


def marker(door: str) -> str:
    """The door's marker (the prefix of each identity's own)."""
    return f"{WORD}{door.upper()}"


@pytest.fixture
def fake(fake, db_url, monkeypatch):  # noqa: F811  (the module's fake provider, tests/conftest.py)
    # a critical lane keeps less urgent ones off a provider for FLOOR_SECONDS after its last send (priority, not
    # safety): a short floor keeps each drain from waiting 1.5 s between the scene's critical and info sends
    monkeypatch.setattr("broadcaster.delivery.ratelimit.FLOOR_SECONDS", 0.05)
    return use_fake_provider(fake, monkeypatch, webhook=True, **UNLIMITED_RATES)


@pytest.fixture
def wall_clock() -> Iterator[None]:
    """The service clock follows the wall clock; doors that move it put it back."""
    clock.set_now(None)
    yield
    clock.set_now(None)


# --- the scene -----------------------------------------------------------------------------------------------------


@dataclass
class Scene:
    """What the person meets: the live critical incident (set up by two other people), subscribers, an integration
    whose alert rule only drafts, and the public surfaces as they were."""

    client: Any
    fake: Any
    admin: dict[str, str]
    approver: dict[str, str]
    role: str
    person: Person
    iid: int
    uid: int
    bearer: dict[str, str]
    tmp: Path
    before: dict[str, bytes] = field(default_factory=dict)
    #: the scopes of each identity (GET /v1/me)
    scopes: dict[str, set[str]] = field(default_factory=dict)
    #: console sessions of people made during the doors (closed at the end of the test)
    browsers: list[Any] = field(default_factory=list)
    #: marker -> who wrote it (an identity's label)
    marks: dict[str, str] = field(default_factory=lambda: {marker("map"): "the setup admin's alert rule"})
    n: int = 0

    def mark(self, door: str, ident: Person) -> str:
        """The marker of `door`'s attack by `ident`, remembered so that a leak names who made it."""
        for token, label in self.marks.items():
            if label == ident.label and token.startswith(marker(door)) and token[len(marker(door)) :].isdigit():
                return token
        token = f"{marker(door)}{len(self.marks)}"
        self.marks[token] = ident.label
        return token

    def culprits(self, found: list[str]) -> str:
        """Who wrote the markers in `found` (descriptions of requests or pages)."""
        tokens = sorted({t for text in found for t in TOKEN.findall(text)})
        return "; ".join(f"{t} by {self.marks.get(t, '?')}" for t in tokens)

    def meet(self, role: str, person: Person) -> None:
        """The person who acts from now on, and the scopes of each of their identities."""
        self.role, self.person = role, person
        for ident in self.ids:
            me = ident.request("GET", "/v1/me")
            assert me.status_code == 200, me.text
            self.scopes[ident.label] = set(me.json()["scopes"])

    @property
    def ids(self) -> list[Person]:
        return self.person.identities()

    def can(self, ident: Person, scope: str) -> bool:
        held = self.scopes[ident.label]
        return "admin" in held or scope in held

    def where(self, door: str, ident: Person | None = None) -> str:
        who = f" as {ident.label}" if ident is not None else ""
        return f"role {self.role}{who}, door {door}"

    def expect(self, resp: Any, allowed: set[int], door: str, ident: Person, step: str) -> Any:
        assert resp.status_code in allowed, (
            f"{self.where(door, ident)}: {step} answered {resp.status_code} (expected {sorted(allowed)}): {resp.text}"
        )
        return resp

    def next(self) -> int:
        self.n += 1
        return self.n


def _setup_map(client: Any, admin: dict[str, str], approver: dict[str, str]) -> None:
    """The live category also sends info notices by SMS (so a maintenance notice reaches people); an alert rule for
    critical alerts that only drafts (what the attack tries to turn into automatic publishing)."""
    routing_map = client.get("/v1/routing-map", headers=admin).json()
    [emergency] = [c for c in routing_map["categories"] if c["slug"] == "emergency"]
    emergency["channels"]["info"] = ["sms"]
    routing_map["alert_rules"] = [
        {
            "name": "matrix-alert",
            "match": {"alertname": "MatrixDown"},
            "category": "emergency",
            "severity": "critical",
            "title": f"{marker('map')} {{{{ labels.service }}}} is down",
            "template": f"{marker('map')} {{{{ annotations.summary }}}}",
            "publish": "draft",
            "group_by": "fingerprint",
        }
    ]
    resp = client.put("/v1/routing-map", headers=admin, json=routing_map)
    if resp.status_code == 202:  # more channels loosen the map: a second person approves
        approve_map_change(client, resp, approver)
    else:
        assert resp.status_code == 200, resp.text


@pytest.fixture
def scene(client, fake, people, live, setup_keys, wall_clock, tmp_path) -> Iterator[Callable[[str], Scene]]:
    """`scene(role)`: the scene, and a person of that role in it."""
    admin, approver = setup_keys
    made: list[Scene] = []

    def make(role: str) -> Scene:
        for slug in ("water", "gas"):
            resp = client.post("/v1/services", headers=admin, json={"slug": slug, "name": slug.title()})
            assert resp.status_code == 201, resp.text
        _setup_map(client, admin, approver)
        token = client.post("/v1/integrations", headers=admin, json={"name": "matrix", "kind": "alertmanager"})
        assert token.status_code == 201, token.text
        for phone, email in PUBLIC:
            resp = client.post("/v1/subscribers", headers=admin, json={"phone": phone, "email": email})
            assert resp.status_code == 201, resp.text
        phone, email = TESTER
        resp = client.post("/v1/subscribers", headers=admin, json={"phone": phone, "email": email, "test_group": True})
        assert resp.status_code == 201, resp.text
        iid, uid = live()
        run_until_idle(60)
        person = people(role)
        bearer = {"Authorization": f"Bearer {token.json()['secret']}"}
        s = Scene(client, fake, admin, approver, role, person, iid, uid, bearer, tmp_path)
        s.meet(role, person)
        s.before = surfaces(client, iid, uid)
        assert surfaces(client, iid, uid) == s.before  # the surfaces render the same bytes twice
        assert _reached_public(fake, WORD) == []
        made.append(s)
        return s

    yield make
    for s in made:
        for browser in s.browsers:
            browser.__exit__(None, None, None)


# --- what reached the provider, what the public sees -----------------------------------------------------------


def _reached_public(fake: Any, word: str) -> list[str]:
    """Requests carrying `word` that reached the fake provider for anyone but the test group (a post to a social
    network or a webhook reaches the public): provider, path and recipients of each."""
    testers = {TESTER[0], TESTER[1]}
    out = []
    for r in fake.requests():
        if r.method != "POST" or word.encode() not in r.body:
            continue
        to = recipients(r)
        if to and set(to) <= testers:
            continue
        tokens = sorted(set(TOKEN.findall(r.body.decode("utf-8", "replace"))))
        out.append(f"{r.provider} {r.path} to {to or 'the public'} carrying {', '.join(tokens)}")
    return out


def _reached_testers(fake: Any, word: str) -> int:
    testers = {TESTER[0], TESTER[1]}
    return sum(
        1 for r in fake.requests() if r.method == "POST" and word.encode() in r.body and set(recipients(r)) & testers
    )


def _to_outsider(fake: Any) -> list[str]:
    """Requests to the outside address of the hostile summaries (with the markers they carry)."""
    return [
        f"{r.provider} {r.path} carrying {sorted(set(TOKEN.findall(r.body.decode('utf-8', 'replace'))))}"
        for r in fake.requests()
        if r.method == "POST" and (OUTSIDER_EMAIL.encode() in r.body or OUTSIDER_PHONE.encode() in r.body)
    ]


def check(
    s: Scene,
    door: str,
    *,
    baseline: dict[str, bytes] | None = None,
    extra: tuple[str, ...] = (),
    test_cap: bool = False,
) -> dict[str, bytes]:
    """After a door: drain the worker; no request with the door's marker (nor any marker) reached anyone outside
    the test group; the public surfaces are byte for byte the baseline (the scene's unless given), and no surface
    shows any marker. With `test_cap`, the CAP index may list new test alerts, and only those (`_cap_tests_only`).
    The surfaces now."""
    run_until_idle(60)
    for word in (marker(door), WORD):
        sent = _reached_public(s.fake, word)
        assert sent == [], (
            f"{s.where(door)}: {len(sent)} message(s) with {word} reached people (attacks: {s.culprits(sent)}): {sent}"
        )
    now = surfaces(s.client, s.iid, s.uid, extra)
    base = baseline if baseline is not None else s.before
    skip = {CAP_INDEX} if test_cap else set()
    if test_cap:
        _cap_tests_only(s, door, base[CAP_INDEX], now[CAP_INDEX])
    diff = [url for url in changed(base, now) if url not in skip]
    found = [now[url].decode() for url in diff]
    assert diff == [], f"{s.where(door)}: public surfaces changed (attacks: {s.culprits(found)}): {diff}"
    shown = [f"{url}: {TOKEN.findall(b.decode())}" for url, b in now.items() if WORD.encode() in b and url not in skip]
    assert shown == [], f"{s.where(door)}: a marker is on public surfaces (attacks: {s.culprits(shown)}): {shown}"
    return now


def _cap_tests_only(s: Scene, door: str, before: bytes, after: bytes) -> None:
    """The CAP index gained test alerts only: every entry it had is unchanged, every new one is titled [TEST] and
    its alert says `<status>Exercise</status>` (docs/public.md: test sends appear in the CAP feed as exercises,
    which CAP consumers do not act on; they never reach the banner, the status page or RSS/Atom)."""
    import feedparser

    old = {e.id: e for e in feedparser.parse(before).entries}
    new = {e.id: e for e in feedparser.parse(after).entries}
    for key, entry in old.items():
        assert key in new and new[key].title == entry.title and new[key].summary == entry.summary, (
            f"{s.where(door)}: CAP entry {key} changed"
        )
    for key in set(new) - set(old):
        entry = new[key]
        assert entry.title.endswith(" [TEST]"), f"{s.where(door)}: a live CAP entry appeared: {entry.title}"
        [href] = [link.href for link in entry.links if link.rel == "alternate"]
        alert = s.client.get(href.removeprefix("http://testserver"))
        assert alert.status_code == 200 and b"<status>Exercise</status>" in alert.content, (
            f"{s.where(door)}: CAP alert {href} is not a test: {alert.text}"
        )


# --- approving one's own request -------------------------------------------------------------------------------


def _preview_etag(s: Scene, ident: Person, update_id: int, fallback: str) -> str:
    """The content ETag as this identity sees it in the preview (the requester's ETag when it cannot read)."""
    if not s.can(ident, "read"):
        return fallback
    resp = ident.request("POST", f"/v1/updates/{update_id}/preview")
    assert resp.status_code == 200, resp.text
    return str(resp.headers["ETag"])


def approve_own_update(s: Scene, door: str, update_id: int, etag: str, requester: Person) -> None:
    """Every identity of the person approves the update they asked for: refused as the requester (or for want of
    the publish scope); the update still waits."""
    for ident in s.ids:
        tag = _preview_etag(s, ident, update_id, etag)
        resp = ident.request("POST", f"/v1/updates/{update_id}/approve", headers={"If-Match": tag})
        s.expect(resp, {403}, door, ident, f"approving update {update_id} asked by {requester.label}")
        if s.can(ident, "publish"):
            assert "different person" in resp.json()["detail"], f"{s.where(door, ident)}: {resp.text}"
    state = s.client.get(f"/v1/updates/{update_id}", headers=s.admin).json()["state"]
    assert state == "pending_approval", f"{s.where(door)}: update {update_id} is {state}"


def _draft(s: Scene, author: Person | None, m: str, *, severity: str = "critical", **update: Any) -> int:
    """A new incident of `emergency` with one draft update, written by `author` (by the setup admin when None);
    every text carries the marker `m`. The update's id."""
    headers = author.headers if author is not None else s.admin
    client = author.client if author is not None else s.client
    inc = client.post(
        "/v1/incidents",
        headers=headers,
        json={"title": f"{m} leave the area", "category": "emergency", "severity": severity},
    )
    assert inc.status_code == 201, inc.text
    body = {"body": f"{m} leave the area now.", "summary": f"{m} leave now"} | update
    upd = client.post(f"/v1/incidents/{inc.json()['id']}/updates", headers=headers, json=body)
    assert upd.status_code == 201, upd.text
    return int(upd.json()["id"])


def _author(s: Scene, ident: Person) -> Person | None:
    """Who writes the draft the person publishes: themselves when they may write, else someone else."""
    return ident if s.can(ident, "write") else None


def _may_send(s: Scene, ident: Person) -> bool:
    return s.can(ident, "write") or s.can(ident, "publish")


def ask_and_approve_alone(s: Scene, door: str, update_id: int, ident: Person) -> None:
    """`ident` publishes the update: it waits for a second person (or is refused without the scope); then every
    identity of the person approves it, and is refused."""
    resp = ident.request("POST", f"/v1/updates/{update_id}/publish")
    s.expect(resp, {202} if _may_send(s, ident) else {403}, door, ident, f"publishing update {update_id}")
    if resp.status_code == 202:
        approve_own_update(s, door, update_id, resp.headers["ETag"], ident)


# --- the doors ---------------------------------------------------------------------------------------------------


def door_publish(s: Scene) -> None:
    for ident in s.ids:
        ask_and_approve_alone(s, "publish", _draft(s, _author(s, ident), s.mark("publish", ident)), ident)
    check(s, "publish")


def door_alert(s: Scene) -> None:
    for ident in s.ids:
        m = s.mark("alert", ident)
        body = {"category": "emergency", "severity": "critical", "message": f"{m} leave the area now."}
        resp = ident.request("POST", "/v1/alerts", json=body | {"summary": f"{m} leave now"})
        s.expect(resp, {202} if s.can(ident, "alerts") else {403}, "alert", ident, "POST /v1/alerts")
        if resp.status_code == 202:
            assert resp.json()["approval_required"] is True
            approve_own_update(s, "alert", resp.json()["update"]["id"], resp.headers["ETag"], ident)
    check(s, "alert")


def door_correct(s: Scene) -> None:
    for ident in s.ids:
        m = s.mark("correct", ident)
        for kind in ("correction", "cancel"):
            author = _author(s, ident)
            body: dict[str, Any] = {"body": f"{m} {kind}: leave the area now.", "summary": f"{m} leave now"}
            body |= {"kind": kind, "corrects": s.uid}
            resp = (author or Person(s.client, s.admin)).request("POST", f"/v1/incidents/{s.iid}/updates", json=body)
            assert resp.status_code == 201, resp.text
            ask_and_approve_alone(s, "correct", int(resp.json()["id"]), ident)
    check(s, "correct")


def door_question(s: Scene) -> None:
    """A minor update (below APPROVAL_SEVERITY) whose question mails the non-responders to an outside address: high
    impact whatever the severity. Then the escalation clock moves past every delay."""
    from broadcaster.responses.escalation_runner import Escalator

    hostile = {
        "steps": [{"after_seconds": 5, "channel": "voice"}],
        "threshold": {
            "percent": 100,
            "after_seconds": 5,
            "group": {"emails": [OUTSIDER_EMAIL], "phones": [OUTSIDER_PHONE]},
        },
    }
    for ident in s.ids:
        m = s.mark("question", ident)
        question = {"text": f"{m} are you safe?", "options": QUESTION_OPTIONS, "escalation": hostile}
        update_id = _draft(s, _author(s, ident), m, severity="minor", channels=["sms"], question=question)
        ask_and_approve_alone(s, "question", update_id, ident)
    run_until_idle(60)
    for _ in range(2):
        clock.advance(timedelta(minutes=1))
        Escalator().tick()
        run_until_idle(60)
    clock.set_now(None)
    leaked = _to_outsider(s.fake)
    assert leaked == [], f"{s.where('question')}: the outside address got {leaked} (attacks: {s.culprits(leaked)})"
    check(s, "question")


def door_edit(s: Scene) -> None:
    for ident in s.ids:
        m = s.mark("edit", ident)
        resp = ident.patch(s.iid, {"title": f"{m} leave the area", "sites": ["www"], "severity": "major"})
        s.expect(resp, {202} if s.can(ident, "write") else {403}, "edit", ident, "PATCH the live incident")
        if resp.status_code != 202:
            continue
        cid, etag = resp.json()["id"], resp.headers["ETag"]
        for other in s.ids:
            done = other.approve(s.iid, cid, etag)
            s.expect(done, {403}, "edit", other, f"approving change request {cid} asked by {ident.label}")
    check(s, "edit")


def _hostile_map(s: Scene, phone: str = OUTSIDER_PHONE) -> dict[str, Any]:
    """The stored map with its alert rule publishing critical alerts alone, and an attacker's number as the live
    category's contact (shown on the banner)."""
    routing_map = copy.deepcopy(s.client.get("/v1/routing-map", headers=s.admin).json())
    [rule] = routing_map["alert_rules"]
    rule |= {"publish": "auto", "two_person_rule": "automation_allowed"}
    [emergency] = [c for c in routing_map["categories"] if c["slug"] == "emergency"]
    emergency["contact"] = {"phone": phone, "opening_hours": "24/7"}
    return dict(routing_map)


def _approve_version_alone(s: Scene, number: int, etag: str, proposer: str) -> None:
    for ident in s.ids:
        resp = ident.request("POST", f"/v1/routing-map/versions/{number}/approve", headers={"If-Match": etag})
        s.expect(resp, {403}, "map", ident, f"approving routing-map version {number} proposed by {proposer}")
    state = s.client.get(f"/v1/routing-map/versions/{number}", headers=s.admin).json()["state"]
    assert state == "proposed", f"{s.where('map')}: version {number} is {state}"


def _cli(args: list[str], **kwargs: Any) -> Any:
    from typer.testing import CliRunner

    from broadcaster.cli import app as cli

    return CliRunner().invoke(cli, args, env={"USER": "matrix-admin"}, **kwargs)


def door_map(s: Scene) -> None:
    hostile = _hostile_map(s)
    for ident in s.ids:
        resp = ident.request("PUT", "/v1/routing-map", json=hostile)
        s.expect(resp, {202} if s.can(ident, "admin") else {403}, "map", ident, "PUT /v1/routing-map")
        if resp.status_code == 202:
            _approve_version_alone(s, resp.json()["number"], resp.headers["ETag"], ident.label)
    inbound_alert(s)
    check(s, "map")


def door_map_cli(s: Scene, phone: str) -> None:
    """An admin runs the CLI on the server too. A map that loosens safety needs `--proposer ADMIN_EMAIL`: the
    proposal is then that person's (`user:<id>`), and none of their identities may approve it. An admin key owned
    by nobody names no person: the CLI refuses such a map outright (nothing stored)."""
    path = s.tmp / "hostile.yaml"
    path.write_text(yaml.safe_dump(_hostile_map(s, phone)), encoding="utf-8")
    email = s.person.extra.get("email")
    before = s.client.get("/v1/routing-map/versions", headers=s.admin, params={"limit": 1}).json()["items"]
    if email is None:
        result = _cli(["routing", "import", str(path)])
        assert result.exit_code == 1, f"{s.where('map')}: {result.output}"
        assert "loosens safety and was not applied" in result.output, f"{s.where('map')}: {result.output}"
        after = s.client.get("/v1/routing-map/versions", headers=s.admin, params={"limit": 1}).json()["items"]
        assert after == before, f"{s.where('map')}: the refused map was stored: {after}"
        inbound_alert(s)
        check(s, "map")
        return
    result = _cli(["routing", "import", str(path), "--proposer", email])
    assert result.exit_code == 0, result.output
    assert "loosens safety" in result.output, f"{s.where('map')}: {result.output}"
    [latest] = s.client.get("/v1/routing-map/versions", headers=s.admin, params={"limit": 1}).json()["items"]
    assert latest["state"] == "proposed" and latest["proposed_by"] == s.person.actor, latest
    number, etag = latest["number"], s.client.get(f"/v1/routing-map/versions/{latest['number']}", headers=s.admin)
    applied = []
    for ident in s.ids:
        resp = ident.request(
            "POST", f"/v1/routing-map/versions/{number}/approve", headers={"If-Match": etag.headers["ETag"]}
        )
        if resp.status_code != 403:
            applied.append(f"{ident.label} answered {resp.status_code}")
    if applied:  # what one person got out with it, for the failure message
        alert = payloads.alertmanager("MatrixDown", severity="critical", service=marker("map"))
        states = [r.get("update_state") for r in s.client.post(AM, json=alert, headers=s.bearer).json()["results"]]
        run_until_idle(60)
        reached = _reached_public(s.fake, WORD)
        pytest.fail(
            f"{s.where('map')}: approving routing-map version {number} proposed with the CLI by {s.person.actor}: "
            f"{applied}; then an inbound critical alert was {states} and {len(reached)} message(s) reached people "
            f"({reached[:3]}...); public surfaces changed: {changed(s.before, surfaces(s.client, s.iid, s.uid))}"
        )
    inbound_alert(s)
    check(s, "map")


def inbound_alert(s: Scene) -> None:
    """An inbound critical alert (Alertmanager, through the scene's integration): the stored rule only drafts."""
    alert = payloads.alertmanager(
        "MatrixDown", severity="critical", service=marker("map"), instances=(f"db-{s.next()}",)
    )
    resp = s.client.post(AM, json=alert, headers=s.bearer)
    assert resp.status_code == 200, resp.text
    states = [r.get("update_state") for r in resp.json()["results"]]
    assert states == ["draft"], f"{s.where('map')}: the inbound alert's update is {states}"


def door_maint(s: Scene) -> None:
    """A window on the live category (planned by the person when they hold publish, else by the setup admin):
    its notices are info, so the gate approves the schedule at once and the first notice goes out (legitimately:
    no marker). Then the person raises the window's incident to critical with the marker title and approves what
    they can; the clock moves to the reminder and the runner runs."""
    from broadcaster.maintenance.runner import MaintenanceRunner

    start = clock.now().replace(microsecond=0) + timedelta(hours=5)
    window = {
        "title": "Water main upgrade",
        "message": "Water pressure may drop.",
        "services": ["water"],
        "category": "emergency",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=1)).isoformat(),
        "notify": {"at_creation": True, "hours_before": [2], "at_start": True, "at_end": True},
    }
    planner = next((i for i in s.ids if s.can(i, "publish")), None)
    for ident in s.ids:
        if not s.can(ident, "publish"):
            s.expect(ident.request("POST", "/v1/maintenance", json=window), {403}, "maint", ident, "planning")
    resp = (planner or Person(s.client, s.admin, label="the setup admin")).request(
        "POST", "/v1/maintenance", json=window
    )
    assert resp.status_code == 201, resp.text
    wid = resp.json()["id"]
    incident = resp.json()["incident_id"]
    runner = MaintenanceRunner()
    assert runner.run_once()["sent"] == 1
    run_until_idle(60)
    # the maintenance itself is public now (legitimately, below APPROVAL_SEVERITY): the baseline of this door
    extra = (f"/status/incidents/{incident}",)
    baseline = surfaces(s.client, s.iid, s.uid, extra)

    for ident in s.ids:
        m = s.mark("maint", ident)
        resp = ident.patch(incident, {"severity": "critical", "title": f"{m} leave the area"})
        s.expect(resp, {202} if s.can(ident, "write") else {403}, "maint", ident, "raising the window's incident")
        if resp.status_code == 202:
            cid, etag = resp.json()["id"], resp.headers["ETag"]
            for other in s.ids:
                done = other.approve(incident, cid, etag)
                s.expect(done, {403}, "maint", other, f"approving change request {cid} asked by {ident.label}")
    tag = s.client.get(f"/v1/maintenance/{wid}/preview", headers=s.admin).headers["ETag"]
    for ident in s.ids:  # the gate approved the schedule (info notices); no one approves a change of it alone
        done = ident.request("POST", f"/v1/maintenance/{wid}/approve", headers={"If-Match": tag})
        s.expect(done, {403, 409}, "maint", ident, "approving the window's schedule")
    check(s, "maint", baseline=baseline, extra=extra)

    clock.advance(timedelta(hours=3))  # the reminder's moment
    runner.run_once()
    run_until_idle(60)
    clock.set_now(None)
    sent = _reached_public(s.fake, WORD)
    assert sent == [], f"{s.where('maint')}: a raised notice reached people: {sent}"
    shown = surfaces(s.client, s.iid, s.uid, extra)
    # the reminder itself went out (info, approved by the gate): the maintenance's pages legitimately changed; the
    # live incident's own page, its CAP alert and the banner did not, and no page shows the marker
    for url in ("/v1/banner", f"/status/incidents/{s.iid}", f"/v1/feeds/cap/{s.uid}.xml"):
        assert shown[url] == s.before[url], f"{s.where('maint')}: {url} changed"
    assert [u for u, b in shown.items() if WORD.encode() in b] == [], f"{s.where('maint')}: marker on a surface"
    s.before = surfaces(s.client, s.iid, s.uid)  # the baseline of the doors after this one


def door_test(s: Scene) -> None:
    """A test send reaches the test group only, whoever sends it (write alone may): a critical update of a new
    incident, and a test correction of the live update."""
    sent_any = False
    for ident in s.ids:
        m = s.mark("test", ident)
        author = _author(s, ident)
        drafts = [_draft(s, author, m, test=True)]
        fix = {"body": f"{m} correction: leave now.", "summary": f"{m} leave", "kind": "correction"}
        resp = (author or Person(s.client, s.admin)).request(
            "POST", f"/v1/incidents/{s.iid}/updates", json=fix | {"corrects": s.uid, "test": True}
        )
        assert resp.status_code == 201, resp.text
        drafts.append(int(resp.json()["id"]))
        for update_id in drafts:
            resp = ident.request("POST", f"/v1/updates/{update_id}/publish")
            s.expect(resp, {200} if _may_send(s, ident) else {403}, "test", ident, f"test send {update_id}")
            sent_any |= resp.status_code == 200
    # test sends are listed in the CAP index as CAP exercises (`<status>Exercise</status>`, docs/public.md):
    # test-only content, so the index is checked entry by entry instead of byte for byte
    check(s, "test", test_cap=True)
    if sent_any:  # the count works: the test group did get them
        assert _reached_testers(s.fake, marker("test")) > 0, f"{s.where('test')}: the test group got nothing"


def door_grant(s: Scene) -> None:
    """An admin mints a second approver and approves their own pending critical update with it."""
    n = s.next()
    own: list[tuple[int, str, Person]] = []
    for ident in s.ids:
        if _may_send(s, ident) and s.can(ident, "admin"):
            update_id = _draft(s, _author(s, ident), s.mark("grant", ident))
            resp = ident.request("POST", f"/v1/updates/{update_id}/publish")
            s.expect(resp, {202}, "grant", ident, f"publishing update {update_id}")
            own.append((update_id, resp.headers["ETag"], ident))
    minted: list[tuple[str, Person]] = []
    for k, ident in enumerate(s.ids):
        email = f"new-approver-{n}-{k}@example.org"
        body = {"email": email, "name": "New approver", "roles": ["approver"], "password": PASSWORD}
        resp = ident.request("POST", "/v1/users", json=body)
        s.expect(resp, {201} if s.can(ident, "admin") else {403}, "grant", ident, "POST /v1/users (approver)")
        if resp.status_code == 201:
            minted.append((f"approver {email} made by {ident.label} (API)", _browser(s, email)))
    if any(s.can(ident, "admin") for ident in s.ids):  # an admin runs the CLI on the server too
        result = _cli(["keys", "create", "--name", f"cli-publish-{n}", "--scopes", "read,publish"])
        assert result.exit_code == 0, result.output
        plaintext = result.stdout.splitlines()[0].strip()
        key = Person(s.client, {"Authorization": f"Bearer {plaintext}"}, label=f"key cli-publish-{n}")
        minted.append(("a publish key made with `keys create`", key))
    for update_id, etag, requester in own:
        for what, new in minted:
            resp = new.request("POST", f"/v1/updates/{update_id}/approve", headers={"If-Match": etag})
            assert resp.status_code == 403 and resp.json()["error"] == "approver_grant_delay", (
                f"{s.where('grant', requester)}: {what} approved update {update_id}: {resp.status_code} {resp.text}"
            )
        approve_own_update(s, "grant", update_id, etag, requester)
    check(s, "grant")


def _browser(s: Scene, email: str) -> Person:
    """A console session of a person just made (a browser of its own, closed with the scene)."""
    from fastapi.testclient import TestClient

    c = TestClient(s.client.app)
    c.__enter__()
    s.browsers.append(c)
    assert sign_in(c, email).status_code == 303
    return Person(c, {"X-CSRF-Token": session_csrf(c)}, label=f"console session of {email}")


def controls(s: Scene) -> None:
    """Each identity that may approve does approve somebody else's request: what stopped it above was being one
    person, not a missing power."""
    for ident in s.ids:
        if not s.can(ident, "publish"):
            continue
        update_id = _draft(s, None, "Control")
        asked = s.client.post(f"/v1/updates/{update_id}/publish", headers=s.admin)
        assert asked.status_code == 202, asked.text
        tag = _preview_etag(s, ident, update_id, asked.headers["ETag"])
        resp = ident.request("POST", f"/v1/updates/{update_id}/approve", headers={"If-Match": tag})
        s.expect(resp, {200}, "control", ident, "approving somebody else's update")


#: in this order: the grant door before any door moves the clock (a moved clock would end APPROVER_GRANT_DELAY);
#: the maintenance door changes the public pages legitimately, and test sends add CAP test alerts: last
DOORS = [door_publish, door_alert, door_correct, door_edit, door_map, door_grant, door_question, door_maint, door_test]


@pytest.mark.parametrize("role", ROLES)
def test_one_person_alone_gets_nothing_out_and_changes_nothing_public(scene, role):
    s = scene(role)
    for door in DOORS:
        door(s)
    controls(s)


#: the roles that would run the CLI on the server
ADMINS = ["admin-key", "console-admin", "both-admin"]


def test_an_admin_alone_cannot_apply_the_routing_map_they_imported_with_the_cli(scene, people):
    """Each admin in turn (a key, a console session, both) imports a hostile map with the CLI and approves it."""
    s = scene(ADMINS[0])
    for k, role in enumerate(ADMINS):
        if k:
            s.meet(role, people(role))
        door_map_cli(s, f"+1555999001{k}")
