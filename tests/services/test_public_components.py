"""The public face of services: Statuspage-style JSON and the status page's components with 90-day bars."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from tests.public.servers import run_service

SERVICES = [  # slug, name, group, position, state, public
    ("water", "Water supply", "Utilities", 1, "major_outage", True),
    ("power", "Electricity", "Utilities", 2, "degraded", True),
    ("portal", "Customer portal", "", 0, "operational", True),
    ("phones", "Phone lines", "", 1, "partial_outage", True),
    ("roads", "Road works", "Transport", 0, "maintenance", True),
    ("internal", "Internal billing", "", 5, "major_outage", False),
]


def _define(client, headers) -> None:
    for slug, name, group, position, state, public in SERVICES:
        body = {"slug": slug, "name": name, "group": group, "position": position, "public": public}
        resp = client.post("/v1/services", headers=headers, json=body | {"description": f"About {name}"})
        assert resp.status_code == 201, resp.text
        if state != "operational":
            resp = client.post(f"/v1/services/{slug}/state", headers=headers, json={"state": state, "reason": "test"})
            assert resp.status_code == 200, resp.text


def test_components_json_maps_states_like_statuspage(client, admin):
    _define(client, admin)
    resp = client.get("/v1/public/components.json")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    doc = resp.json()
    assert doc["page"]["name"] and doc["page"]["url"].endswith("/status")
    by_id = {c["id"]: c for c in doc["components"]}
    assert set(by_id) == {"water", "power", "portal", "phones", "roads", "group:Utilities", "group:Transport"}
    assert {k: by_id[k]["status"] for k in by_id} == {
        "water": "major_outage",
        "power": "degraded_performance",
        "portal": "operational",
        "phones": "partial_outage",
        "roads": "under_maintenance",
        "group:Utilities": "major_outage",  # a group shows its worst member
        "group:Transport": "under_maintenance",
    }
    water = by_id["water"]
    assert {k: water[k] for k in ("name", "description", "position", "group", "group_id", "page_id")} == {
        "name": "Water supply",
        "description": "About Water supply",
        "position": 1,
        "group": False,
        "group_id": "group:Utilities",
        "page_id": "broadcaster",
    }
    assert water["updated_at"].endswith("Z") and water["created_at"].endswith("Z")
    assert by_id["group:Utilities"]["group"] is True
    assert by_id["group:Utilities"]["components"] == ["water", "power"]
    assert by_id["portal"]["group_id"] is None


def test_summary_json(client, admin, emergency_category):
    empty = client.get("/v1/public/summary.json").json()
    assert empty["status"] == {"indicator": "none", "description": "All Systems Operational"}
    assert empty["components"] == [] and empty["incidents"] == []
    _define(client, admin)
    body = {"title": "Mains burst", "category": "emergency", "severity": "minor", "affected_services": ["water"]}
    iid = client.post("/v1/incidents", headers=admin, json=body).json()["id"]
    uid = client.post(f"/v1/incidents/{iid}/updates", headers=admin, json={"body": "Crews on site."}).json()["id"]
    assert client.post(f"/v1/updates/{uid}/publish", headers=admin).status_code == 200
    doc = client.get("/v1/public/summary.json").json()
    assert doc["status"] == {"indicator": "critical", "description": "Major Service Outage"}
    assert len(doc["components"]) == 7
    [incident] = doc["incidents"]
    assert {k: incident[k] for k in ("id", "name", "status", "impact")} == {
        "id": str(iid),
        "name": "Mains burst",
        "status": "investigating",
        "impact": "minor",
    }
    assert [(c["id"], c["status"]) for c in incident["components"]] == [("water", "major_outage")]
    assert [u["body"] for u in incident["incident_updates"]] == ["Crews on site."]


def test_public_json_is_cached_and_refreshed_on_change(client, admin):
    _define(client, admin)
    first = client.get("/v1/public/components.json")
    etag = first.headers["etag"]
    assert "public" in first.headers["cache-control"]
    assert client.get("/v1/public/components.json", headers={"If-None-Match": etag}).status_code == 304
    client.post("/v1/services/water/state", headers=admin, json={"state": "operational", "reason": "fixed"})
    second = client.get("/v1/public/components.json", headers={"If-None-Match": etag})
    assert second.status_code == 200
    assert {c["id"]: c["status"] for c in second.json()["components"]}["water"] == "operational"
    # PATCH (public: false) refreshes too: the service leaves the public JSON
    client.patch("/v1/services/water", headers=admin, json={"public": False})
    ids = {c["id"] for c in client.get("/v1/public/components.json").json()["components"]}
    assert "water" not in ids and "power" in ids


def test_status_page_lists_components_with_bars(client, admin):
    assert "Components" not in client.get("/status").text  # no services: no section
    _define(client, admin)
    page = client.get("/status").text
    assert "Internal billing" not in page  # not public
    for slug, name, _group, _pos, state, public in SERVICES:
        if not public:
            continue
        block = re.search(rf'<li id="component-{slug}" data-state="{state}">(.*?)</ol>', page, re.S)
        assert block is not None, slug
        cells = re.findall(r'<li class="st-([a-z_]+)" data-date="([0-9-]+)" title="([^"]+)">', block.group(1))
        assert len(cells) == 90
        assert cells[-1][0] == state  # today: created operational, then set to `state` (worse or equal)
        assert [c[0] for c in cells[:-1]] == ["none"] * 89  # before the service existed
        today = datetime.now(UTC).date()
        assert cells[-1][1] == today.isoformat() and cells[0][1] == (today - timedelta(days=89)).isoformat()
        assert cells[-1][2].endswith(
            ": "
            + {
                "operational": "Operational",
                "degraded": "Degraded performance",
                "partial_outage": "Partial outage",
                "major_outage": "Major outage",
                "maintenance": "Under maintenance",
            }[state]
        )
    # grouped: ungrouped first, then groups by name, each with a heading
    assert page.index("<h3>Transport</h3>") < page.index("<h3>Utilities</h3>")
    assert page.index('id="component-portal"') < page.index("<h3>Transport</h3>")
    assert page.index('id="component-water"') < page.index('id="component-power"')  # by position


# --- in a real browser ---------------------------------------------------------------------------------------


@pytest.fixture
def service(db_url: str, tmp_path: Path) -> Iterator[str]:
    with run_service(db_url, tmp_path) as base:
        yield base


@pytest.mark.browser
def test_status_page_components_in_chromium(browser, service, make_key):
    headers = {"Authorization": f"Bearer {make_key('write')}"}
    for body in (
        {"slug": "water", "name": "Water supply", "group": "Utilities"},
        {"slug": "power", "name": "Electricity", "group": "Utilities", "position": 1},
    ):
        assert httpx.post(service + "/v1/services", headers=headers, json=body).status_code == 201
    resp = httpx.post(
        service + "/v1/services/water/state", headers=headers, json={"state": "major_outage", "reason": "burst"}
    )
    assert resp.status_code == 200
    context = browser.new_context(java_script_enabled=False)  # works without JavaScript
    foreign: list[str] = []

    def only_local(route) -> None:
        if urlsplit(route.request.url).hostname in {"127.0.0.1", "localhost"}:
            route.continue_()
        else:
            foreign.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    page.goto(service + "/status")
    assert page.locator("#components").inner_text() == "Components"
    assert page.locator("#component-water .svc-state").inner_text() == "Major outage"
    assert page.locator("#component-power .svc-state").inner_text() == "Operational"
    bar = page.locator("#component-water ol.bar")
    assert "worst state of each of the last 90 days" in (bar.get_attribute("aria-label") or "")
    cells = bar.locator("li")
    assert cells.count() == 90
    assert cells.nth(89).get_attribute("class") == "st-major_outage"
    assert cells.nth(0).get_attribute("class") == "st-none"
    assert (cells.nth(89).get_attribute("title") or "").endswith(": Major outage")
    assert page.locator("#component-power ol.bar li").nth(89).get_attribute("class") == "st-operational"
    # cells are drawn: today's cell has a size and the outage colour
    box = cells.nth(89).bounding_box()
    assert box is not None and box["width"] >= 2 and box["height"] >= 10
    colour = cells.nth(89).evaluate("el => getComputedStyle(el).backgroundColor")
    assert colour == "rgb(185, 28, 28)"
    # the per-day text is there for screen readers (visually hidden)
    assert cells.nth(89).locator(".vh").inner_text().endswith(": Major outage")
    assert foreign == []
    context.close()


def test_status_page_does_not_claim_all_operational_when_a_component_is_not(client, admin):
    client.post("/v1/services", headers=admin, json={"slug": "water", "name": "Water"})
    assert "All systems operational" in client.get("/status").text
    client.post("/v1/services/water/state", headers=admin, json={"state": "degraded", "reason": "low pressure"})
    page = client.get("/status").text
    assert "All systems operational" not in page
    assert "Some components are not fully operational" in page
    # a hidden service does not count
    client.patch("/v1/services/water", headers=admin, json={"public": False})
    assert "All systems operational" in client.get("/status").text
