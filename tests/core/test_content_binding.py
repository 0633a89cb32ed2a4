"""An approval binds who an update reaches (issue 19): its tags, languages, the category's reach and the services
whose followers it reaches. A change to any of it voids a pending approval (back to draft, audited with the
fields) and changes the ETag; people subscribing change neither. The preview shows what is bound.

Alice holds read, write and publish; Bob holds read and publish. Critical updates wait for a second person.
"""

from __future__ import annotations

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


@pytest.fixture
def water(client, admin) -> None:
    resp = client.post("/v1/services", headers=admin, json={"slug": "water", "name": "Water supply"})
    assert resp.status_code == 201, resp.text


def _preview(client, update_id: int, who) -> dict[str, Any]:
    resp = client.post(f"/v1/updates/{update_id}/preview", headers=who)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _state(client, update_id: int, who) -> str:
    return str(client.get(f"/v1/updates/{update_id}", headers=who).json()["state"])


def _request(client, update_id: int, who) -> None:
    resp = client.post(f"/v1/updates/{update_id}/publish", headers=who)
    assert resp.status_code == 202, resp.text


def _cancelled() -> list[dict[str, Any]]:
    from sqlalchemy import select

    from broadcaster.db import session_scope
    from broadcaster.models import AuditEntry

    with session_scope() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "update.approval_cancelled").order_by(AuditEntry.id)
        )
        return [dict(r.detail) for r in rows]


def _pending(client, alice, make_incident, make_update, services: list[str]) -> dict[str, int]:
    incident = make_incident(severity="critical", affected_services=services)
    update = make_update(incident["id"], audience={"tags": ["north"], "locales": ["en"]})
    _request(client, update["id"], alice)
    return {"incident": incident["id"], "update": update["id"]}


@pytest.fixture
def pending(client, alice, make_incident, make_update, water) -> dict[str, int]:
    """A critical update of an incident affecting the service `water`, waiting for approval."""
    return _pending(client, alice, make_incident, make_update, ["water"])


def test_the_preview_shows_the_audience_reach_and_services(client, bob, pending):
    bound = _preview(client, pending["update"], bob)["binding"]
    assert bound["categories"] == ["emergency"]
    assert (bound["tags"], bound["locales"], bound["test_group_only"]) == (["north"], ["en"], False)
    assert (bound["reach"], bound["services"]) == ("either", ["water"])
    assert bound["areas"] == [] and bound["question"] is None


@pytest.mark.parametrize(
    ("audience", "what"),
    [({"tags": ["south"], "locales": ["en"]}, "tags"), ({"tags": ["north"], "locales": ["fr"]}, "locales")],
)
def test_changing_tags_or_languages_voids_the_approval(client, alice, bob, pending, audience, what):
    seen = _preview(client, pending["update"], bob)["etag"]
    resp = client.patch(f"/v1/updates/{pending['update']}", headers=alice, json={"audience": audience})
    assert resp.status_code == 200, resp.text
    assert _state(client, pending["update"], alice) == "draft", what
    assert _cancelled()[-1]["fields"] == ["audience"]
    assert _preview(client, pending["update"], bob)["etag"] != seen
    _request(client, pending["update"], alice)
    assert_error(
        client.post(
            f"/v1/updates/{pending['update']}/approve",
            json=confirm(pending["update"]),
            headers={**bob, "If-Match": seen},
        ),
        412,
        "precondition_failed",
        "If-Match",
    )


def test_changing_the_categorys_reach_voids_the_approval(client, admin, alice, bob, pending):
    seen = _preview(client, pending["update"], bob)["etag"]
    resp = client.patch("/v1/categories/emergency", headers=admin, json={"reach": "services"})
    assert resp.status_code == 200, resp.text
    assert _state(client, pending["update"], alice) == "draft"
    assert _cancelled()[-1]["fields"] == ["reach"]
    assert _preview(client, pending["update"], bob)["etag"] != seen


def test_a_service_appearing_voids_the_approval(client, admin, alice, bob, make_incident, make_update):
    """Before any service is defined an incident may name any; defining one it names adds its followers."""
    pending = _pending(client, alice, make_incident, make_update, ["gas"])
    seen = _preview(client, pending["update"], bob)
    assert seen["binding"]["services"] == []
    resp = client.post("/v1/services", headers=admin, json={"slug": "gas", "name": "Gas"})
    assert resp.status_code == 201, resp.text
    assert _state(client, pending["update"], alice) == "draft"
    entry = _cancelled()[-1]
    assert (entry["fields"], entry["cause"]) == (["services"], "service gas created")
    fresh = _preview(client, pending["update"], bob)
    assert fresh["binding"]["services"] == ["gas"] and fresh["etag"] != seen["etag"]


def test_a_service_disappearing_voids_the_approval(client, admin, alice, bob, pending):
    """A service can be deleted once no open incident affects it: a pending update of a resolved one is voided."""
    resolved = client.patch(f"/v1/incidents/{pending['incident']}", headers=alice, json={"status": "resolved"})
    assert resolved.status_code == 200, resolved.text
    _request(client, pending["update"], alice)
    seen = _preview(client, pending["update"], bob)["etag"]
    assert client.delete("/v1/services/water", headers=admin).status_code == 204
    assert _state(client, pending["update"], alice) == "draft"
    entry = _cancelled()[-1]
    assert (entry["fields"], entry["cause"]) == (["services"], "service water deleted")
    assert _preview(client, pending["update"], bob)["etag"] != seen


def test_the_incidents_affected_services_are_bound(client, alice, bob, pending):
    resp = client.patch(f"/v1/incidents/{pending['incident']}", headers=alice, json={"affected_services": []})
    assert resp.status_code == 200, resp.text
    assert _state(client, pending["update"], alice) == "draft"
    assert _cancelled()[-1]["fields"] == ["affected_services"]


def test_people_subscribing_void_nothing(client, admin, alice, bob, pending):
    """Recipient counts are not content: subscribers joining the category, the tag or the service change
    neither the ETag nor the pending state, and the reviewed ETag still approves."""
    seen = _preview(client, pending["update"], bob)["etag"]
    for body in (
        {"email": "a@example.org", "categories": ["emergency"], "tags": ["north"], "locale": "en"},
        {"phone": "+15550001111", "services": ["water"], "tags": ["north"]},
    ):
        resp = client.post("/v1/subscribers", headers=admin, json=body)
        assert resp.status_code == 201, resp.text
    assert _preview(client, pending["update"], bob)["etag"] == seen
    assert _state(client, pending["update"], alice) == "pending_approval" and _cancelled() == []
    resp = client.patch("/v1/categories/emergency", headers=admin, json={"description": "Emergencies"})
    assert resp.status_code == 200, resp.text
    assert _state(client, pending["update"], alice) == "pending_approval" and _cancelled() == []
    approved = client.post(
        f"/v1/updates/{pending['update']}/approve", json=confirm(pending["update"]), headers={**bob, "If-Match": seen}
    )
    assert approved.status_code == 200, approved.text
