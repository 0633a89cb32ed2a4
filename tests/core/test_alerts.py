"""`POST /v1/alerts`: incident + update + publish in one call; the routing map picks the channels."""

from __future__ import annotations

import pytest
from tests.approving import confirm

from .helpers import assert_error


def test_alert_creates_published_incident(client, auth, emergency_category):
    resp = client.post(
        "/v1/alerts",
        headers=auth("alerts"),
        json={"category": "emergency", "message": "Gas leak reported\nAvoid Main St.", "severity": "major"},
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["channels"] == ["sms", "email", "banner"]  # emergency/major in the routing map
    assert body["incident"]["title"] == "Gas leak reported"
    assert (body["incident"]["category"], body["incident"]["severity"]) == ("emergency", "major")
    assert body["update"]["state"] == "published" and body["update"]["body"] == "Gas leak reported\nAvoid Main St."
    incident = client.get(f"/v1/incidents/{body['incident']['id']}", headers=auth("read")).json()
    assert [u["id"] for u in incident["updates"]] == [body["update"]["id"]]


def test_a_critical_alert_waits_for_a_second_person_and_uses_explicit_fields(client, auth, emergency_category):
    """An ops script's key cannot send a critical alert alone (issue 19): it waits for an approver (202)."""
    resp = client.post(
        "/v1/alerts",
        headers=auth("alerts"),
        json={
            "category": "emergency",
            "message": "\n\n  Evacuate building B  \nNow.",
            "severity": "critical",
            "summary": "Evacuate B",
            "translations": {"fr": {"body": "Évacuez le bâtiment B."}},
            "links": [{"title": "Plan", "url": "https://example.org/plan"}],
            "affected_services": ["building-b"],
        },
    )
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["incident"]["title"] == "Evacuate building B"
    assert body["update"]["state"] == "pending_approval" and body["approval_required"] is True
    assert body["broadcast_id"] is None and resp.headers["ETag"]
    assert body["channels"] == ["sms", "voice", "email", "social", "banner"]
    assert body["update"]["translations"]["fr"]["body"] == "Évacuez le bâtiment B."
    decisions = client.get("/v1/audit", headers=auth("admin"), params={"action": "gate.decision"}).json()["items"]
    alerts = [d["detail"]["decision"] for d in decisions if d["detail"]["door"] == "alerts.api"]
    assert alerts == ["second_person"]
    # an approver approves exactly that content, and it goes out
    approved = client.post(
        f"/v1/updates/{body['update']['id']}/approve",
        json=confirm(body["update"]["id"]),
        headers=auth("publish") | {"If-Match": resp.headers["ETag"]},
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["update"]["state"] == "published" and approved.json()["broadcast_id"]


def test_alert_channel_override_and_unrouted_severity(client, auth, emergency_category):
    alerts = auth("alerts")
    resp = client.post(
        "/v1/alerts", headers=alerts, json={"category": "emergency", "message": "x", "channels": ["email"]}
    )
    assert resp.json()["channels"] == ["email"]
    none = client.post("/v1/alerts", headers=alerts, json={"category": "emergency", "message": "x", "severity": "info"})
    assert none.status_code == 201 and none.json()["channels"] == []


VALID = {"category": "emergency", "message": "Water main break"}


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (VALID | {"category": "nope"}, "unknown_category", "category"),
        (VALID | {"severity": "urgent"}, "invalid", "severity"),
        (VALID | {"locale": "english!"}, "invalid", "locale"),
        (VALID | {"channels": ["pigeon"]}, "invalid", "channels"),
        ({"category": "emergency"}, "invalid", "message"),
        ({"message": "x"}, "invalid", "category"),
        (VALID | {"message": ""}, "invalid", "message"),
        (VALID | {"message": "  \n "}, "invalid", "message"),
        (VALID | {"title": "x" * 301}, "invalid", "title"),
        (VALID | {"urgent": True}, "invalid", "urgent"),
    ],
)
def test_bad_alert_is_422_and_writes_nothing(client, auth, emergency_category, unchanged, body, code, field):
    headers = auth("alerts")
    with unchanged():
        resp = client.post("/v1/alerts", headers=headers, json=body)
    assert_error(resp, 422, code, field)
