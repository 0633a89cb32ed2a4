"""`/v1/maintenance`: validation (422 naming the field, nothing written), scopes, audit, listing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from .helpers import window_body


def _count_windows() -> int:
    from broadcaster.db import session_scope
    from broadcaster.models.maintenance import MaintenanceWindow

    with session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(MaintenanceWindow)) or 0)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"ends_at": "2026-12-10T12:00:00Z"}, "ends_at"),  # before the start
        ({"ends_at": "2026-12-10T13:00:00Z"}, "ends_at"),  # equal to the start
        ({"starts_at": "2026-12-10T07:00:00Z"}, "starts_at"),  # in the past (now is 08:00)
        ({"services": ["api", "nope"]}, "services.1"),
        ({"services": []}, "services"),
        ({"services": ["Not A Slug"]}, "services.0"),
        ({"category": "nope"}, "category"),
        ({"notify": {"hours_before": [0]}}, "notify.hours_before"),
        ({"notify": {"hours_before": [2, 2]}}, "notify.hours_before"),
        ({"notify": {"hours_before": [721]}}, "notify.hours_before"),
        ({"notify": {"hours_before": [1.5]}}, "notify.hours_before.0"),
        ({"notify": {"weekly": True}}, "notify.weekly"),
        ({"starts_at": "tomorrow"}, "starts_at"),
        ({"title": ""}, "title"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(client, admin, world, clock_at, overrides, field):
    resp = client.post("/v1/maintenance", headers=admin, json=window_body(**overrides))
    assert resp.status_code == 422, resp.text
    assert resp.json()["field"] == field, resp.json()
    assert _count_windows() == 0


def test_bad_moves_are_422_or_409(client, admin, world, clock_at):
    wid = client.post("/v1/maintenance", headers=admin, json=window_body()).json()["id"]
    for body, field in (
        ({"ends_at": "2026-12-10T12:00:00Z"}, "ends_at"),
        ({"starts_at": "2026-12-10T07:59:00Z"}, "starts_at"),
        ({"starts_at": None}, "starts_at"),
        ({"state": "completed"}, "state"),
    ):
        resp = client.patch(f"/v1/maintenance/{wid}", headers=admin, json=body)
        assert resp.status_code == 422, resp.text
        assert resp.json()["field"] == field
    assert client.get(f"/v1/maintenance/{wid}", headers=admin).json()["revision"] == 0
    assert client.patch("/v1/maintenance/999999", headers=admin, json={"title": "x"}).status_code == 404
    assert client.post(f"/v1/maintenance/{wid}/cancel", headers=admin).status_code == 200
    late = client.patch(f"/v1/maintenance/{wid}", headers=admin, json={"ends_at": "2026-12-10T16:00:00Z"})
    assert late.status_code == 409, late.text


def test_scopes_and_audit(client, admin, auth, world, clock_at):
    reader, writer, publisher = auth("read"), auth("read", "write"), auth("read", "publish")
    assert client.post("/v1/maintenance", json=window_body()).status_code == 401
    assert client.post("/v1/maintenance", headers=reader, json=window_body()).status_code == 403
    assert client.post("/v1/maintenance", headers=writer, json=window_body()).status_code == 403
    resp = client.post("/v1/maintenance", headers=publisher, json=window_body())
    assert resp.status_code == 201, resp.text
    wid = resp.json()["id"]
    assert client.get(f"/v1/maintenance/{wid}", headers=reader).status_code == 200
    assert client.patch(f"/v1/maintenance/{wid}", headers=reader, json={"title": "x"}).status_code == 403
    assert client.post(f"/v1/maintenance/{wid}/cancel", headers=writer).status_code == 403
    moved = client.patch(f"/v1/maintenance/{wid}", headers=publisher, json={"ends_at": "2026-12-10T15:00:00Z"})
    assert moved.status_code == 200, moved.text
    assert client.post(f"/v1/maintenance/{wid}/cancel", headers=publisher).status_code == 200

    log = client.get("/v1/audit", headers=admin, params={"target_type": "maintenance", "target_id": str(wid)})
    assert log.status_code == 200, log.text
    entries: list[dict[str, Any]] = log.json()["items"]
    actions = sorted(e["action"] for e in entries)
    assert actions == ["maintenance.cancel", "maintenance.create", "maintenance.update"]
    update = next(e for e in entries if e["action"] == "maintenance.update")
    assert update["before"]["ends_at"].startswith("2026-12-10T14:00:00")
    assert update["after"]["ends_at"].startswith("2026-12-10T15:00:00")
    assert update["after"]["revision"] == 1


def test_list_filters_by_state(client, admin, world, clock_at):
    a = client.post("/v1/maintenance", headers=admin, json=window_body(title="A")).json()["id"]
    b = client.post("/v1/maintenance", headers=admin, json=window_body(title="B")).json()["id"]
    client.post(f"/v1/maintenance/{a}/cancel", headers=admin)
    every = client.get("/v1/maintenance", headers=admin).json()["items"]
    assert [w["id"] for w in every] == [b, a]
    scheduled = client.get("/v1/maintenance", headers=admin, params={"state": "scheduled"}).json()["items"]
    assert [w["id"] for w in scheduled] == [b]
    cancelled = client.get("/v1/maintenance", headers=admin, params={"state": "cancelled"}).json()["items"]
    assert [w["id"] for w in cancelled] == [a]
    bad = client.get("/v1/maintenance", headers=admin, params={"state": "soon"})
    assert bad.status_code == 422 and bad.json()["field"] == "state"
    page = client.get("/v1/maintenance", headers=admin, params={"limit": 1}).json()
    assert [w["id"] for w in page["items"]] == [b] and page["next_cursor"] == str(b)
