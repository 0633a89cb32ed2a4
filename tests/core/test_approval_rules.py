"""The two-person rule holds: a severity downgrade does not skip approval, and an approval is for exact content.

Alice holds read, write and publish; Bob holds read and publish (issue 10, "The two-person rule can be
bypassed").
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tests.approving import confirm

from .helpers import assert_error


@pytest.fixture
def alice(make_key) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key('read', 'write', 'publish', name='alice')}"}


@pytest.fixture
def bob(make_key) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key('read', 'publish', name='bob')}"}


def _publish(client, update_id: int, who: dict[str, str]) -> Any:
    return client.post(f"/v1/updates/{update_id}/publish", headers=who)


def _etag(client, update_id: int, who: dict[str, str]) -> str:
    resp = client.post(f"/v1/updates/{update_id}/preview", headers=who)
    assert resp.status_code == 200, resp.text
    etag = resp.headers["ETag"]
    assert etag == resp.json()["etag"] and etag.startswith('"') and etag.endswith('"')
    return etag


def _approve(client, update_id: int, who: dict[str, str], etag: str | None) -> Any:
    headers = who if etag is None else {**who, "If-Match": etag}
    return client.post(f"/v1/updates/{update_id}/approve", json=confirm(update_id), headers=headers)


def _audit(action: str) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from broadcaster.db import session_scope
    from broadcaster.models import AuditEntry

    with session_scope() as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))
        return [{"actor": r.actor, "target_id": r.target_id, **r.detail} for r in rows]


def _broadcasts(client, who: dict[str, str]) -> list[dict[str, Any]]:
    resp = client.get("/v1/broadcasts", headers=who)
    assert resp.status_code == 200, resp.text
    return list(resp.json()["items"])


# --- bypass 1: lower the severity, publish, raise it again ---------------------------------------------


def test_lowering_severity_does_not_skip_approval(client, alice, bob, make_incident, make_update):
    incident = make_incident(severity="critical")
    update = make_update(incident["id"])
    lowered = client.patch(f"/v1/incidents/{incident['id']}", headers=alice, json={"severity": "major"})
    assert lowered.status_code == 200, lowered.text

    resp = _publish(client, update["id"], alice)
    assert resp.status_code == 202, resp.text  # was 200 with approved_by null
    assert resp.json()["approval_required"] is True and resp.json()["update"]["state"] == "pending_approval"
    assert (
        client.patch(f"/v1/incidents/{incident['id']}", headers=alice, json={"severity": "critical"}).status_code == 200
    )
    assert _broadcasts(client, alice) == []  # nothing went out

    pending = _publish(client, update["id"], alice)  # the PATCH back returned it to draft; ask again
    assert pending.status_code == 202, pending.text
    approved = _approve(client, update["id"], bob, _etag(client, update["id"], bob))
    assert approved.status_code == 200, approved.text
    assert approved.json()["update"]["approved_by"] == "key:bob"

    audit = _audit("incident.update")
    assert {"from": "critical", "to": "major"} in [a.get("severity") for a in audit]


def test_a_downgrade_in_steps_and_partly_back_still_needs_approval(client, alice, make_incident, make_update):
    incident = make_incident(severity="critical")
    for severity in ("major", "minor", "major"):
        resp = client.patch(f"/v1/incidents/{incident['id']}", headers=alice, json={"severity": severity})
        assert resp.status_code == 200, resp.text
    update = make_update(incident["id"])
    assert _publish(client, update["id"], alice).status_code == 202


def test_approval_level_follows_the_setting(client, alice, make_incident, make_update, monkeypatch):
    from broadcaster.settings import get_settings

    monkeypatch.setenv("APPROVAL_SEVERITY", "major")
    get_settings.cache_clear()
    incident = make_incident(severity="major")
    assert client.patch(f"/v1/incidents/{incident['id']}", headers=alice, json={"severity": "minor"}).status_code == 200
    assert _publish(client, make_update(incident["id"])["id"], alice).status_code == 202

    never_high = make_incident(severity="minor")  # never at the approval level: no approval
    assert (
        client.patch(f"/v1/incidents/{never_high['id']}", headers=alice, json={"severity": "info"}).status_code == 200
    )
    assert _publish(client, make_update(never_high["id"])["id"], alice).status_code == 200


def test_the_downgrade_window_ends(client, alice, make_incident, make_update):
    """An old downgrade no longer counts (the stored instant is moved back past the 1 h default window)."""
    from broadcaster.db import session_scope
    from broadcaster.models import Incident, utcnow

    incident = make_incident(severity="critical")
    assert client.patch(f"/v1/incidents/{incident['id']}", headers=alice, json={"severity": "major"}).status_code == 200
    with session_scope() as session:
        row = session.get(Incident, incident["id"])
        assert row is not None and set(row.severity_lowered_at) == {"critical"}
        past = (utcnow() - timedelta(hours=1, minutes=1)).isoformat()
        row.severity_lowered_at = {k: past for k in row.severity_lowered_at}
    resp = _publish(client, make_update(incident["id"])["id"], alice)
    assert resp.status_code == 200, resp.text
    assert resp.json()["update"]["approved_by"] is None


@pytest.mark.parametrize(("window", "status"), [("0", 200), ("PT2H", 202), ("7200", 202)])
def test_downgrade_window_setting(client, alice, make_incident, make_update, monkeypatch, window, status):
    from broadcaster.settings import get_settings

    monkeypatch.setenv("APPROVAL_DOWNGRADE_WINDOW", window)
    get_settings.cache_clear()
    incident = make_incident(severity="critical")
    assert client.patch(f"/v1/incidents/{incident['id']}", headers=alice, json={"severity": "major"}).status_code == 200
    assert _publish(client, make_update(incident["id"])["id"], alice).status_code == status


def test_downgrade_window_setting_is_validated(monkeypatch):
    from pydantic import ValidationError

    from broadcaster.settings import Settings

    assert Settings(approval_downgrade_window="90").approval_downgrade_window == timedelta(seconds=90)
    assert Settings(approval_downgrade_window="PT1H").approval_downgrade_window == timedelta(hours=1)
    assert Settings().approval_downgrade_window == timedelta(hours=1)
    for bad in ("-5", "soon"):
        with pytest.raises(ValidationError, match="approval_downgrade_window"):
            Settings(approval_downgrade_window=bad)


# --- bypass 2: change the content between the approver's preview and the approval ------------------------


def test_approval_is_for_the_content_the_approver_saw(client, alice, bob, make_incident, make_update):
    incident = make_incident(severity="critical", title="Water main break")
    update = make_update(incident["id"])
    assert _publish(client, update["id"], alice).status_code == 202
    seen = _etag(client, update["id"], bob)

    changed = client.patch(f"/v1/incidents/{incident['id']}", headers=alice, json={"title": "EVACUATE NOW - gas leak"})
    assert changed.status_code == 200, changed.text
    got = client.get(f"/v1/updates/{update['id']}", headers=alice).json()
    assert got["state"] == "draft" and got["published_by"] is None  # the change cancelled the approval request
    cancelled = _audit("update.approval_cancelled")
    assert len(cancelled) == 1
    assert cancelled[0] == {
        "actor": "key:alice",
        "target_id": str(update["id"]),
        "incident_id": incident["id"],
        "fields": ["title"],
        "cause": "incident edited",
        "requester": "key:alice",
    }

    assert_error(_approve(client, update["id"], bob, seen), 409, "not_pending", "update_id")
    assert _broadcasts(client, alice) == []

    assert _publish(client, update["id"], alice).status_code == 202  # Alice asks again, with the new title
    body = assert_error(_approve(client, update["id"], bob, seen), 412, "precondition_failed", "If-Match")
    assert "preview" in body["detail"]
    assert _broadcasts(client, alice) == []

    fresh = _etag(client, update["id"], bob)  # Bob looks again and sees the new title
    assert fresh != seen
    approved = _approve(client, update["id"], bob, fresh)
    assert approved.status_code == 200, approved.text
    assert approved.json()["update"]["state"] == "published" and approved.json()["update"]["approved_by"] == "key:bob"
    assert len(_broadcasts(client, alice)) == 1


def test_approve_requires_if_match(client, alice, bob, make_incident, make_update, unchanged):
    update = make_update(make_incident(severity="critical")["id"])
    assert _publish(client, update["id"], alice).status_code == 202
    with unchanged():
        body = assert_error(_approve(client, update["id"], bob, None), 428, "precondition_required", "If-Match")
        assert "If-Match" in body["detail"] and "preview" in body["detail"]
        assert_error(_approve(client, update["id"], bob, "*"), 428, "precondition_required", "If-Match")
        assert_error(_approve(client, update["id"], bob, '"0123"'), 412, "precondition_failed", "If-Match")
        assert_error(_approve(client, update["id"], bob, 'W/"0123"'), 412, "precondition_failed", "If-Match")
        assert_error(_approve(client, update["id"], alice, None), 403, "forbidden")  # still not her own
    assert client.get(f"/v1/updates/{update['id']}", headers=bob).json()["state"] == "pending_approval"
    etag = _etag(client, update["id"], bob)
    approved = _approve(client, update["id"], bob, f'"nope", {etag}')  # a list matches if one entry does
    assert approved.status_code == 200, approved.text


def test_etag_is_stable_and_shown_while_pending(client, alice, bob, make_incident, make_update):
    update = make_update(make_incident(severity="critical")["id"])
    draft = client.get(f"/v1/updates/{update['id']}", headers=alice)
    assert "ETag" not in draft.headers
    first = _etag(client, update["id"], alice)
    assert _etag(client, update["id"], bob) == first  # the same content gives the same tag
    published = _publish(client, update["id"], alice)
    assert published.status_code == 202 and published.headers["ETag"] == first
    pending = client.get(f"/v1/updates/{update['id']}", headers=bob)
    assert pending.headers["ETag"] == first
    unquoted = _approve(client, update["id"], bob, first.strip('"'))  # curl users may drop the quotes
    assert unquoted.status_code == 200, unquoted.text


INCIDENT_CHANGES: list[tuple[str, Any]] = [
    ("title", "EVACUATE NOW - gas leak"),
    ("severity", "major"),
    ("category", "technical-issue"),
    ("status", "identified"),
    ("affected_services", ["gas"]),
    ("sites", ["north"]),
    ("public", False),
]
UPDATE_CHANGES: list[tuple[str, Any]] = [
    ("body", "Leave the building now."),
    ("summary", "Leave now"),
    ("locale", "fr"),
    ("translations", {"fr": {"body": "Quittez le bâtiment.", "summary": "Partez"}}),
    ("links", [{"title": "Map", "url": "https://example.org/evacuation"}]),
    ("channels", ["sms"]),
    ("audience", {"tags": ["north"]}),
    ("status", "monitoring"),
    ("test", True),
]


def test_every_content_change_cancels_the_pending_approval(
    client, alice, bob, make_incident, make_update, technical_category
):
    incident = make_incident(severity="critical")
    update = make_update(incident["id"])
    for target, changes in (("incidents", INCIDENT_CHANGES), ("updates", UPDATE_CHANGES)):
        for field, value in changes:
            pending = _publish(client, update["id"], alice)
            assert pending.status_code == 202, (field, pending.text)
            seen = _etag(client, update["id"], bob)
            path = f"/v1/{target}/{incident['id'] if target == 'incidents' else update['id']}"
            changed = client.patch(path, headers=alice, json={field: value})
            assert changed.status_code == 200, (field, changed.text)
            state = client.get(f"/v1/updates/{update['id']}", headers=alice).json()["state"]
            assert state == "draft", f"changing {target} {field} left the update {state}"
            assert _audit("update.approval_cancelled")[-1]["fields"] == [field]
            assert_error(_approve(client, update["id"], bob, seen), 409, "not_pending")
            if field == "severity":  # back to critical (the update is a draft now: nothing to cancel)
                client.patch(path, headers=alice, json={"severity": "critical"})
    assert len(_audit("update.approval_cancelled")) == len(INCIDENT_CHANGES) + len(UPDATE_CHANGES)
    assert _broadcasts(client, alice) == []


def test_an_edit_that_changes_nothing_keeps_the_request(client, alice, bob, make_incident, make_update):
    incident = make_incident(severity="critical", title="Water main break")
    update = make_update(incident["id"], body="Crews are on site.")
    assert _publish(client, update["id"], alice).status_code == 202
    seen = _etag(client, update["id"], bob)
    assert (
        client.patch(f"/v1/incidents/{incident['id']}", headers=alice, json={"title": "Water main break"}).status_code
        == 200
    )
    assert (
        client.patch(f"/v1/updates/{update['id']}", headers=alice, json={"body": "Crews are on site."}).status_code
        == 200
    )
    assert client.get(f"/v1/updates/{update['id']}", headers=alice).json()["state"] == "pending_approval"
    assert _audit("update.approval_cancelled") == []
    assert _approve(client, update["id"], bob, seen).status_code == 200


def test_routing_map_change_after_the_request_needs_a_new_request(
    client, admin, alice, bob, make_incident, make_update
):
    """Content that changes outside the update and incident (here the routing map's channels) is caught by the
    tag: the approver's fresh preview no longer matches what the requester asked to publish."""
    incident = make_incident(severity="critical")
    update = make_update(incident["id"])
    assert _publish(client, update["id"], alice).status_code == 202
    seen = _etag(client, update["id"], bob)
    resp = client.patch("/v1/categories/emergency", headers=admin, json={"channels": {"critical": ["banner"]}})
    assert resp.status_code == 200, resp.text

    assert_error(_approve(client, update["id"], bob, seen), 412, "precondition_failed", "If-Match")
    fresh = _etag(client, update["id"], bob)
    assert fresh != seen
    body = assert_error(_approve(client, update["id"], bob, fresh), 412, "precondition_failed", "If-Match")
    assert "requested" in body["detail"]
    assert _publish(client, update["id"], alice).status_code == 202  # Alice asks for the current content
    approved = _approve(client, update["id"], bob, fresh)
    assert approved.status_code == 200, approved.text


def test_publishing_a_sibling_that_moves_the_status_cancels_the_request(client, alice, bob, make_incident, make_update):
    incident = make_incident(severity="critical")
    first = make_update(incident["id"])
    assert _publish(client, first["id"], alice).status_code == 202
    sibling = make_update(incident["id"], status="monitoring", test=True)  # a test send skips approval
    assert _publish(client, sibling["id"], alice).status_code == 200
    assert client.get(f"/v1/updates/{first['id']}", headers=alice).json()["state"] == "draft"
    assert _audit("update.approval_cancelled")[-1]["fields"] == ["status"]


def test_openapi_documents_the_precondition(client, admin, make_incident):
    spec = client.get("/openapi.json").json()
    approve = spec["paths"]["/v1/updates/{update_id}/approve"]["post"]
    [if_match] = [p for p in approve["parameters"] if p["name"] == "If-Match"]
    assert if_match["in"] == "header" and "428" in if_match["description"]
    assert {"412", "428"} <= set(approve["responses"])
    preview = spec["paths"]["/v1/updates/{update_id}/preview"]["post"]
    assert "ETag" in preview["responses"]["200"]["headers"]
    draft = client.post(
        "/v1/preview",
        headers=admin,
        json={"incident_id": make_incident()["id"], "update": {"body": "Unsaved"}},
    )
    assert draft.status_code == 200 and draft.json()["etag"] is None  # nothing stored, nothing to approve
