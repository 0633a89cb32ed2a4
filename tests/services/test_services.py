"""Services (components): CRUD, validation, scopes, audit, manual state changes and the per-day history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from tests.core.helpers import assert_error

WATER = {"slug": "water", "name": "Water supply", "description": "Mains water", "group": "Utilities", "position": 2}
POWER = {"slug": "power", "name": "Electricity", "group": "Utilities", "position": 1}


def _audit(action: str) -> list[Any]:
    from broadcaster.db import session_scope
    from broadcaster.models import AuditEntry

    with session_scope() as session:
        rows = list(session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))
        for row in rows:
            session.expunge(row)
        return rows


def _changes(slug: str) -> list[tuple[str, str | None, int | None, int | None]]:
    from broadcaster.db import session_scope
    from broadcaster.models.services import Service, ServiceStateChange

    with session_scope() as session:
        stmt = (
            select(ServiceStateChange)
            .join(Service, Service.id == ServiceStateChange.service_id)
            .where(Service.slug == slug)
            .order_by(ServiceStateChange.id)
        )
        return [(c.state, c.previous, c.incident_id, c.update_id) for c in session.scalars(stmt)]


def test_crud_and_audit(client, admin, auth):
    resp = client.post("/v1/services", headers=admin, json=WATER)
    assert resp.status_code == 201, resp.text
    water = resp.json()
    assert {k: water[k] for k in ("slug", "name", "group", "position", "state", "public")} == {
        "slug": "water",
        "name": "Water supply",
        "group": "Utilities",
        "position": 2,
        "state": "operational",
        "public": True,
    }
    assert client.post("/v1/services", headers=admin, json=POWER).status_code == 201
    reader = auth("read")
    listed = client.get("/v1/services", headers=reader).json()
    assert [s["slug"] for s in listed] == ["power", "water"]  # by position
    assert client.get("/v1/services/water", headers=reader).json() == water

    resp = client.patch("/v1/services/water", headers=admin, json={"name": "Drinking water", "public": False})
    assert resp.status_code == 200, resp.text
    assert (resp.json()["name"], resp.json()["public"]) == ("Drinking water", False)

    assert client.delete("/v1/services/power", headers=admin).status_code == 204
    assert_error(client.get("/v1/services/power", headers=reader), 404, "unknown_service", "slug")
    assert [s["slug"] for s in client.get("/v1/services", headers=reader).json()] == ["water"]

    [create_w, create_p] = _audit("service.create")
    assert (create_w.target_id, create_w.after["name"]) == ("water", "Water supply")
    assert create_p.target_id == "power"
    [update] = _audit("service.update")
    assert update.before == {"name": "Water supply", "public": True}
    assert update.after == {"name": "Drinking water", "public": False}
    [delete] = _audit("service.delete")
    assert (delete.target_id, delete.before["slug"], delete.after) == ("power", "power", None)
    # the creation is the first history record
    assert _changes("water") == [("operational", None, None, None)]


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        (WATER | {"slug": "Bad Slug"}, 422, "invalid", "slug"),
        (WATER | {"slug": ""}, 422, "invalid", "slug"),
        (WATER | {"state": "on_fire"}, 422, "invalid", "state"),
        (WATER | {"name": ""}, 422, "invalid", "name"),
        (WATER | {"position": -1}, 422, "invalid", "position"),
        (WATER | {"colour": "blue"}, 422, "invalid", "colour"),
        ({"name": "x"}, 422, "invalid", "slug"),
    ],
)
def test_bad_service_is_422_and_writes_nothing(client, admin, body, status, code, field):
    assert_error(client.post("/v1/services", headers=admin, json=body), status, code, field)
    assert client.get("/v1/services", headers=admin).json() == []


def test_duplicate_unknown_and_bad_state(client, admin):
    assert client.post("/v1/services", headers=admin, json=WATER).status_code == 201
    assert_error(client.post("/v1/services", headers=admin, json=WATER), 409, field="slug")
    assert_error(client.patch("/v1/services/nope", headers=admin, json={"name": "x"}), 404, "unknown_service", "slug")
    assert_error(client.delete("/v1/services/nope", headers=admin), 404, "unknown_service", "slug")
    assert_error(
        client.post("/v1/services/nope/state", headers=admin, json={"state": "degraded", "reason": "x"}),
        404,
        "unknown_service",
        "slug",
    )
    assert_error(
        client.post("/v1/services/water/state", headers=admin, json={"state": "broken", "reason": "x"}),
        422,
        field="state",
    )
    assert_error(
        client.post("/v1/services/water/state", headers=admin, json={"state": "degraded", "reason": "  "}),
        422,
        field="reason",
    )
    assert_error(
        client.post("/v1/services/water/state", headers=admin, json={"state": "degraded"}), 422, field="reason"
    )
    assert_error(client.get("/v1/services/water/history?days=0", headers=admin), 422, field="days")
    assert client.get("/v1/services/water", headers=admin).json()["state"] == "operational"
    assert _changes("water") == [("operational", None, None, None)]


def test_scopes(client, auth):
    reader, writer = auth("read"), auth("write")
    assert client.get("/v1/services").status_code == 401
    assert_error(client.post("/v1/services", headers=reader, json=WATER), 403, field="Authorization")
    assert client.post("/v1/services", headers=writer, json=WATER).status_code == 201
    assert client.get("/v1/services", headers=reader).status_code == 200
    assert_error(client.get("/v1/services", headers=auth("alerts")), 403, field="Authorization")
    for method, path, body in (
        ("PATCH", "/v1/services/water", {"name": "x"}),
        ("DELETE", "/v1/services/water", None),
        ("POST", "/v1/services/water/state", {"state": "degraded", "reason": "x"}),
    ):
        resp = client.request(method, path, headers=reader, json=body)
        assert_error(resp, 403, field="Authorization")
    assert client.get("/v1/services/water", headers=reader).json()["state"] == "operational"


def test_manual_state_change_is_recorded_and_audited(client, admin):
    assert client.post("/v1/services", headers=admin, json=WATER).status_code == 201
    resp = client.post("/v1/services/water/state", headers=admin, json={"state": "degraded", "reason": "Low pressure"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["state"] == "degraded"
    # the same state again records nothing new
    client.post("/v1/services/water/state", headers=admin, json={"state": "degraded", "reason": "still"})
    assert _changes("water") == [("operational", None, None, None), ("degraded", "operational", None, None)]
    first, second = _audit("service.state")
    assert (first.before, first.after, first.detail["reason"]) == (
        {"state": "operational"},
        {"state": "degraded"},
        "Low pressure",
    )
    history = client.get("/v1/services/water/history?days=3", headers=admin).json()
    assert history["state"] == "degraded"
    assert [d["state"] for d in history["days"]] == [None, None, "degraded"]
    assert [(c["state"], c["previous"]) for c in history["changes"]] == [
        ("operational", None),
        ("degraded", "operational"),
    ]


def test_delete_refused_while_an_open_incident_affects_it(client, admin, emergency_category):
    assert client.post("/v1/services", headers=admin, json=WATER).status_code == 201
    body = {"title": "Leak", "category": "emergency", "severity": "minor", "affected_services": ["water"]}
    incident = client.post("/v1/incidents", headers=admin, json=body).json()
    assert_error(client.delete("/v1/services/water", headers=admin), 409, field="slug")
    client.patch(f"/v1/incidents/{incident['id']}", headers=admin, json={"status": "resolved"})
    assert client.delete("/v1/services/water", headers=admin).status_code == 204


# --- 90-day history: worst state of each UTC day ------------------------------------------------------------


@pytest.fixture
def pinned_clock():
    from broadcaster import clock

    yield clock
    clock.set_now(None)


def test_history_is_the_worst_state_of_each_day(client, admin, pinned_clock):
    from broadcaster.db import session_scope
    from broadcaster.models.services import Service, ServiceStateChange

    today = datetime(2026, 6, 15, 9, 30, tzinfo=UTC)
    pinned_clock.set_now(today)
    assert client.post("/v1/services", headers=admin, json=WATER).status_code == 201

    def at(days_ago: int, hour: int, minute: int = 0) -> datetime:
        return (today - timedelta(days=days_ago)).replace(hour=hour, minute=minute, second=0, microsecond=0)

    timeline = [  # (state, at): one row per change, as set_state records them
        ("degraded", at(4, 10)),
        ("operational", at(4, 12)),
        ("major_outage", at(3, 23, 59)),  # the last minute of a day
        ("partial_outage", at(2, 1)),  # the next day starts in major outage
        ("maintenance", at(2, 2)),
        ("operational", at(1, 0)),  # midnight exactly: belongs to the later day
    ]
    with session_scope() as session:
        svc = session.scalar(select(Service).where(Service.slug == "water"))
        assert svc is not None
        session.query(ServiceStateChange).filter_by(service_id=svc.id).delete()
        svc.created_at = at(6, 8)
        session.add(ServiceStateChange(service_id=svc.id, state="operational", previous=None, at=svc.created_at))
        previous = "operational"
        for state, when in timeline:
            session.add(ServiceStateChange(service_id=svc.id, state=state, previous=previous, at=when))
            previous = state
        svc.state = previous

    days = client.get("/v1/services/water/history?days=8", headers=admin).json()["days"]
    assert days == [
        {"date": "2026-06-08", "state": None},  # before the service existed
        {"date": "2026-06-09", "state": "operational"},  # created that day
        {"date": "2026-06-10", "state": "operational"},
        {"date": "2026-06-11", "state": "degraded"},
        {"date": "2026-06-12", "state": "major_outage"},
        {"date": "2026-06-13", "state": "major_outage"},  # carried over midnight, then partial, maintenance
        {"date": "2026-06-14", "state": "operational"},
        {"date": "2026-06-15", "state": "operational"},
    ]
    # a window that starts after the creation: the state at its start comes from the first change in it
    days = client.get("/v1/services/water/history?days=3", headers=admin).json()["days"]
    assert [d["state"] for d in days] == ["major_outage", "operational", "operational"]
    full = client.get("/v1/services/water/history", headers=admin).json()
    assert len(full["days"]) == 90 and full["days"][-1]["date"] == "2026-06-15"
    assert [d["state"] for d in full["days"]].count(None) == 90 - 7
