"""Issue 21 in a real browser (headless Debian Chromium driven by Playwright) against a real uvicorn server: the
capabilities that existed only in the API, walked through the console.

- Services: add one, set its state; the public status page shows the new state.
- Maintenance: schedule a window (its notices wait for a second person: the audience is above the threshold),
  see who each notice reaches on which channel, move it, cancel it.
- Areas: import a GeoJSON file, see the outline (inline SVG) and the number of people inside.
- Responses: "not safe" and "ayuda" are listed with the people who need help, marked for a person to read.

Each page: axe-core (no serious or critical violation) at 1280 and 375 px, no sideways scroll at 375 px, touch
targets at least 44 px high; screenshots at both sizes go to docs/screenshots/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.console.test_browser_flow import DESKTOP, PHONE, check_accessibility, new_page, shoot, sign_in
from tests.console.test_responses_page import answer, asked  # noqa: F401  (fixture reused)
from tests.delivery.conftest import add_subscribers, memory, publish  # noqa: F401  (fixtures reused)
from tests.public.servers import run_service
from tests.public.servers import wait_for as _wait_for

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_only]

PHONES = ["+15550200001", "+15550200002", "+15550200003"]
GEOJSON = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {"slug": "harbour", "name": "Harbour district", "kind": "district"},
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [
                        [-74.02, 40.70],
                        [-73.96, 40.70],
                        [-73.95, 40.74],
                        [-73.99, 40.76],
                        [-74.02, 40.73],
                        [-74.02, 40.70],
                    ]
                ],
            },
        }
    ],
}


def wait_for(predicate: Any, timeout: float = 30.0) -> Any:
    return _wait_for(predicate, timeout=timeout)


def check_page(page: Any, name: str, *, write: bool) -> None:
    """axe at 1280 and 375 px, touch targets, no sideways scroll at 375 px; screenshots at both sizes."""
    for size in (DESKTOP, PHONE):
        page.set_viewport_size(size)
        page.wait_for_timeout(150)  # let the layout settle after the resize (not an assertion on timing)
        check_accessibility(page, f"{name} at {size['width']} px")
        small = page.evaluate(
            """() => Array.from(document.querySelectorAll(
                 'main button, main select, main input:not([type=checkbox]):not([type=hidden]), main textarea,'
                 + ' main summary, main a.button, main .tap'))
               .filter(e => e.offsetParent !== null && e.getBoundingClientRect().height < 44)
               .map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + e.getBoundingClientRect().height)"""
        )
        assert not small, f"{name} at {size['width']} px: touch targets under 44 px: {small}"
    page.set_viewport_size(DESKTOP)
    page.evaluate("window.scrollTo(0, 0)")
    shoot(page, name, write=write)


@pytest.fixture
def site(db_url: str, tmp_path: Path, make_user: Any, make_key: Any) -> Iterator[dict[str, Any]]:
    """The service (no worker: nothing needs sending), a planner with the editor and approver roles, a category
    whose info channels are SMS and e-mail, three people (two in the harbour), a low audience threshold."""
    make_user("both@example.org", "editor", "approver", name="Bo Both")
    make_user("editor@example.org", "editor", name="Eddie Editor")
    make_user("approver@example.org", "approver", name="Alma Approver")
    env = {
        "APPROVAL_AUDIENCE_THRESHOLD": "1",
        "LOGIN_RATE_LIMIT_IP": "1000/minute",
        "LOGIN_RATE_LIMIT_ACCOUNT": "1000/minute",
        "TWILIO_ACCOUNT_SID": "ACtest",
        "TWILIO_AUTH_TOKEN": "token",
        "TWILIO_FROM_NUMBER": "+15005550006",
    }
    with run_service(db_url, tmp_path, **env) as base:
        admin = {"Authorization": f"Bearer {make_key('admin')}"}
        with httpx.Client(base_url=base, headers=admin, timeout=10) as api:
            body = {
                "slug": "utilities",
                "name": "Utilities",
                "contact": {"phone": "+15551234567"},
                "channels": {"info": ["sms", "email"], "major": ["sms", "email"], "critical": ["sms", "email"]},
            }
            resp = api.post("/v1/categories", json=body)
            assert resp.status_code == 201, resp.text
            for phone, (lat, lon) in zip(PHONES, [(40.72, -73.99), (40.71, -74.0), (51.5, -0.1)], strict=True):
                body = {"phone": phone, "categories": ["utilities"], "lat": lat, "lon": lon}
                assert api.post("/v1/subscribers", json=body).status_code == 201
        yield {"base": base, "admin": admin}


def test_services_maintenance_and_areas(site, browser, db_url, tmp_path: Path) -> None:
    base, write = site["base"], db_url.startswith("sqlite")
    page = new_page(browser, base)
    sign_in(page, "both@example.org")
    page.on("dialog", lambda dialog: dialog.accept())

    # --- services: the empty state speaks plainly; add one, set its state, the status page shows it
    page.get_by_role("link", name="Services", exact=True).click()
    page.wait_for_url("**/console/services")
    assert "No services yet." in page.locator("#no-services").inner_text()
    assert "/v1/" not in page.locator("main").inner_text()
    page.get_by_label("Name people see").fill("Water supply")
    assert page.get_by_label("Short name for links").input_value() == "water-supply"
    page.get_by_label("Heading on the status page (optional)").fill("Utilities")
    page.get_by_role("button", name="Add service").click()
    card = page.locator('.service[data-slug="water-supply"]')
    card.wait_for()
    assert card.locator(".svc-state").inner_text() == "Operational"
    assert card.locator(".uptime li").count() == 90
    card.get_by_label("Change state to").select_option("major_outage")
    card.get_by_label("Reason (kept in the audit log)").fill("Main burst on Harbour Street")
    card.get_by_role("button", name="Set state").click()
    wait_for(lambda: card.locator(".svc-state").inner_text() == "Major outage")
    assert card.locator(".uptime li").last.get_attribute("class") == "st-major_outage"
    card.get_by_text("Edit Water supply").click()
    card.get_by_label("Description").fill("Drinking water for the whole town")
    card.get_by_role("button", name="Save changes").click()
    page.locator(".svc-description", has_text="Drinking water").wait_for()
    check_page(page, "services", write=write)

    public = page.context.new_page()

    def status_shows() -> bool:
        public.goto(f"{base}/status")
        component = public.locator("#component-water-supply")
        return component.count() == 1 and component.get_attribute("data-state") == "major_outage"

    wait_for(status_shows)
    assert "Major outage" in public.locator("#component-water-supply").inner_text()
    public.close()

    # --- maintenance: schedule (the notices wait for a second person), see who they reach, move, cancel
    page.get_by_role("link", name="Maintenance", exact=True).click()
    page.wait_for_url("**/console/maintenance")
    assert page.locator("#no-windows").is_visible()
    start = (datetime.now(UTC) + timedelta(days=3)).replace(hour=9, minute=0, second=0, microsecond=0)
    page.get_by_label("Title").fill("Water main replacement")
    page.get_by_label("What happens and what people should do").fill("Water is off. Fill bottles the night before.")
    page.get_by_label("Starts (UTC)").fill(start.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Ends (UTC)").fill((start + timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Water supply").check()
    page.get_by_label("Category (its channels send the notices)").select_option("utilities")
    page.get_by_label('Reminders, hours before the start (optional, e.g. "24, 1")').fill("24")
    page.get_by_role("button", name="Schedule").click()
    window = page.locator(".window").first
    window.wait_for()
    assert "Water main replacement" in window.locator("h2").inner_text()
    assert "Waiting for approval" in window.locator(".card-head").inner_text()
    assert "second person" in window.locator(".approval-note").inner_text()
    rows = window.locator(".upcoming tr[data-notice]")
    kinds = [rows.nth(i).locator("td").nth(1).inner_text() for i in range(rows.count())]
    assert any(k.startswith("Reminder (24 h before)") for k in kinds) and any("At the start" in k for k in kinds)
    wait_for(lambda: window.locator(".upcoming .loading").count() == 0)
    reach = window.locator(".upcoming td.audience").last.inner_text()
    assert "sms: 2 people" in reach or "sms: 3 people" in reach, reach
    check_page(page, "maintenance", write=write)

    new_end = start + timedelta(hours=6)
    window.get_by_label("New end (UTC)").fill(new_end.strftime("%Y-%m-%dT%H:%M"))
    window.get_by_role("button", name="Move").click()
    wait_for(
        lambda: new_end.strftime("%Y-%m-%d %H:%M") in page.locator(".window").first.locator(".w-ends").inner_text()
    )
    assert page.locator(".window").first.locator(".decide-form").count() == 0  # the requester cannot approve

    # a second approver reads who the notices reach and approves them
    second = new_page(browser, base)
    sign_in(second, "approver@example.org")
    second.goto("/console/maintenance")
    theirs = second.locator(".window").first
    wait_for(lambda: theirs.locator(".upcoming .loading").count() == 0)
    theirs.get_by_role("button", name="Approve the notices").click()
    wait_for(lambda: "Notices approved" in second.locator(".window").first.locator(".card-head").inner_text())
    second.close()

    page.reload()
    page.locator(".window").first.get_by_role("button", name="Cancel this maintenance").click()
    wait_for(lambda: page.locator(".window").first.locator(".window-state").inner_text() == "Cancelled")
    assert page.locator(".window").first.locator(".move-form").count() == 0

    # --- areas: import a GeoJSON file, see the outline and the count
    page.get_by_role("link", name="Areas", exact=True).click()
    page.wait_for_url("**/console/areas")
    assert page.locator("#no-areas").is_visible()
    geojson = tmp_path / "harbour.geojson"
    geojson.write_text(json.dumps(GEOJSON))
    page.get_by_label("GeoJSON file").set_input_files(str(geojson))
    page.get_by_role("button", name="Import").click()
    area = page.locator('.area-card[data-slug="harbour"]')
    area.wait_for()
    svg = area.locator("svg.area-outline")
    assert svg.get_attribute("aria-label") == "Outline of Harbour district"
    assert svg.locator("path").count() == 1 and svg.locator("path").get_attribute("d").startswith("M")
    assert svg.bounding_box()["width"] > 100
    assert area.locator(".area-count").inner_text() == "2"
    check_page(page, "areas", write=write)

    # a broken file: nothing imported, the error names the feature
    bad = tmp_path / "bad.geojson"
    bad.write_text(json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}}]}))
    page.get_by_text("Import areas from a GeoJSON file").click()
    page.get_by_label("GeoJSON file").set_input_files(str(bad))
    page.get_by_role("button", name="Import").click()
    result = page.locator("#import-form .form-result")
    wait_for(lambda: result.inner_text().startswith("Nothing was imported"))
    assert "features[0]" in result.inner_text()
    assert not page.errors, page.errors  # type: ignore[attr-defined]

    # an editor (no publish scope) sees the maintenance but no Schedule, Move or Cancel
    other = new_page(browser, base)
    sign_in(other, "editor@example.org")
    other.goto("/console/maintenance")
    assert "needs the approver role" in other.locator("main").inner_text()
    assert other.get_by_role("button", name="Schedule").count() == 0
    assert other.get_by_role("button", name="Cancel this maintenance").count() == 0


def test_free_text_needing_help_is_shown_with_the_people_who_need_help(
    db_url,
    asked,  # noqa: F811
    make_user,
    browser,
    tmp_path: Path,
) -> None:
    make_user("editor@example.org", "editor", name="Eddie Editor")
    answer("+15550000001", "not safe")
    answer("+15550000002", "ayuda")
    answer("+15550000003", "maybe later")
    with run_service(db_url, tmp_path, MEMORY_ADAPTER_ENABLED="true") as base:
        page = new_page(browser, base)
        sign_in(page, "editor@example.org")
        page.goto(f"/console/updates/{asked}/responses")
        rows = page.locator("#free-text-rows tr")
        assert rows.count() == 2
        texts = [rows.nth(i).inner_text() for i in range(2)]
        assert any("ayuda" in t for t in texts) and any("not safe" in t for t in texts)
        assert all("A person should read this" in t for t in texts)
        assert rows.first.locator('a[href^="tel:"]').count() == 1
        assert "needs-help" in (rows.first.get_attribute("class") or "")
        people = page.locator("#people-table")
        assert people.locator("#free-text-rows").count() == 1  # in the needs-help table, above the answers
        bottom = page.locator("#unrecognised-list").inner_text()
        assert "maybe later" in bottom and "not safe" not in bottom and "ayuda" not in bottom
        # a new one arrives while the page is open: listed at once (the stream says replies came)
        page.locator("#stream-state", has_text="live").wait_for()
        answer("+15550000003", "Hilfe, wir sind eingeschlossen")
        wait_for(lambda: rows.count() == 3)
        assert "Hilfe, wir sind eingeschlossen" in rows.first.inner_text()
        assert page.locator("#needs-a-person-count").inner_text() == "3"
        check_page(page, "responses-free-text", write=db_url.startswith("sqlite"))
        assert not page.errors, page.errors  # type: ignore[attr-defined]
