"""Routing-map versions (issue 19): a change that loosens safety needs an admin to propose it and a second person
to approve its diff; anything else applies at once, and every change is a version.

The reproductions of the issue (each failed on the code before versions):
- (3) an editor's `PUT /v1/routing-map` switched on critical auto-publish (`publish: auto`,
  `two_person_rule: automation_allowed`): the next inbound alert went out by SMS, voice and email, unapproved;
- (4) an editor's routing-map change put an attacker's number on the live banner of a critical incident at once;
- (2) an editor attached escalation rules (re-sends, summaries to any address) to a category at once.
Counted at the fake provider (real Twilio and SendGrid SDKs) and on the public banner.
"""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import pytest
from sqlalchemy import select
from tests.approving import confirm
from tests.integrations import payloads
from tests.provider_env import UNLIMITED_RATES, use_fake_provider

from broadcaster.fakes.counting import accepted, per_recipient, sends

from .helpers import approve_map_change, assert_error

PEOPLE = [("+15550000001", "p1@example.org"), ("+15550000002", "p2@example.org")]
ATTACKER = "+15559990000"
AM = "/v1/inbound/alertmanager/prometheus"

#: a map an editor may write: a category that reaches people by SMS, voice and email when critical, and an alert
#: rule that only drafts
PLAN: dict[str, Any] = {
    "categories": [
        {
            "slug": "outage",
            "name": "Service outage",
            "contact": {"phone": "+15551234567"},
            "channels": {"critical": ["twilio-sms", "twilio-voice", "sendgrid"], "major": ["banner"]},
        }
    ],
    "alert_rules": [
        {
            "name": "database-down",
            "match": {"alertname": "DatabaseDown"},
            "category": "outage",
            "severity": "major",
            "severity_label": "severity",
            "severity_map": {"critical": "critical"},
            "title": "{{ labels.service }} is down",
            "template": "{{ annotations.summary }}",
            "publish": "draft",
            "group_by": "fingerprint",
        }
    ],
}


def _with(**rule: Any) -> dict[str, Any]:
    """PLAN with the rule's fields changed."""
    plan = copy.deepcopy(PLAN)
    plan["alert_rules"][0].update(rule)
    return plan


@pytest.fixture
def fake(fake, db_url, monkeypatch):  # noqa: F811  (the module's fake provider, tests/conftest.py)
    return use_fake_provider(fake, monkeypatch, webhook=False, **UNLIMITED_RATES)


@pytest.fixture
def editor(auth) -> dict[str, str]:
    return auth("read", "write")


@pytest.fixture
def approver(auth) -> dict[str, str]:
    return auth("read", "publish")


@pytest.fixture
def planned(client, editor, admin) -> dict[str, Any]:
    """PLAN applied by an editor (nothing in it loosens safety), two subscribers of `outage`."""
    resp = client.put("/v1/routing-map", headers=editor, json=PLAN)
    assert resp.status_code == 200, resp.text
    for phone, email in PEOPLE:
        sub = client.post("/v1/subscribers", headers=admin, json={"phone": phone, "email": email})
        assert sub.status_code == 201, sub.text
    return dict(resp.json())


def _drain() -> None:
    from broadcaster.delivery.worker import Worker
    from broadcaster.settings import get_settings

    asyncio.run(Worker(get_settings()).run(until_idle=True, max_seconds=60))


def _reached(fake: Any) -> dict[str, int]:
    """Per channel, how many people the fake provider accepted a send to."""
    reqs = fake.requests()
    return {
        name: sum(per_recipient(accepted(sends(reqs, name))).values())
        for name in ("twilio-sms", "twilio-voice", "sendgrid")
    }


def _map(client: Any, who: dict[str, str]) -> dict[str, Any]:
    resp = client.get("/v1/routing-map", headers=who)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _versions(client: Any, who: dict[str, str]) -> list[dict[str, Any]]:
    resp = client.get("/v1/routing-map/versions", headers=who)
    assert resp.status_code == 200, resp.text
    return list(resp.json()["items"])


