"""The routing page in a real browser (headless Chromium, Playwright) against a real uvicorn server: an admin's
change that loosens safety becomes a proposal shown with its diff; the admin cannot approve it; an approver
(who cannot edit the map) approves it, and the map changes only then; another proposal is rejected with a
comment. axe-core finds no serious/critical violation and the page fits 375 px."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.console.test_browser_flow import check_accessibility, new_page, shoot, sign_in, wait_for
from tests.public.servers import run_service

pytestmark = pytest.mark.browser

ESCALATION = """  escalation:
    steps:
    - after_minutes: 10
      channel: voice
    threshold:
      percent: 60
      after_minutes: 30
      group:
        emails: [ops@example.org]
"""


@pytest.fixture
def service(db_url: str, tmp_path: Path, make_user: Any, make_key: Any) -> Iterator[dict[str, Any]]:
    make_user("admin@example.org", "admin", name="Ada Admin")
    make_user("approver@example.org", "approver", name="Alma Approver")
    with run_service(db_url, tmp_path, APPROVER_GRANT_DELAY="0") as base:
        admin = {"Authorization": f"Bearer {make_key('admin')}"}
        with httpx.Client(base_url=base, headers=admin, timeout=10) as api:
            resp = api.post(
                "/v1/categories",
                json={"slug": "emergency", "name": "Emergency", "channels": {"critical": ["sms", "email"]}},
            )
            assert resp.status_code == 201, resp.text
            yield {"base": base, "api": api}


def _escalation(api: httpx.Client) -> Any:
    return api.get("/v1/categories/emergency").json()["escalation"]


def test_a_proposal_is_approved_by_a_second_person_in_the_console(service, browser, db_url) -> None:
    base, api = service["base"], service["api"]
    admin = new_page(browser, base)
    sign_in(admin, "admin@example.org")
    admin.get_by_role("link", name="Routing map").click()
    assert admin.locator("#no-proposals").is_visible()
    text = admin.get_by_label("Routing map (YAML)")
    wait_for(lambda: "emergency" in text.input_value())
    text.fill(text.input_value().replace("  escalation: null\n", ESCALATION, 1))
    admin.get_by_role("button", name="Validate and save").click()
    card = admin.locator(".map-proposal")
    card.wait_for()
    assert "categories[emergency].escalation: escalation rules added" in card.locator(".reasons").inner_text()
    diff = card.locator("pre.diff").inner_text()
    assert "~ categories[emergency] changed" in diff and 'escalation.steps.0.channel: (unset) -> "voice"' in diff
    assert card.get_by_role("button", name="Approve and apply").count() == 0  # the proposer cannot approve
    assert "You proposed this version" in card.inner_text()
    assert _escalation(api) is None  # nothing changed yet
    assert admin.errors == []

    approver = new_page(browser, base)
    sign_in(approver, "approver@example.org")
    approver.get_by_role("link", name="Approvals").click()
    notice = approver.locator("#map-proposals")
    assert "1 routing-map change waits for a second person" in notice.inner_text()
    notice.get_by_role("link", name="Routing map").click()
    approver.wait_for_url("**/console/routing*")
    assert approver.get_by_label("Routing map (YAML)").count() == 0  # approvers do not edit the map
    item = approver.locator(".map-proposal")
    assert 'escalation.threshold.group.emails: (unset) -> ["ops@example.org"]' in item.locator("pre.diff").inner_text()
    check_accessibility(approver, "routing-proposal")
    shoot(approver, "routing-proposal", write=False)  # 375 px: no horizontal scroll
    item.get_by_role("button", name="Approve and apply").click()
    wait_for(lambda: "is now the routing map" in item.locator(".approval-status").inner_text())
    assert _escalation(api)["steps"][0]["channel"] == "voice"
    assert approver.errors == []

    # another proposal (a wider escalation), rejected with a comment: nothing changes
    admin.goto("/console/routing")
    wait_for(lambda: "after_minutes: 10" in text.input_value())
    text.fill(text.input_value().replace("after_minutes: 10", "after_minutes: 1", 1))
    admin.get_by_role("button", name="Validate and save").click()
    admin.locator(".map-proposal").wait_for()
    approver.goto("/console/routing")
    item = approver.locator(".map-proposal")
    assert "step 1 comes sooner" in item.locator(".reasons").inner_text()
    item.get_by_role("button", name="Reject").click()
    assert "Say why" in item.locator(".error-box").inner_text()
    item.get_by_label("Reason for rejecting").fill("Ten minutes is enough.")
    item.get_by_role("button", name="Reject").click()
    wait_for(lambda: "Rejected" in item.locator(".approval-status").inner_text())
    assert _escalation(api)["steps"][0]["after_minutes"] == 10
    [latest] = api.get("/v1/routing-map/versions?limit=1").json()["items"]
    assert latest["state"] == "rejected" and latest["comment"] == "Ten minutes is enough."
