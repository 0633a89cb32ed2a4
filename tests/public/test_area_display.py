"""An update's affected area on the public surfaces: CAP 1.2 <area> (validated against the XSD), the status
page's SVG outline and name, the banner text and JSON.

Most tests write the area straight into `updates.area` (the shape broadcaster.areas validates at the API), so
they check the presentation on its own; the first posts it through the API."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest
from lxml import etree
from tests.standards import cap as cap_xsd

CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
SVG = "{http://www.w3.org/2000/svg}"

FIFTH_AVE = "5th Ave between 10th and 14th St"
#: a few blocks of 5th Ave, Manhattan (lon, lat), closed
BLOCKS = [[-73.9950, 40.7320], [-73.9905, 40.7347], [-73.9940, 40.7380], [-73.9985, 40.7352], [-73.9950, 40.7320]]
BLOCKS_CAP = "40.732,-73.995 40.7347,-73.9905 40.738,-73.994 40.7352,-73.9985 40.732,-73.995"
HOLE = [[-73.9950, 40.7340], [-73.9940, 40.7345], [-73.9945, 40.7355], [-73.9950, 40.7340]]
ISLAND = [[-73.9800, 40.7300], [-73.9790, 40.7300], [-73.9790, 40.7310], [-73.9800, 40.7310], [-73.9800, 40.7300]]


@pytest.fixture(scope="module")
def cap_schema() -> SimpleNamespace:
    """The official OASIS CAP 1.2 schema (tests/standards/cap)."""
    return SimpleNamespace(validate=cap_xsd.validate, is_valid=cap_xsd.is_valid)


def set_area(update_id: int, area: dict[str, Any]) -> None:
    """Give a published update an area (the public caches are invalidated by the commit)."""
    from broadcaster.db import session_scope
    from broadcaster.models import Update

    with session_scope() as session:
        session.get(Update, update_id).area = area


def add_named_area(slug: str, name: str, geometry: dict[str, Any]) -> None:
    from broadcaster.db import session_scope
    from broadcaster.models.areas import Area

    points = [p for poly in _polys(geometry) for ring in poly for p in ring]
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    with session_scope() as session:
        session.add(
            Area(
                slug=slug,
                name=name,
                kind="district",
                geometry=geometry,
                min_lon=min(lons),
                min_lat=min(lats),
                max_lon=max(lons),
                max_lat=max(lats),
            )
        )


def _polys(geometry: dict[str, Any]) -> list:
    return [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]


def latest_cap_path(update_id: int) -> str:
    """The newest CAP message carrying the update: its publish message, or the Update that followed when its area
    was changed afterwards (set_area)."""
    from sqlalchemy import select

    from broadcaster.db import session_scope
    from broadcaster.models.public import CapMessage

    with session_scope() as session:
        stmt = select(CapMessage.id).where(CapMessage.update_id == update_id).order_by(CapMessage.id.desc())
        message_id = session.scalars(stmt).first()
    return f"/v1/feeds/cap/messages/{message_id}.xml" if message_id else f"/v1/feeds/cap/{update_id}.xml"


def cap_areas(client, update_id: int, schema: SimpleNamespace) -> list[list[dict[str, Any]]]:
    """Per <info> of the update's newest CAP message: its <area> blocks as {desc, polygons, circles}; the message
    validated against the XSD."""
    resp = client.get(latest_cap_path(update_id))
    assert resp.status_code == 200, resp.text
    schema.validate(resp.content)
    root = etree.fromstring(resp.content)
    return [
        [
            {
                "desc": a.findtext(f"{CAP}areaDesc"),
                "polygons": [p.text for p in a.findall(f"{CAP}polygon")],
                "circles": [c.text for c in a.findall(f"{CAP}circle")],
            }
            for a in info.findall(f"{CAP}area")
        ]
        for info in root.findall(f"{CAP}info")
    ]


def test_cap_polygon_exact_text_in_every_language(client, publish, cap_schema):
    update = publish(  # through the API: the area as posted, validated by broadcaster.areas
        "Water main break on 5th Ave",
        summary="Water off",
        translations={"fr": {"body": "Eau coupée", "summary": "Eau coupée"}},
        area={"description": FIFTH_AVE, "polygon": {"type": "Polygon", "coordinates": [BLOCKS]}},
    )
    infos = cap_areas(client, update["id"], cap_schema)
    assert len(infos) == 2  # en and fr
    for areas in infos:
        assert areas == [{"desc": FIFTH_AVE, "polygons": [BLOCKS_CAP], "circles": []}]
    pairs = BLOCKS_CAP.split(" ")
    assert len(pairs) >= 4 and pairs[0] == pairs[-1]


def test_cap_multipolygon_exteriors_only_and_circle(client, publish, cap_schema):
    update = publish("Water main break on 5th Ave")
    area = {
        "description": FIFTH_AVE,
        "polygon": {"type": "MultiPolygon", "coordinates": [[BLOCKS, HOLE], [ISLAND]]},
        "circle": {"lat": 40.7359, "lon": -73.9911, "radius_m": 250},
    }
    set_area(update["id"], area)
    [areas] = cap_areas(client, update["id"], cap_schema)
    [block] = areas
    assert block["desc"] == FIFTH_AVE
    # one <polygon> per polygon's exterior ring; the hole cannot be said in CAP
    assert block["polygons"] == [
        BLOCKS_CAP,
        "40.73,-73.98 40.73,-73.979 40.731,-73.979 40.731,-73.98 40.73,-73.98",
    ]
    assert block["circles"] == ["40.7359,-73.9911 0.25"]  # kilometres


def test_cap_named_areas_emit_their_polygons(client, publish, cap_schema):
    add_named_area("chelsea", "Chelsea", {"type": "MultiPolygon", "coordinates": [[BLOCKS], [ISLAND]]})
    add_named_area("soho", "SoHo", {"type": "Polygon", "coordinates": [ISLAND]})
    named_only = publish("Gas leak")
    set_area(named_only["id"], {"areas": ["chelsea", "soho", "gone"]})
    [areas] = cap_areas(client, named_only["id"], cap_schema)
    assert [(a["desc"], len(a["polygons"]), a["circles"]) for a in areas] == [("Chelsea", 2, []), ("SoHo", 1, [])]
    assert areas[0]["polygons"][0] == BLOCKS_CAP

    both = publish("Power cut")
    set_area(both["id"], {"areas": ["soho"], "circle": {"lat": 40.73, "lon": -73.99, "radius_m": 1500}})
    [areas] = cap_areas(client, both["id"], cap_schema)
    assert areas == [
        # the update's own shapes, named as broadcaster.areas names an area without a description
        {"desc": "SoHo, within 1.5 km of 40.73000, -73.99000", "polygons": [], "circles": ["40.73,-73.99 1.5"]},
        {"desc": "SoHo", "polygons": [areas[1]["polygons"][0]], "circles": []},
    ]


def test_cap_without_area_has_no_area_block(client, publish, cap_schema):
    update = publish("Login failing")
    assert cap_areas(client, update["id"], cap_schema) == [[]]


def _svg(html: str) -> etree._Element:
    [svg] = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    return etree.fromstring(svg)


def test_status_page_names_and_draws_the_area(client, publish):
    first = publish("Water main break on 5th Ave")
    set_area(
        first["id"],
        {
            "description": FIFTH_AVE,
            "polygon": {"type": "MultiPolygon", "coordinates": [[BLOCKS, HOLE], [ISLAND]]},
            "circle": {"lat": 40.7359, "lon": -73.9911, "radius_m": 250},
        },
    )
    publish("Login failing")  # no area: no outline
    for path in ("/status", f"/status/incidents/{first['incident_id']}"):
        html = client.get(path).text
        assert html.count("<svg") == 1
        assert f'Affected area:</strong> <span class="area-name">{FIFTH_AVE}</span>' in html
        svg = _svg(html)
        assert svg.get("role") == "img"
        assert svg.findtext(f"{SVG}title") == f"Outline of the affected area: {FIFTH_AVE}"
        paths = svg.findall(f".//{SVG}path")
        assert len(paths) == 2  # one per polygon; the hole is a second subpath of the first
        assert [p.get("d").count("M") for p in paths] == [2, 1]
        assert all(p.get("fill-rule") == "evenodd" for p in paths)
        assert len(svg.findall(f".//{SVG}circle")) == 1
        # everything inside the 240x160 box
        numbers = [float(n) for p in paths for n in re.findall(r"-?\d+(?:\.\d+)?", p.get("d"))]
        assert min(numbers) >= 0 and max(numbers) <= 240
        assert "http" not in re.sub(r'xmlns="[^"]+"', "", html[html.index("<svg") : html.index("</svg>")])


def test_a_later_update_without_area_keeps_the_incident_area(client, publish):
    first = publish("Water main break on 5th Ave")
    set_area(first["id"], {"description": FIFTH_AVE, "polygon": {"type": "Polygon", "coordinates": [BLOCKS]}})
    publish(incident_id=first["incident_id"], body="Crews on site.")
    html = client.get(f"/status/incidents/{first['incident_id']}").text
    assert len(_svg(html).findall(f".//{SVG}path")) == 1


def test_banner_names_the_area(client, publish):
    update = publish("Water main break on 5th Ave", body="Water off until 18:00", summary="Water off until 18:00")
    set_area(update["id"], {"description": "5th Ave", "polygon": {"type": "Polygon", "coordinates": [BLOCKS]}})
    [banner] = client.get("/v1/banner").json()["banners"]
    assert banner["text"] == "Water off until 18:00 — affected area: 5th Ave"
    assert banner["area"] == {
        "description": "5th Ave",
        "areas": [],
        "polygon": {"type": "Polygon", "coordinates": [BLOCKS]},
    }
    html = client.get("/v1/banner.html").text
    assert "Water off until 18:00 — affected area: 5th Ave</span>" in html


def test_banner_without_area_is_unchanged(client, publish):
    publish("Login failing", body="Login is failing", summary="Login is failing")
    [banner] = client.get("/v1/banner").json()["banners"]
    assert banner["text"] == "Login is failing"
    assert banner["area"] is None
