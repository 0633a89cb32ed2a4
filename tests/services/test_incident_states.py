"""Component states over an incident's life: updates set them when published, resolving restores them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from tests.approving import confirm
from tests.core.helpers import assert_error


@pytest.fixture
def services(client, admin) -> None:
    for slug, name in (("water", "Water supply"), ("power", "Electricity"), ("gas", "Gas")):
        resp = client.post("/v1/services", headers=admin, json={"slug": slug, "name": name})
        assert resp.status_code == 201, resp.text


@pytest.fixture
def post(client, auth, emergency_category) -> Callable[..., dict[str, Any]]:
    """`post(incident_id, **update)` adds an update and publishes it (approved by a second key when needed)."""
    headers, approver = auth("write", "publish"), auth("publish")

    def go(incident_id: int, body: str = "News.", **update: Any) -> dict[str, Any]:
        resp = client.post(f"/v1/incidents/{incident_id}/updates", headers=headers, json={"body": body, **update})
        assert resp.status_code == 201, resp.text
        uid = resp.json()["id"]
        resp = client.post(f"/v1/updates/{uid}/publish", headers=headers)
        if resp.status_code == 202:
            resp = client.post(
                f"/v1/updates/{uid}/approve", json=confirm(uid), headers={**approver, "If-Match": resp.headers["ETag"]}
            )
        assert resp.status_code == 200, resp.text
        return resp.json()["update"]

    return go


def _incident(client, admin, *affected: str, severity: str = "major") -> int:
    body = {"title": "Outage", "category": "emergency", "severity": severity, "affected_services": list(affected)}
    resp = client.post("/v1/incidents", headers=admin, json=body)
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def _states(client, admin) -> dict[str, str]:
    return {s["slug"]: s["state"] for s in client.get("/v1/services", headers=admin).json()}


def _rows() -> list[tuple[str, str, str | None, int | None, int | None]]:
    from broadcaster.db import session_scope
    from broadcaster.models.services import Service, ServiceStateChange

    with session_scope() as session:
        stmt = (
            select(Service.slug, ServiceStateChange)
            .join(Service, Service.id == ServiceStateChange.service_id)
            .where(ServiceStateChange.previous.is_not(None))
            .order_by(ServiceStateChange.id)
        )
        return [(slug, c.state, c.previous, c.incident_id, c.update_id) for slug, c in session.execute(stmt)]


def test_states_over_an_incident_life(client, admin, services, post):
    iid = _incident(client, admin, "water", "power")
    # a draft changes nothing
    draft = client.post(
        f"/v1/incidents/{iid}/updates", headers=admin, json={"body": "x", "service_states": {"water": "degraded"}}
    )
    assert draft.status_code == 201 and draft.json()["service_states"] == {"water": "degraded"}
    assert _states(client, admin) == {"water": "operational", "power": "operational", "gas": "operational"}
    client.delete(f"/v1/updates/{draft.json()['id']}", headers=admin)

    first = post(iid, "Low pressure.", service_states={"water": "degraded"})
    assert first["service_states"] == {"water": "degraded"}
    assert _states(client, admin) == {"water": "degraded", "power": "operational", "gas": "operational"}
    second = post(
        iid, "Mains burst.", status="identified", service_states={"water": "major_outage", "power": "partial_outage"}
    )
    assert _states(client, admin) == {"water": "major_outage", "power": "partial_outage", "gas": "operational"}
    # an update without states leaves them
    post(iid, "Crews on site.")
    assert _states(client, admin)["water"] == "major_outage"
    third = post(iid, "Fixed.", status="resolved")
    assert _states(client, admin) == {"water": "operational", "power": "operational", "gas": "operational"}
    assert _rows() == [
        ("water", "degraded", "operational", iid, first["id"]),
        ("water", "major_outage", "degraded", iid, second["id"]),
        ("power", "partial_outage", "operational", iid, second["id"]),
        ("water", "operational", "major_outage", iid, third["id"]),
        ("power", "operational", "partial_outage", iid, third["id"]),
    ]
    history = client.get("/v1/services/water/history?days=1", headers=admin).json()
    assert history["days"] == [{"date": history["days"][0]["date"], "state": "major_outage"}]
    assert [c["state"] for c in history["changes"]] == ["operational", "degraded", "major_outage", "operational"]


def test_resolving_keeps_states_another_open_incident_sets_and_explicit_states(client, admin, services, post):
    first = _incident(client, admin, "water", "power")
    other = _incident(client, admin, "power")
    post(first, service_states={"water": "major_outage", "power": "degraded"})
    post(other, service_states={"power": "major_outage"})
    # resolving `first`: power is still affected by `other`; gas is named with an explicit state
    post(first, status="resolved", service_states={"gas": "degraded"})
    assert _states(client, admin) == {"water": "operational", "power": "major_outage", "gas": "degraded"}
    # resolving by PATCH (no update) restores too
    client.patch(f"/v1/incidents/{other}", headers=admin, json={"status": "resolved"})
    assert _states(client, admin) == {"water": "operational", "power": "operational", "gas": "degraded"}


def test_test_sends_and_maintenance_are_left_alone(client, admin, services, post):
    iid = _incident(client, admin, "water", "power", severity="minor")
    post(iid, service_states={"water": "degraded"}, test=True)
    assert _states(client, admin)["water"] == "operational"
    client.post("/v1/services/power/state", headers=admin, json={"state": "maintenance", "reason": "planned"})
    post(iid, status="resolved")
    assert _states(client, admin)["power"] == "maintenance"


def test_set_state_function_for_maintenance(db_url, client, admin, services):
    from broadcaster.db import session_scope
    from broadcaster.services.service import get_service, set_state

    with session_scope() as session:
        change = set_state(session, "gas", "maintenance", actor="maintenance:7", maintenance_id=7)
        assert change is not None and (change.previous, change.maintenance_id) == ("operational", 7)
        assert set_state(session, get_service(session, "gas"), "maintenance", actor="maintenance:7") is None
    assert _states(client, admin)["gas"] == "maintenance"
    components = {c["id"]: c["status"] for c in client.get("/v1/public/components.json").json()["components"]}
    assert components == {"gas": "under_maintenance", "power": "operational", "water": "operational"}


def test_validation_of_affected_services_and_service_states(client, admin, emergency_category, post):
    base = {"title": "Outage", "category": "emergency", "severity": "minor"}
    # before any service is defined, affected services are free text (backwards compatible)
    assert (
        client.post("/v1/incidents", headers=admin, json=base | {"affected_services": ["anything"]}).status_code == 201
    )
    assert client.post("/v1/services", headers=admin, json={"slug": "water", "name": "Water"}).status_code == 201
    assert_error(
        client.post("/v1/incidents", headers=admin, json=base | {"affected_services": ["water", "nope"]}),
        422,
        "unknown_service",
        "affected_services",
    )
    iid = _incident(client, admin, "water", severity="minor")
    assert_error(
        client.patch(f"/v1/incidents/{iid}", headers=admin, json={"affected_services": ["nope"]}),
        422,
        "unknown_service",
        "affected_services",
    )
    for states, code in (
        ({"nope": "degraded"}, "unknown_service"),
        ({"water": "on_fire"}, "invalid"),
        ({"Bad Slug": "degraded"}, "invalid"),
    ):
        resp = client.post(f"/v1/incidents/{iid}/updates", headers=admin, json={"body": "x", "service_states": states})
        body = assert_error(resp, 422, code)
        assert body["field"].startswith("service_states"), body
    resp = client.post(
        "/v1/incidents",
        headers=admin,
        json=base | {"update": {"body": "x", "service_states": {"nope": "degraded"}}},
    )
    assert_error(resp, 422, "unknown_service", "update.service_states")
    draft = client.post(f"/v1/incidents/{iid}/updates", headers=admin, json={"body": "x"}).json()
    assert_error(
        client.patch(f"/v1/updates/{draft['id']}", headers=admin, json={"service_states": {"nope": "degraded"}}),
        422,
        "unknown_service",
        "service_states",
    )
    resp = client.patch(f"/v1/updates/{draft['id']}", headers=admin, json={"service_states": {"water": "degraded"}})
    assert resp.status_code == 200 and resp.json()["service_states"] == {"water": "degraded"}
    assert _states(client, admin) == {"water": "operational"}


def test_a_retraction_restores_the_states(client, admin, services, post):
    iid = _incident(client, admin, "water", severity="minor")
    wrong = post(iid, "Water off.", service_states={"water": "major_outage"})
    assert _states(client, admin)["water"] == "major_outage"
    post(iid, "Sent in error.", kind="cancel", corrects=wrong["id"])
    assert _states(client, admin)["water"] == "operational"
