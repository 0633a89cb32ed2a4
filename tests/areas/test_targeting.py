"""Polygon, circle, MultiPolygon and named-area targeting: edges and vertices are inside, holes are outside;
the preview counts and the fan-out (worker -> real Twilio SDK -> fake provider) reach exactly those inside."""

from __future__ import annotations

import math

from sqlalchemy import func, select
from tests.areas.conftest import square

OUTER = square(-74.0, 40.5, -73.0, 41.5)
HOLE = square(-73.75, 40.75, -73.25, 41.25)


def _phones(client, admin, ids: list[int]) -> list[str]:
    return sorted(client.get(f"/v1/subscribers/{i}", headers=admin).json()["phone"] for i in ids)


def test_polygon_with_hole_edges_vertices(client, admin, located, draft, preview_count, sent_to):
    inside = [
        located("inside", 40.6, -73.9),
        located("on outer edge", 40.5, -73.5),
        located("on outer vertex", 40.5, -74.0),
        located("on far vertex", 41.5, -73.0),
        located("on hole edge", 40.75, -73.5),
        located("on hole vertex", 41.25, -73.25),
    ]
    located("inside hole", 41.0, -73.5)
    located("east of it", 41.0, -72.99)
    located("far away", 10.0, 10.0)
    located("no location")
    upd = draft({"description": "North blocks", "polygon": {"type": "Polygon", "coordinates": [OUTER, HOLE]}})
    assert upd["area"]["polygon"]["type"] == "Polygon"
    assert preview_count(upd["id"]) == len(inside)
    assert sent_to(upd["id"]) == _phones(client, admin, inside)


def test_circle_rim_is_inside(client, admin, located, draft, preview_count, sent_to):
    lat, lon, radius = 40.7128, -74.006, 1000.0
    dlat = math.degrees(radius / 6_371_008.8)
    inside = [
        located("centre", lat, lon),
        located("on the rim, north", lat + dlat, lon),
        located("on the rim, south", lat - dlat, lon),
        located("half way", lat, lon + 0.5 * dlat / math.cos(math.radians(lat))),
    ]
    located("just outside", lat + dlat * 1.001, lon)
    located("bbox corner", lat + dlat * 0.9, lon + dlat * 0.9 / math.cos(math.radians(lat)))
    upd = draft({"circle": {"lat": lat, "lon": lon, "radius_m": radius}})
    assert preview_count(upd["id"]) == len(inside)
    assert sent_to(upd["id"]) == _phones(client, admin, inside)


def test_multipolygon_and_circle_union(client, admin, located, draft, preview_count, sent_to):
    west, east = square(-74.0, 40.0, -73.9, 40.1), square(-73.5, 40.0, -73.4, 40.1)
    inside = [
        located("west", 40.05, -73.95),
        located("east edge", 40.1, -73.45),
        located("in the circle", 40.5, -73.7),
    ]
    located("between the parts", 40.05, -73.7)
    upd = draft(
        {
            "polygon": {"type": "MultiPolygon", "coordinates": [[west], [east]]},
            "circle": {"lat": 40.5, "lon": -73.7, "radius_m": 100},
        }
    )
    assert preview_count(upd["id"]) == len(inside)
    assert sent_to(upd["id"]) == _phones(client, admin, inside)