def _audit(action: str) -> list[dict[str, Any]]:
    from broadcaster.db import session_scope
    from broadcaster.models import AuditEntry

    with session_scope() as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))
        return [{"actor": r.actor, "target_id": r.target_id, **r.detail} for r in rows]


# --- reproduction 3: unapproved critical auto-publish ------------------------------------------------------------


def test_critical_auto_publish_needs_an_admin_and_a_second_person(client, fake, planned, editor, approver, admin):
    token = client.post("/v1/integrations", headers=admin, json={"name": "prometheus", "kind": "alertmanager"})
    bearer = {"Authorization": f"Bearer {token.json()['secret']}"}
    automation = _with(publish="auto", two_person_rule="automation_allowed")

    # the editor: refused, naming why it loosens safety; nothing changes
    refused = assert_error(client.put("/v1/routing-map", headers=editor, json=automation), 403, "loosens_safety")
    assert refused["field"] == "Authorization" and "admin" in refused["detail"]
    assert any("automation_allowed" in r for r in refused["reasons"])
    assert any("publishes automatically" in r for r in refused["reasons"])
    assert _map(client, admin) == planned
    [decision] = [d for d in _audit("gate.decision") if d["door"] == "routing.map" and d["decision"] == "refused"]
    assert "automation_allowed" in decision["reason"]

    # the admin: a proposal (202) with its diff and ETag; nothing changes yet
    proposal = client.put("/v1/routing-map", headers=admin, json=automation)
    assert proposal.status_code == 202, proposal.text
    body = proposal.json()
    assert body["state"] == "proposed" and body["loosens"] and proposal.headers["ETag"] == body["etag"]
    assert "~ alert_rules[database-down] changed" in body["diff_text"]
    assert 'two_person_rule: "required" -> "automation_allowed"' in body["diff_text"]
    assert _map(client, admin) == planned

    # a critical alert meanwhile waits for a person: nothing reaches anyone
    first = client.post(AM, json=payloads.alertmanager(severity="critical"), headers=bearer)
    assert first.status_code == 200, first.text
    assert first.json()["results"][0]["update_state"] == "draft"  # the stored rule still drafts
    _drain()
    assert _reached(fake) == {"twilio-sms": 0, "twilio-voice": 0, "sendgrid": 0}

    # a second person approves the diff they reviewed: it applies, and automation now publishes alone
    approved = approve_map_change(client, proposal, approver)
    assert approved["approved_by"].startswith("key:test-read-publish") and approved["number"] == body["number"]
    assert _map(client, admin)["alert_rules"][0]["two_person_rule"] == "automation_allowed"
    another = payloads.alertmanager(severity="critical", instances=("db-2:9100",))
    second = client.post(AM, json=another, headers=bearer)
    assert second.json()["results"][0]["update_state"] == "published", second.text
    _drain()
    assert _reached(fake) == {"twilio-sms": 2, "twilio-voice": 2, "sendgrid": 2}
    assert set(per_recipient(sends(fake.requests(), "twilio-sms"))) == {p for p, _ in PEOPLE}
    [published] = [a for a in _audit("alert.auto_publish") if a["state"] == "published"]
    assert published["two_person_rule"] == "bypassed: the rule allows automation"
    assert published["allowed_by"] == (
        f"alert_rules[database-down] of routing-map version {body['number']}, approved by {approved['approved_by']}"
    )


