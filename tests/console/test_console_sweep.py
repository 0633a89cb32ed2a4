"""Every console page in a real Chromium, at 1280 and 375 px (issue 21): axe-core finds no serious or critical
violation, nothing scrolls sideways on a phone, and no script error. The pages are filled as in a crisis: the
example plan, residents, a published update that asks "Are you safe?" (with its broadcast and responses page),
an update waiting for approval, a service, an area. An admin opens every page; the sign-in page is checked
signed out. (The public and resident pages have their own sweep: tests/public/test_public_pages_browser.py.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.approving import confirm
from tests.console.test_browser_flow import DESKTOP, PHONE, check_accessibility, new_page, sign_in
from tests.public.servers import run_service

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_only]

PLAN = Path(__file__).resolve().parents[2] / "examples" / "crisis-plan.yaml"
QUESTION = {
    "text": "Are you safe?",
    "options": [{"label": "I'm safe", "keywords": ["SAFE"]}, {"label": "I need help", "needs_help": True}],
}


@pytest.fixture
def world(db_url: str, tmp_path: Path, fake_server: Any, make_user: Any, make_key: Any) -> Iterator[dict[str, Any]]:
    """The service with its worker against the fake provider, and something on every page."""
    fake_server.reset()
    make_user("ada@example.org", "admin", name="Ada Admin")
    make_user("erin@example.org", "editor", name="Erin Editor")
    env = fake_server.env() | {
        "WORKER_IN_PROCESS": "true",
        "WORKER_POLL_SECONDS": "0.05",
        "APPROVAL_SEVERITY": "critical",
        "APPROVER_GRANT_DELAY": "0",
        "LOGIN_RATE_LIMIT_IP": "1000/minute",
        "LOGIN_RATE_LIMIT_ACCOUNT": "1000/minute",
    }
    with run_service(db_url, tmp_path, **env) as base:
        admin = {"Authorization": f"Bearer {make_key('admin')}"}
        with httpx.Client(base_url=base, headers=admin, timeout=10) as api:
            assert api.put("/v1/routing-map", content=PLAN.read_bytes(), headers={"Content-Type": "application/yaml"})
            ids: dict[str, Any] = {}
            for i in range(3):
                body = {"phone": f"+1555030{i:04d}", "email": f"r{i}@example.org", "categories": ["emergency"]}
                made = api.post("/v1/subscribers", json=body)
                assert made.status_code == 201, made.text
                ids["subscriber"] = made.json()["id"]
            assert api.post("/v1/services", json={"slug": "water", "name": "Water supply"}).status_code == 201
            ring = [[-74.0, 40.0], [-73.0, 40.0], [-73.0, 40.5], [-74.0, 40.5], [-74.0, 40.0]]
            area = {"type": "Feature", "properties": {"slug": "harbour", "name": "Harbour"}}
            area["geometry"] = {"type": "Polygon", "coordinates": [ring]}
            assert api.post("/v1/areas/import", json={"type": "FeatureCollection", "features": [area]}).is_success
            # a published major update with a question (no second person needed below critical)
            made = api.post(
                "/v1/incidents",
                json={
                    "title": "Gas leak on Harbour Street",
                    "category": "emergency",
                    "severity": "major",
                    "update": {"body": "Leave the area now.", "channels": ["sms", "email"], "question": QUESTION},
                },
            )
            assert made.status_code == 201, made.text
            ids["incident"], ids["update"] = made.json()["id"], made.json()["updates"][0]["id"]
            sent = api.post(f"/v1/updates/{ids['update']}/publish", json=confirm(ids["update"]))
            assert sent.status_code == 200, sent.text
            ids["broadcast"] = sent.json()["broadcast_id"]
            # a critical one waiting for a second person
            pending = api.post(
                "/v1/incidents",
                json={
                    "title": "Evacuation of the north district",
                    "category": "emergency",
                    "severity": "critical",
                    "update": {"body": "Leave the north district by the ring road."},
                },
            )
            assert pending.status_code == 201, pending.text
            asked = api.post(f"/v1/updates/{pending.json()['updates'][0]['id']}/publish", headers=admin)
            assert asked.status_code in (200, 202), asked.text
        yield {"base": base, "ids": ids}


def _fits_a_phone(page: Any, name: str) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name}: {overflow}px of sideways scroll at 375 px"


def test_every_console_page_passes_axe_and_fits_a_phone(world, browser) -> None:
    base, ids = world["base"], world["ids"]
    pages = [
        "/console/",
        f"/console/incidents/{ids['incident']}",
        "/console/compose",
        f"/console/compose?incident_id={ids['incident']}",
        "/console/approvals",
        f"/console/broadcasts/{ids['broadcast']}",
        f"/console/updates/{ids['update']}/responses",
        "/console/notifications",
        "/console/subscribers",
        f"/console/subscribers/{ids['subscriber']}",
        "/console/services",
        "/console/maintenance",
        "/console/areas",
        "/console/channels",
        "/console/routing",
        "/console/audit",
    ]
    login = new_page(browser, base)
    login.goto("/console/login")
    for size in (DESKTOP, PHONE):
        login.set_viewport_size(size)
        check_accessibility(login, f"sign-in at {size['width']} px")
    _fits_a_phone(login, "sign-in")

    page = new_page(browser, base)
    sign_in(page, "ada@example.org")
    checked = []
    for path in pages:
        for size in (DESKTOP, PHONE):
            page.set_viewport_size(size)
            response = page.goto(path)
            assert response is not None and response.status == 200, path
            page.wait_for_timeout(400)  # the page's scripts draw what they fetch (not an assertion on timing)
            check_accessibility(page, f"{path} at {size['width']} px")
            if size is PHONE:
                _fits_a_phone(page, path)
        checked.append(path)
    assert checked == pages
    assert not page.errors, page.errors
