"""GeoJSON import errors and bad update areas: 422 naming the feature or field, and nothing written."""

from __future__ import annotations

import pytest
from tests.areas.conftest import square

GOOD = square(-74.0, 40.5, -73.0, 41.5)


def _fc(*features: dict) -> dict:
    return {"type": "FeatureCollection", "features": list(features)}


def _feat(slug: str | None, geometry: dict, **props: object) -> dict:
    properties = {"name": "Area", **props} | ({"slug": slug} if slug is not None else {})
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def _poly(*rings: list) -> dict:
    return {"type": "Polygon", "coordinates": list(rings)}


BOWTIE = [[-74.0, 40.0], [-73.0, 41.0], [-73.0, 40.0], [-74.0, 41.0], [-74.0, 40.0]]
MANY = [[-74.0 + 0.5 * (i / 12_000), 40.0 + 0.0001 * (i % 2)] for i in range(12_000)]

IMPORT_ERRORS = [
    (
        "unclosed ring",
        _feat("b", _poly(GOOD[:-1] + [[-74.0, 41.4]])),
        "features[1].geometry.coordinates[0]",
        "not closed",
    ),
    (
        "too few positions",
        _feat("b", _poly([[-74.0, 40.0], [-73.0, 40.0], [-74.0, 40.0]])),
        "features[1].geometry.coordinates[0]",
        "at least 4",
    ),
    (
        "latitude out of range",
        _feat("b", _poly(square(-74.0, 40.0, -73.0, 91.0))),
        "features[1].geometry.coordinates[0][2]",
        "latitude 91",
    ),
    (
        "longitude out of range",
        _feat("b", _poly(square(179.5, 40.0, 181.0, 41.0))),
        "features[1].geometry.coordinates[0][1]",
        "longitude 181",
    ),
    (
        "not a number",
        _feat("b", _poly([[-74.0, 40.0], [-73.0, "40"], [-73.0, 41.0], [-74.0, 40.0]])),
        "features[1].geometry.coordinates[0][1]",
        "position",
    ),
    ("self-intersection", _feat("b", _poly(BOWTIE)), "features[1].geometry.coordinates", "Self-intersection"),
    (
        "too many vertices",
        _feat("b", _poly(MANY + [MANY[0]])),
        "features[1].geometry.coordinates",
        "too many positions",
    ),
    ("too large", _feat("b", _poly(square(-80.0, 40.0, -60.0, 41.0))), "features[1].geometry.coordinates", "spans"),
    ("wrong type", _feat("b", {"type": "Point", "coordinates": [-74.0, 40.0]}), "features[1].geometry.type", "Polygon"),
    ("LineString", _feat("b", {"type": "LineString", "coordinates": GOOD}), "features[1].geometry.type", "Polygon"),
    ("no geometry", _feat("b", None), "features[1].geometry", "geometry object"),  # type: ignore[arg-type]
    ("missing slug", _feat(None, _poly(GOOD)), "features[1].properties.slug", "required"),
    ("bad slug", _feat("Not A Slug", _poly(GOOD)), "features[1].properties.slug", "lowercase"),
    ("bad kind", _feat("b", _poly(GOOD), kind="planet"), "features[1].properties.kind", "district"),
    ("duplicate slug", _feat("a", _poly(GOOD)), "features[1].properties.slug", "also features[0]"),
    (
        "hole outside shell",
        _feat("b", _poly(square(-74.0, 40.0, -73.9, 40.1), square(-73.0, 40.0, -72.9, 40.1))),
        "features[1].geometry.coordinates",
        "Hole",
    ),
]


@pytest.mark.parametrize(("case", "feature", "field", "words"), IMPORT_ERRORS, ids=[c[0] for c in IMPORT_ERRORS])
def test_import_errors_name_the_feature_and_write_nothing(client, admin, case, feature, field, words):
    resp = client.post("/v1/areas/import", headers=admin, json=_fc(_feat("a", _poly(GOOD)), feature))
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["field"] == field, body
    assert words in body["detail"], body
    assert client.get("/v1/areas", headers=admin).json() == []


def test_import_body_errors(client, admin):
    resp = client.post("/v1/areas/import", headers=admin, json={"type": "Feature"})
    assert resp.status_code == 422 and resp.json()["field"] == "type"
    resp = client.post("/v1/areas/import", headers=admin, json=_fc())
    assert resp.status_code == 422 and resp.json()["field"] == "features"
    resp = client.post("/v1/areas/import", headers={**admin, "content-type": "application/json"}, content=b"{nope")
    assert resp.status_code == 400 and resp.json()["error"] == "malformed_json"
    resp = client.post("/v1/areas/import", headers=admin, json=_fc("not a feature"))
    assert resp.status_code == 422 and resp.json()["field"] == "features[0]"


