"""An approval binds the geometry of every named area the update targets (issue 19): editing or re-importing
that area's shape voids a pending approval and changes the ETag; the preview shows each area's name and
geometry version; edits of other areas, and people moving, void nothing.

Alice holds read, write and publish; Bob holds read and publish. Critical updates wait for a second person.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.approving import confirm
from tests.areas.conftest import square

NORTH = square(-74.0, 41.0, -73.0, 41.5)
WIDER = square(-75.0, 41.0, -73.0, 42.5)


@pytest.fixture
def alice(make_key) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key('read', 'write', 'publish', name='alice')}"}


@pytest.fixture
def bob(make_key) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key('read', 'publish', name='bob')}"}


def _feature(slug: str, ring: list[list[float]], name: str | None = None) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": {"slug": slug, "name": name or slug.title()},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def _import(client, who, *features: dict[str, Any]) -> None:
    resp = client.post("/v1/areas/import", headers=who, json={"type": "FeatureCollection", "features": list(features)})
    assert resp.status_code == 200, resp.text


@pytest.fixture
def pending(client, admin, alice, sms_category) -> int:
    """A critical update to the named area `north` (and a drawn circle), waiting for approval."""
    _import(client, admin, _feature("north", NORTH), _feature("south", square(-74.0, 40.0, -73.0, 40.5)))
    inc = client.post(
        "/v1/incidents", headers=alice, json={"title": "Water main", "category": "water", "severity": "critical"}
    )
    assert inc.status_code == 201, inc.text
    body = {
        "body": "Water main break on 5th Ave.",
        "channels": ["twilio-sms"],
        "area": {"areas": ["north"], "circle": {"lat": 40.2, "lon": -73.5, "radius_m": 1500}},
    }
    upd = client.post(f"/v1/incidents/{inc.json()['id']}/updates", headers=alice, json=body)
    assert upd.status_code == 201, upd.text
    assert client.post(f"/v1/updates/{upd.json()['id']}/publish", headers=alice).status_code == 202
    return int(upd.json()["id"])


def _preview(client, update_id: int, who) -> dict[str, Any]:
    resp = client.post(f"/v1/updates/{update_id}/preview", headers=who)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _state(client, update_id: int, who) -> str:
    return str(client.get(f"/v1/updates/{update_id}", headers=who).json()["state"])


def _cancelled() -> list[dict[str, Any]]:
    from sqlalchemy import select

    from broadcaster.db import session_scope
    from broadcaster.models import AuditEntry

    with session_scope() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "update.approval_cancelled").order_by(AuditEntry.id)
        )
        return [{"actor": r.actor, **r.detail} for r in rows]


def test_the_preview_shows_each_area_with_its_geometry_version(client, bob, pending):
    areas = _preview(client, pending, bob)["binding"]["areas"]
    assert [(a["slug"], a["name"]) for a in areas] == [
        ("north", "North"),
        (None, "within 1.5 km of 40.20000, -73.50000"),
    ]
    assert all(len(a["geometry_version"]) == 16 for a in areas)


def test_editing_a_named_areas_geometry_voids_the_pending_approval(client, admin, alice, bob, pending):
    reviewed = _preview(client, pending, bob)
    resp = client.patch(
        "/v1/areas/north", headers=admin, json={"geometry": {"type": "Polygon", "coordinates": [WIDER]}}
    )
    assert resp.status_code == 200, resp.text
    assert _state(client, pending, alice) == "draft"
    [entry] = _cancelled()
    assert (entry["fields"], entry["cause"]) == (["areas"], "area north edited")
    assert entry["actor"].startswith("key:") and entry["requester"] == "key:alice"
    fresh = _preview(client, pending, bob)
    assert fresh["etag"] != reviewed["etag"]
    assert fresh["binding"]["areas"][0]["geometry_version"] != reviewed["binding"]["areas"][0]["geometry_version"]

    # asked again: Bob's approval of the old shape is refused, of the new one accepted
    assert client.post(f"/v1/updates/{pending}/publish", headers=alice).status_code == 202
    stale = client.post(
        f"/v1/updates/{pending}/approve", json=confirm(pending), headers={**bob, "If-Match": reviewed["etag"]}
    )
    assert stale.status_code == 412, stale.text
    ok = client.post(
        f"/v1/updates/{pending}/approve", json=confirm(pending), headers={**bob, "If-Match": fresh["etag"]}
    )
    assert ok.status_code == 200, ok.text


def test_reimporting_a_named_area_with_another_shape_voids_the_pending_approval(client, admin, alice, bob, pending):
    reviewed = _preview(client, pending, bob)
    _import(client, admin, _feature("north", NORTH))  # the same shape and name: nothing changes
    assert _state(client, pending, alice) == "pending_approval"
    assert _preview(client, pending, bob)["etag"] == reviewed["etag"]
    _import(client, admin, _feature("north", WIDER))
    assert _state(client, pending, alice) == "draft"
    assert _cancelled()[-1]["fields"] == ["areas"]


def test_other_areas_and_people_moving_void_nothing(client, admin, alice, bob, pending, located):
    reviewed = _preview(client, pending, bob)
    resp = client.patch(
        "/v1/areas/south", headers=admin, json={"geometry": {"type": "Polygon", "coordinates": [WIDER]}}
    )
    assert resp.status_code == 200, resp.text
    located("moves in", 41.2, -73.5)
    located("placed", areas=["north"])
    again = _preview(client, pending, bob)
    assert again["etag"] == reviewed["etag"]
    assert _state(client, pending, alice) == "pending_approval" and _cancelled() == []
    ok = client.post(
        f"/v1/updates/{pending}/approve", json=confirm(pending), headers={**bob, "If-Match": reviewed["etag"]}
    )
    assert ok.status_code == 200, ok.text