def test_an_admins_proposal_changes_nothing_until_approved(client, fake, planned, admin, approver):
    """Proposed automation does not count: a critical alert still waits for a person (0 at the provider)."""
    token = client.post("/v1/integrations", headers=admin, json={"name": "prometheus", "kind": "alertmanager"})
    bearer = {"Authorization": f"Bearer {token.json()['secret']}"}
    auto = client.put("/v1/routing-map", headers=admin, json=_with(publish="auto"))
    approve_map_change(client, auto, approver)  # automatic, but critical alerts wait for a person
    proposal = client.put(
        "/v1/routing-map", headers=admin, json=_with(publish="auto", two_person_rule="automation_allowed")
    )
    assert proposal.status_code == 202, proposal.text
    resp = client.post(AM, json=payloads.alertmanager(severity="critical"), headers=bearer)
    assert resp.json()["results"][0]["update_state"] == "pending_approval", resp.text
    _drain()
    assert _reached(fake) == {"twilio-sms": 0, "twilio-voice": 0, "sendgrid": 0}
    [audited] = _audit("alert.auto_publish")
    assert audited["two_person_rule"] == "applied: waiting for a person's approval" and audited["allowed_by"] is None


# --- reproduction 4: the contact shown on a live critical incident ----------------------------------------------


def _banner_phone(client: Any) -> str:
    resp = client.get("/v1/banner")
    assert resp.status_code == 200, resp.text
    [banner] = resp.json()["banners"]
    return next(r["value"] for r in banner["routes"] if r["kind"] == "phone")


def _live_critical(client: Any, admin: dict[str, str], approver: dict[str, str]) -> None:
    """A published critical incident of `emergency` (on the banner, with the category's phone)."""
    created = client.post(
        "/v1/incidents",
        headers=admin,
        json={
            "title": "Chemical leak",
            "category": "emergency",
            "severity": "critical",
            "update": {"body": "Stay in."},
        },
    )
    assert created.status_code == 201, created.text
    update_id = created.json()["updates"][0]["id"]
    asked = client.post(f"/v1/updates/{update_id}/publish", headers=admin)
    assert asked.status_code == 202, asked.text
    ok = client.post(
        f"/v1/updates/{update_id}/approve",
        json=confirm(update_id),
        headers=approver | {"If-Match": asked.headers["ETag"]},
    )
    assert ok.status_code == 200, ok.text


def test_the_call_number_of_a_live_critical_incident_changes_only_with_a_second_person(
    client, emergency_category, admin, editor, approver
):
    _live_critical(client, admin, approver)
    assert _banner_phone(client) == "+15551234567"
    attacker = {"contact": {"phone": ATTACKER, "opening_hours": "24/7"}}
    body = assert_error(client.patch("/v1/categories/emergency", headers=editor, json=attacker), 403, "loosens_safety")
    assert (
        "categories[emergency]: contact.phone changed while an incident at or above APPROVAL_SEVERITY" in body["detail"]
    )
    whole = _map(client, admin)
    whole["categories"][0]["contact"]["phone"] = ATTACKER
    assert_error(client.put("/v1/routing-map", headers=editor, json=whole), 403, "loosens_safety")
    assert _banner_phone(client) == "+15551234567"

    proposal = client.put("/v1/routing-map", headers=admin, json=whole)
    assert proposal.status_code == 202, proposal.text
    assert f'contact.phone: "+15551234567" -> "{ATTACKER}"' in proposal.json()["diff_text"]
    assert _banner_phone(client) == "+15551234567"  # proposed, not applied
    approve_map_change(client, proposal, approver)
    assert _banner_phone(client) == ATTACKER