def test_areas_api_scopes_crud_and_audit(client, admin, auth):
    reader = auth("read")
    fc = _fc(_feat("north", _poly(GOOD), kind="district", description="North side"))
    assert client.post("/v1/areas/import", headers=reader, json=fc).status_code == 403
    assert client.post("/v1/areas/import", json=fc).status_code == 401
    resp = client.post("/v1/areas/import", headers=admin, json=fc)
    assert resp.json() == {"created": ["north"], "updated": []}
    again = client.post("/v1/areas/import", headers=admin, json=fc)
    assert again.json() == {"created": [], "updated": ["north"]}
    listed = client.get("/v1/areas", headers=reader).json()
    assert [(a["slug"], a["kind"], a["bbox"], a["geometry"]) for a in listed] == [
        ("north", "district", [-74.0, 40.5, -73.0, 41.5], {})
    ]
    one = client.get("/v1/areas/north", headers=reader).json()
    assert one["geometry"] == _poly(GOOD) and one["description"] == "North side"
    assert client.patch("/v1/areas/north", headers=reader, json={"name": "N"}).status_code == 403
    bad = client.patch("/v1/areas/north", headers=admin, json={"geometry": _poly(BOWTIE)})
    assert bad.status_code == 422 and bad.json()["field"] == "geometry.coordinates"
    moved = client.patch(
        "/v1/areas/north",
        headers=admin,
        json={"name": "Northside", "geometry": _poly(square(-74.0, 41.0, -73.5, 41.2))},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["name"] == "Northside" and moved.json()["bbox"] == [-74.0, 41.0, -73.5, 41.2]
    assert client.get("/v1/areas/south", headers=reader).status_code == 404
    assert client.delete("/v1/areas/north", headers=reader).status_code == 403
    assert client.delete("/v1/areas/north", headers=admin).status_code == 204
    assert client.get("/v1/areas", headers=reader).json() == []
    audit = client.get("/v1/audit", headers=admin, params={"target_type": "area"}).json()
    items = audit["items"] if isinstance(audit, dict) else audit
    actions = sorted(e["action"] for e in items if e["action"].startswith("area."))
    assert actions == ["area.delete", "area.import", "area.import", "area.update"]


def test_area_in_use_by_a_draft_cannot_be_deleted(client, admin, draft):
    client.post("/v1/areas/import", headers=admin, json=_fc(_feat("north", _poly(GOOD))))
    upd = draft({"areas": ["north"]})
    resp = client.delete("/v1/areas/north", headers=admin)
    assert resp.status_code == 409 and str(upd["id"]) in resp.json()["detail"]


UPDATE_ERRORS = [
    ({"polygon": _poly(GOOD[:-1] + [[-74.0, 41.4]])}, "area.polygon.coordinates[0]"),
    ({"polygon": _poly(BOWTIE)}, "area.polygon.coordinates"),
    ({"polygon": {"type": "Point", "coordinates": [1, 2]}}, "area.polygon.type"),
    (
        {"polygon": {"type": "MultiPolygon", "coordinates": [[GOOD], [[[-74, 40], [-73, 40], [-74, 40]]]]}},
        "area.polygon.coordinates[1][0]",
    ),
    ({"circle": {"lat": 40.0, "lon": -74.0, "radius_m": 0}}, "area.circle.radius_m"),
    ({"circle": {"lat": 40.0, "lon": -74.0, "radius_m": 600_000}}, "area.circle.radius_m"),
    ({"circle": {"lat": 95.0, "lon": -74.0, "radius_m": 10}}, "area.circle.lat"),
    ({"circle": {"lat": 40.0, "radius_m": 10}}, "area.circle.lon"),
    ({"areas": ["nowhere"]}, "area.areas[0]"),
    ({"areas": ["Bad Slug"]}, "area.areas"),
    ({"description": "only words"}, "area"),
]


@pytest.mark.parametrize(("area", "field"), UPDATE_ERRORS, ids=[f for _, f in UPDATE_ERRORS])
def test_bad_update_area_is_422_naming_the_field(client, admin, sms_category, area, field):
    from broadcaster.db import session_scope
    from broadcaster.models import Update

    inc = client.post("/v1/incidents", headers=admin, json={"title": "T", "category": "water", "severity": "major"})
    resp = client.post(f"/v1/incidents/{inc.json()['id']}/updates", headers=admin, json={"body": "b", "area": area})
    assert resp.status_code == 422, resp.text
    assert resp.json()["field"] == field, resp.json()
    with session_scope() as session:
        assert session.query(Update).count() == 0


def test_subscriber_location_and_areas_validation(client, admin):
    resp = client.post("/v1/subscribers", headers=admin, json={"phone": "+15552000001", "lat": 40.0})
    assert resp.status_code == 422 and resp.json()["field"] == "lon", resp.text
    resp = client.post("/v1/subscribers", headers=admin, json={"phone": "+15552000001", "lat": 91.0, "lon": 0})
    assert resp.status_code == 422 and resp.json()["field"] == "lat"
    resp = client.post("/v1/subscribers", headers=admin, json={"phone": "+15552000001", "areas": ["nowhere"]})
    assert resp.status_code == 422 and resp.json()["field"] == "areas[0]"
    assert client.get("/v1/subscribers", headers=admin).json()["items"] == []
    ok = client.post("/v1/subscribers", headers=admin, json={"phone": "+15552000001", "lat": 40.5, "lon": -73.5})
    assert ok.status_code == 201 and (ok.json()["lat"], ok.json()["lon"]) == (40.5, -73.5)
    cleared = client.patch(f"/v1/subscribers/{ok.json()['id']}", headers=admin, json={"lat": None, "lon": None})
    assert cleared.status_code == 200 and cleared.json()["lat"] is None