def _import(client, admin, *features: dict) -> dict:
    resp = client.post(
        "/v1/areas/import", headers=admin, json={"type": "FeatureCollection", "features": list(features)}
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def _feature(slug: str, ring: list[list[float]], **props: str) -> dict:
    return {
        "type": "Feature",
        "properties": {"slug": slug, "name": slug.title(), **props},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def test_named_areas_placed_and_located(client, admin, located, draft, preview_count, sent_to):
    out = _import(
        client,
        admin,
        _feature("north", square(-74.0, 41.0, -73.0, 41.5), kind="district"),
        _feature("south", square(-74.0, 40.0, -73.0, 40.5), kind="district"),
    )
    assert out == {"created": ["north", "south"], "updated": []}
    inside = [
        located("placed, no location", areas=["north"]),
        located("located in north", 41.2, -73.5),
        located("on north's edge", 41.0, -73.5),
        located("placed in north, lives elsewhere", 10.0, 10.0, areas=["north"]),
        located("placed in both", areas=["north", "south"]),
    ]
    located("placed in south", areas=["south"])
    located("located in south", 40.2, -73.5)
    count = client.get("/v1/areas/north/subscribers/count", headers=admin)
    assert count.json() == {"slug": "north", "subscribers": 5, "placed": 3, "located": 2}
    sub = client.get(f"/v1/subscribers/{inside[4]}", headers=admin).json()
    assert sub["areas"] == ["north", "south"]
    upd = draft({"areas": ["north"]})
    assert preview_count(upd["id"]) == len(inside)
    assert sent_to(upd["id"]) == _phones(client, admin, inside)


def test_area_change_refreshes_matches(client, admin, located, draft, preview_count):
    a = located("a", 40.05, -73.95)
    located("b", 40.55, -73.95)
    upd = draft({"polygon": {"type": "Polygon", "coordinates": [square(-74.0, 40.0, -73.9, 40.1)]}})
    assert preview_count(upd["id"]) == 1
    patch = {"area": {"polygon": {"type": "Polygon", "coordinates": [square(-74.0, 40.0, -73.9, 40.6)]}}}
    resp = client.patch(f"/v1/updates/{upd['id']}", headers=admin, json=patch)
    assert resp.status_code == 200, resp.text
    assert preview_count(upd["id"]) == 2
    # a subscriber moving out is seen at the next preview
    resp = client.patch(f"/v1/subscribers/{a}", headers=admin, json={"lat": 45.0, "lon": -73.95})
    assert resp.status_code == 200, resp.text
    assert preview_count(upd["id"]) == 1
    # no area: everyone
    resp = client.patch(f"/v1/updates/{upd['id']}", headers=admin, json={"area": None})
    assert resp.status_code == 200 and resp.json()["area"] is None
    assert preview_count(upd["id"]) == 2


def test_draft_preview_with_area_leaves_no_rows(client, admin, located, sms_category):
    from broadcaster.db import session_scope
    from broadcaster.models.areas import AreaMatch

    located("in", 40.05, -73.95)
    located("out", 45.0, -73.95)
    body = {
        "category": "water",
        "severity": "major",
        "update": {
            "body": "Water main break.",
            "area": {"polygon": {"type": "Polygon", "coordinates": [square(-74.0, 40.0, -73.9, 40.1)]}},
        },
    }
    resp = client.post("/v1/preview", headers=admin, json=body)
    assert resp.status_code == 200, resp.text
    [sms] = [c for c in resp.json()["channels"] if c["channel"] == "twilio-sms"]
    assert sms["recipients"] == 1
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(AreaMatch)) == 0


def test_presentation_helpers_and_a_deleted_named_area(client, admin, located, draft, sent_to):
    from broadcaster.areas.service import area_description, area_geometries
    from broadcaster.db import session_scope
    from broadcaster.models import Update

    _import(client, admin, _feature("north", square(-74.0, 41.0, -73.0, 41.5)))
    inside = [located("placed", areas=["north"])]
    upd = draft({"areas": ["north"], "circle": {"lat": 40.0, "lon": -74.0, "radius_m": 1500}})
    with session_scope() as session:
        update = session.get(Update, upd["id"])
        shapes = area_geometries(session, update)
        assert [s.geom_type for s in shapes] == ["Polygon", "Polygon"]
        assert shapes[0].bounds == (-74.0, 41.0, -73.0, 41.5)
        assert len(shapes[1].exterior.coords) == 65  # the circle drawn as a 64-gon
        assert area_description(session, update) == "North, within 1.5 km of 40.00000, -74.00000"
    assert sent_to(upd["id"]) == _phones(client, admin, inside)
    # published: the area may now be deleted; the update's area then draws and targets nothing of it
    assert client.delete("/v1/areas/north", headers=admin).status_code == 204
    with session_scope() as session:
        update = session.get(Update, upd["id"])
        assert [s.geom_type for s in area_geometries(session, update)] == ["Polygon"]
        assert area_description(session, update) == "north, within 1.5 km of 40.00000, -74.00000"


def test_area_with_category_and_service_reach(client, admin, draft, preview_count, sent_to):
    """With an area the reach is written per branch (`EXISTS`, delivery/audience.py `reach_exists`): inside the
    area, the category's subscribers, the affected service's followers and those who chose nothing; not the
    subscribers of another category, nor anyone outside."""
    for slug in ("gas",):
        assert client.post("/v1/categories", headers=admin, json={"slug": slug, "name": "Gas"}).status_code == 201
    assert client.post("/v1/services", headers=admin, json={"slug": "pumps", "name": "Pumps"}).status_code == 201

    def person(n: int, lat: float, **choices: list[str]) -> int:
        body = {"phone": f"+1555300{n:04d}", "name": f"p{n}", "lat": lat, "lon": -73.5} | choices
        resp = client.post("/v1/subscribers", headers=admin, json=body)
        assert resp.status_code == 201, resp.text
        return int(resp.json()["id"])

    inside = [
        person(1, 40.6, categories=["water"]),
        person(2, 40.6, services=["pumps"]),
        person(3, 40.6),
    ]
    person(4, 40.6, categories=["gas"])
    person(5, 45.0, categories=["water"])
    person(6, 45.0)
    inc = client.post(
        "/v1/incidents",
        headers=admin,
        json={"title": "Pumps", "category": "water", "severity": "major", "affected_services": ["pumps"]},
    )
    assert inc.status_code == 201, inc.text
    upd = client.post(
        f"/v1/incidents/{inc.json()['id']}/updates",
        headers=admin,
        json={
            "body": "Pumps down.",
            "summary": "Pumps",
            "area": {"polygon": {"type": "Polygon", "coordinates": [OUTER]}},
        },
    )
    assert upd.status_code == 201, upd.text
    assert preview_count(upd.json()["id"]) == len(inside)
    assert sent_to(upd.json()["id"]) == _phones(client, admin, inside)