def test_contacts_apply_at_once_when_nothing_critical_is_live(client, emergency_category, editor, admin):
    resp = client.patch("/v1/categories/emergency", headers=editor, json={"contact": {"phone": ATTACKER}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["contact"] == {"phone": ATTACKER}
    [version] = _versions(client, admin)[:1]
    assert version["state"] == "applied" and not version["loosens"] and version["approved_by"] is None


# --- reproduction 2 (second half): category escalation rules ----------------------------------------------------

ESCALATION = {
    "steps": [{"after_seconds": 5, "channel": "voice"}],
    "threshold": {"percent": 100, "after_seconds": 5, "group": {"emails": ["outside@attacker.example"]}},
}


def test_category_escalation_rules_need_an_admin_and_a_second_person(
    client, emergency_category, editor, admin, approver
):
    resp = client.patch("/v1/categories/emergency", headers=editor, json={"escalation": ESCALATION})
    body = assert_error(resp, 403, "loosens_safety")
    assert "categories[emergency].escalation: escalation rules added" in body["reasons"]
    assert "categories[emergency].escalation: new summary recipients: outside@attacker.example" in body["reasons"]
    assert client.get("/v1/categories/emergency", headers=admin).json()["escalation"] is None

    proposal = client.patch("/v1/categories/emergency", headers=admin, json={"escalation": ESCALATION})
    assert proposal.status_code == 202, proposal.text
    assert client.get("/v1/categories/emergency", headers=admin).json()["escalation"] is None
    # widening them later loosens again; removing them is a tightening change
    approve_map_change(client, proposal, approver)
    assert client.get("/v1/categories/emergency", headers=admin).json()["escalation"]["steps"][0]["channel"] == "voice"
    wider = ESCALATION | {"steps": [{"after_seconds": 5, "channel": "voice"}, {"after_seconds": 5, "channel": "sms"}]}
    assert_error(client.patch("/v1/categories/emergency", headers=editor, json={"escalation": wider}), 403)
    removed = client.patch("/v1/categories/emergency", headers=editor, json={"escalation": None})
    assert removed.status_code == 200 and removed.json()["escalation"] is None


# --- tightening applies at once; every change is a version -------------------------------------------------------


def test_tightening_and_neutral_changes_apply_at_once_as_versions(client, planned, editor, admin):
    fewer = copy.deepcopy(PLAN)
    fewer["categories"][0]["channels"]["critical"] = ["sendgrid"]
    fewer["categories"][0]["name"] = "Outages"
    fewer["categories"][0]["reach"] = "category"
    resp = client.put("/v1/routing-map", headers=editor, json=fewer)
    assert resp.status_code == 200, resp.text
    assert resp.json()["categories"][0]["channels"]["critical"] == ["sendgrid"]
    created = client.post(
        "/v1/categories",
        headers=editor,
        json={"slug": "billing", "name": "Billing", "channels": {"major": ["sendgrid"]}},
    )
    assert created.status_code == 201, created.text
    assert client.delete("/v1/categories/billing", headers=editor).status_code == 204
    again = client.put("/v1/routing-map", headers=editor, json=fewer)  # no change: no version
    assert again.status_code == 200
    items = _versions(client, admin)
    assert [v["state"] for v in items] == ["applied"] * 4
    assert [v["summary"] for v in items] == [
        "categories: 1 removed",
        "categories: 1 added",
        "categories: 1 changed",
        "categories: 1 added; alert_rules: 1 added",
    ]
    assert items[0]["proposed_by"].startswith("key:test-read-write") and items[0]["base_number"] == items[1]["number"]
    detail = client.get(f"/v1/routing-map/versions/{items[2]['number']}", headers=admin).json()
    assert "~ categories[outage] changed" in detail["diff_text"] and detail["against"] == items[3]["number"]
    assert 'channels.critical: ["twilio-sms", "twilio-voice", "sendgrid"] -> ["sendgrid"]' in detail["diff_text"]
    assert detail["map"]["categories"][0]["name"] == "Outages"
    gate = [d for d in _audit("gate.decision") if d["door"] == "routing.map"]
    assert [d["decision"] for d in gate] == ["now"] * 4
    assert _audit("routing_map.replace")[-1]["version"] is None  # the last PUT changed nothing


def test_adding_a_channel_or_widening_reach_loosens(client, planned, editor, admin):
    more = copy.deepcopy(PLAN)
    more["categories"][0]["channels"]["major"] = ["banner", "twilio-sms"]
    body = assert_error(client.put("/v1/routing-map", headers=editor, json=more), 403, "loosens_safety")
    assert body["reasons"] == ["categories[outage].channels.major: adds twilio-sms (more people reached)"]
    assert_error(client.patch("/v1/categories/outage", headers=editor, json={"channels": {"info": ["sendgrid"]}}), 403)
    assert client.patch("/v1/categories/outage", headers=editor, json={"reach": "services"}).status_code == 200
    # a category an alert rule publishes to cannot be removed from under it
    body = assert_error(client.delete("/v1/categories/outage", headers=editor), 409, field="slug")
    assert "alert rule(s) database-down" in body["detail"]
    assert_error(client.patch("/v1/categories/outage", headers=editor, json={"reach": "either"}), 403)
    assert _map(client, admin)["categories"][0]["channels"] == PLAN["categories"][0]["channels"]


# --- the approval: who, with what, when -------------------------------------------------------------------------


def _propose(client: Any, admin: dict[str, str], **rule: Any) -> Any:
    resp = client.put("/v1/routing-map", headers=admin, json=_with(publish="auto", **rule))
    assert resp.status_code == 202, resp.text
    return resp


def test_the_proposer_cannot_approve_and_if_match_is_required(client, planned, admin, approver, editor, auth):
    first = _propose(client, admin)
    number, tag = first.json()["number"], first.headers["ETag"]
    url = f"/v1/routing-map/versions/{number}/approve"
    assert_error(client.post(url, headers=admin | {"If-Match": tag}), 403, "forbidden", "Authorization")
    assert_error(client.post(url, headers=editor | {"If-Match": tag}), 403, field="Authorization")  # no publish
    assert_error(client.post(url, headers=approver), 428, "precondition_required", "If-Match")
    assert_error(client.post(url, headers=approver | {"If-Match": "*"}), 428)
    # a newer proposal supersedes the first; the first's ETag does not approve the second
    second = _propose(client, admin, title="{{ labels.service }} down")
    assert second.json()["number"] == number + 1
    stale = client.post(f"/v1/routing-map/versions/{number + 1}/approve", headers=approver | {"If-Match": tag})
    body = assert_error(stale, 412, "precondition_failed", "If-Match")
    assert body["current_etag"] == second.headers["ETag"]
    assert_error(client.post(url, headers=approver | {"If-Match": tag}), 409, "not_pending", "number")
    assert [v["state"] for v in _versions(client, admin)[:2]] == ["proposed", "superseded"]
    assert _versions(client, admin)[1]["superseded_by"] == number + 1
    # a second admin (a different key) may approve
    approve_map_change(client, second, auth("admin"))
    assert _map(client, admin)["alert_rules"][0]["title"] == "{{ labels.service }} down"


def test_a_person_with_a_session_and_a_key_is_one_person(client, planned, db_url):
    """The proposer's own key (owned by them) is the same person: `user:<id>` both ways."""
    from broadcaster.db import session_scope
    from broadcaster.security import create_key
    from broadcaster.users import service as users

    with session_scope() as session:
        person = users.create_user(session, "ada@example.org", "Ada", ["admin"], None)
        _, admin_key = create_key(session, "ada-admin", ["admin"], owner_user_id=person.id)
        _, publish_key = create_key(session, "ada-publish", ["read", "publish"], owner_user_id=person.id)
    proposal = _propose(client, {"Authorization": f"Bearer {admin_key}"})
    assert proposal.json()["proposed_by"] == f"user:{person.id}"
    resp = client.post(
        f"/v1/routing-map/versions/{proposal.json()['number']}/approve",
        headers={"Authorization": f"Bearer {publish_key}", "If-Match": proposal.headers["ETag"]},
    )
    assert_error(resp, 403, field="Authorization")


def test_a_newly_granted_approver_waits(client, planned, admin, monkeypatch):
    from broadcaster.db import session_scope
    from broadcaster.users import grants
    from broadcaster.users import service as users

    with session_scope() as session:
        root = users.create_user(session, "root@example.org", "Root", ["admin"], None)
        newcomer = users.create_user(session, "new@example.org", "New", ["approver"], None)
        grants.roles_granted(session, newcomer, [], by=f"user:{root.id}", via="api")
        from broadcaster.security import create_key

        _, key = create_key(session, "new-laptop", ["read", "publish"], owner_user_id=newcomer.id)
    proposal = _propose(client, admin)
    url = f"/v1/routing-map/versions/{proposal.json()['number']}/approve"
    headers = {"Authorization": f"Bearer {key}", "If-Match": proposal.headers["ETag"]}
    assert_error(client.post(url, headers=headers), 403, "approver_grant_delay")
    monkeypatch.setenv("APPROVER_GRANT_DELAY", "0")
    from broadcaster.settings import get_settings

    get_settings.cache_clear()
    assert client.post(url, headers=headers).status_code == 200


def test_reject_with_a_comment(client, planned, admin, approver):
    proposal = _propose(client, admin)
    url = f"/v1/routing-map/versions/{proposal.json()['number']}/reject"
    assert_error(client.post(url, headers=approver, json={"comment": "  "}), 422, field="comment")
    assert_error(client.post(url, headers=approver, json={}), 422, field="comment")
    resp = client.post(url, headers=approver, json={"comment": "No automation on the database rule."})
    assert resp.status_code == 200, resp.text
    assert resp.json()["state"] == "rejected" and resp.json()["comment"] == "No automation on the database rule."
    assert resp.json()["rejected_by"].startswith("key:test-read-publish") and resp.json()["etag"] is None
    assert_error(client.post(url, headers=approver, json={"comment": "again"}), 409, "not_pending")
    approve = client.post(
        f"/v1/routing-map/versions/{proposal.json()['number']}/approve",
        headers=approver | {"If-Match": proposal.headers["ETag"]},
    )
    assert_error(approve, 409, "not_pending")
    assert _map(client, admin)["alert_rules"][0]["publish"] == "draft"


def test_the_same_proposal_again_is_the_pending_one(client, planned, admin):
    first = _propose(client, admin)
    again = _propose(client, admin)
    assert again.json()["number"] == first.json()["number"] and again.headers["ETag"] == first.headers["ETag"]
    assert len(_versions(client, admin)) == 2


def test_credentials_and_bad_input(client, planned, admin, auth):
    proposal = _propose(client, admin)
    number = proposal.json()["number"]
    for method, path in (
        ("GET", "/v1/routing-map/versions"),
        ("GET", f"/v1/routing-map/versions/{number}"),
        ("POST", f"/v1/routing-map/versions/{number}/approve"),
        ("POST", f"/v1/routing-map/versions/{number}/reject"),
    ):
        assert_error(client.request(method, path), 401)
        assert_error(client.request(method, path, headers={"Authorization": "Bearer bk_nope_nope"}), 401)
    metrics = auth("metrics")
    assert_error(client.get("/v1/routing-map/versions", headers=metrics), 403, field="Authorization")
    reader = auth("read")
    assert_error(client.post(f"/v1/routing-map/versions/{number}/reject", headers=reader, json={"comment": "x"}), 403)
    assert_error(client.get("/v1/routing-map/versions/999", headers=reader), 404, "unknown_version", "number")
    assert_error(client.get("/v1/routing-map/versions/0", headers=reader), 422, field="number")
    assert_error(client.get(f"/v1/routing-map/versions/{number}?against=999", headers=reader), 422, field="against")
    assert_error(client.get("/v1/routing-map/versions?limit=0", headers=reader), 422, field="limit")
    assert_error(client.get("/v1/routing-map/versions?cursor=x", headers=reader), 422, field="cursor")
    assert_error(client.post("/v1/routing-map/versions/999/approve", headers=admin | {"If-Match": '"x"'}), 404)
    # a bad map is a 422 naming the field before any version is recorded
    bad = _with(publish="sometimes")
    assert_error(client.put("/v1/routing-map", headers=admin, json=bad), 422, field="alert_rules.0.publish")
    assert len(_versions(client, admin)) == 2


def test_versions_page_and_diff_against(client, planned, admin, editor):
    for n in range(3):
        fewer = copy.deepcopy(PLAN)
        fewer["categories"][0]["name"] = f"Outage {n}"
        assert client.put("/v1/routing-map", headers=editor, json=fewer).status_code == 200
    page = client.get("/v1/routing-map/versions?limit=2", headers=editor).json()
    assert [v["number"] for v in page["items"]] == [4, 3] and page["next_cursor"] == "3"
    rest = client.get(f"/v1/routing-map/versions?limit=2&cursor={page['next_cursor']}", headers=editor).json()
    assert [v["number"] for v in rest["items"]] == [2, 1] and rest["next_cursor"] is None
    detail = client.get("/v1/routing-map/versions/4?against=1", headers=editor).json()
    assert detail["against"] == 1 and 'name: "Service outage" -> "Outage 2"' in detail["diff_text"]


# --- upgraded installs: the baseline approves no automation --------------------------------------------------


def test_an_upgraded_install_must_reapprove_automation(client, planned, admin, approver):
    """The migration's baseline version is approved by nobody: `automation_allowed` in it does not count until a
    second person approves a version holding it (an admin resubmits the same map)."""
    from broadcaster.alertrules import rules
    from broadcaster.db import session_scope
    from broadcaster.integrations.service import automation_allowance
    from broadcaster.models.routing import RoutingMapVersion
    from broadcaster.routing import service

    automation = _with(publish="auto", two_person_rule="automation_allowed")
    with session_scope() as session:  # what the migration leaves: the map, and a version approved by nobody
        service.replace_map(session, service.parse_map(json.dumps(automation), json_only=True))
        for row in session.scalars(select(RoutingMapVersion)):
            session.delete(row)
        session.flush()
        session.add(
            RoutingMapVersion(
                number=1,
                document=service.export_map(session).model_dump(mode="json"),
                state="applied",
                proposed_by="migration",
                source="migration",
                summary="baseline",
                loosens=False,
                reasons=[],
                allowances={},
            )
        )
    with session_scope() as session:
        [rule] = rules.load_rules(session)
        assert automation_allowance(session, rule) is None
    # a change that does not loosen applies at once and still allows nothing
    fewer = copy.deepcopy(automation)
    fewer["categories"][0]["name"] = "Outages"
    assert client.put("/v1/routing-map", headers=admin, json=fewer).status_code == 200
    # the admin resubmits the map as it is: a proposal that names the automation; approving it allows it
    proposal = client.put("/v1/routing-map", headers=admin, json=fewer)
    assert proposal.status_code == 202, proposal.text
    assert proposal.json()["reasons"] == [
        "alert_rules[database-down]: two_person_rule: automation_allowed has no second person's approval yet "
        "(approving this version approves it)"
    ]
    approved = approve_map_change(client, proposal, approver)
    with session_scope() as session:
        [rule] = rules.load_rules(session)
        assert automation_allowance(session, rule) == (
            f"alert_rules[database-down] of routing-map version {approved['number']}, approved by "
            f"{approved['approved_by']}"
        )


@pytest.mark.parametrize(
    "patch",
    [
        {"name": "Emergencies", "description": "Life and property"},
        {"contact": {"phone": "+1 555 000 1111", "portal_url": "https://portal.example.org"}},
        {"channels": {"info": ["banner"]}, "reach": "category", "position": 7},
        {"escalation": ESCALATION},
        {"escalation": None, "name": None, "contact": None, "channels": None},
    ],
)
def test_a_category_change_is_judged_on_the_map_it_makes(client, emergency_category, patch):
    """The map a PATCH is compared with (`patched_doc`) is the map `update_category` makes."""
    from broadcaster.db import session_scope
    from broadcaster.routing import service
    from broadcaster.routing.mapdiff import diff_maps
    from broadcaster.routing.schemas import CategoryPatch

    body = CategoryPatch.model_validate(patch)
    with session_scope() as session:
        stored = service.export_map(session).model_dump(mode="json")
        [cat] = stored["categories"]
        judged = service.with_category(stored, "emergency", service.patched_doc(cat, body))
        service.update_category(session, "emergency", body, "test")
        assert diff_maps(judged, service.export_map(session).model_dump(mode="json")) == []
        session.rollback()
