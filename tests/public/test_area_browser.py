"""The status page's area outline in a real browser (headless Debian Chromium through Playwright): the SVG
renders with a non-zero box, the area name is visible, and nothing is fetched from anywhere else (no tiles)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.public.servers import run_service
from tests.public.test_area_display import BLOCKS, FIFTH_AVE, HOLE

pytestmark = pytest.mark.browser


@pytest.fixture
def service(db_url: str, tmp_path: Path) -> Iterator[str]:
    with run_service(db_url, tmp_path) as base:
        yield base


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_status_page_draws_the_area_outline(browser, service, make_key, db_url):
    headers = {"Authorization": f"Bearer {make_key('admin')}"}

    def post(path: str, body: dict) -> dict:
        resp = httpx.post(service + path, headers=headers, json=body)
        assert resp.status_code in (200, 201), resp.text
        return resp.json()

    post("/v1/categories", {"slug": "water", "name": "Water"})
    incident = post("/v1/incidents", {"title": "Water main break on 5th Ave", "category": "water", "severity": "major"})
    area = {
        "description": FIFTH_AVE,
        "polygon": {"type": "Polygon", "coordinates": [BLOCKS, HOLE]},
        "circle": {"lat": 40.7359, "lon": -73.9911, "radius_m": 150},
    }
    update = post(f"/v1/incidents/{incident['id']}/updates", {"body": "Water is off.", "area": area})
    post(f"/v1/updates/{update['id']}/publish", {})

    page = browser.new_context().new_page()
    requests: list[str] = []
    page.on("request", lambda req: requests.append(req.url))
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{service}/status")

    name = page.locator(f"#incident-{incident['id']}-area .area-name")
    assert name.is_visible()
    assert name.inner_text() == FIFTH_AVE
    svg = page.get_by_role("img", name=f"Outline of the affected area: {FIFTH_AVE}")
    assert svg.count() == 1 and svg.is_visible()
    box = svg.bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 50
    # the drawn shapes themselves have a real extent inside the 240x160 drawing
    [path_box] = svg.locator("path").evaluate_all(
        "els => els.map(e => { const b = e.getBBox(); return [b.width, b.height]; })"
    )
    assert path_box[0] > 10 and path_box[1] > 10
    [circle_box] = svg.locator("circle").evaluate_all("els => els.map(e => e.getBBox().width)")
    assert circle_box > 1
    # the hole is a hole: the fill rule is evenodd as rendered
    assert svg.locator("path").evaluate("e => getComputedStyle(e).fillRule") == "evenodd"
    assert errors == []
    assert requests and all(url.startswith(service) for url in requests), requests  # no tiles, no CDN
