"""A change to a live critical incident in a real browser (headless Chromium, Playwright, a uvicorn server): an
editor's PATCH waits as a change request; an approver sees the diff on the incident page and approves it (the
banner changes then), or rejects the next one with a comment (the banner stays). No page error, no serious
accessibility violation. Lighter than test_browser_flow.py: no worker, no screenshots."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.approving import confirm
from tests.console.test_browser_flow import check_accessibility, new_page, sign_in, wait_for
from tests.public.servers import run_service

pytestmark = pytest.mark.browser

APPROVER = "approver@example.org"


@pytest.fixture
def scene(db_url: str, tmp_path: Path, make_user: Any, make_key: Any) -> Iterator[dict[str, Any]]:
    """The service, an approver who can sign in, and a live critical incident (approved by a second key)."""
    make_user(APPROVER, "approver", name="Alma Approver")
    with run_service(db_url, tmp_path, APPROVAL_SEVERITY="critical") as base:
        admin = {"Authorization": f"Bearer {make_key('admin', name='admin')}"}
        second = {"Authorization": f"Bearer {make_key('read', 'publish', name='second')}"}
        editor = {"Authorization": f"Bearer {make_key('read', 'write', name='editor')}"}
        with httpx.Client(base_url=base, timeout=10) as api:
            category = {"slug": "emergency", "name": "Emergency", "channels": {"critical": ["banner"]}}
            assert api.post("/v1/categories", headers=admin, json=category).status_code == 201
            body = {"title": "Gas leak", "category": "emergency", "severity": "critical", "update": {"body": "Leave."}}
            incident = api.post("/v1/incidents", headers=admin, json=body).json()
            uid = incident["updates"][0]["id"]
            asked = api.post(f"/v1/updates/{uid}/publish", headers=admin)
            approved = api.post(
                f"/v1/updates/{uid}/approve", json=confirm(uid), headers={**second, "If-Match": asked.headers["ETag"]}
            )
            assert approved.status_code == 200, approved.text
            yield {"base": base, "api": api, "editor": editor, "iid": incident["id"]}


def banner_titles(api: httpx.Client) -> list[str]:
    return [b["title"] for b in api.get("/v1/banner").json()["banners"]]


def test_an_approver_approves_or_rejects_a_change_on_the_incident_page(scene, browser) -> None:
    api, iid = scene["api"], scene["iid"]
    asked = api.patch(f"/v1/incidents/{iid}", headers=scene["editor"], json={"title": "EVACUATE Harbour Street"})
    assert asked.status_code == 202, asked.text
    assert banner_titles(api) == ["Gas leak"]

    page = new_page(browser, scene["base"])
    sign_in(page, APPROVER)
    page.goto(f"/console/incidents/{iid}")
    box = page.locator(f"#change-{asked.json()['id']}")
    assert box.locator('tr[data-field="title"] del').inner_text() == "Gas leak"
    assert box.locator('tr[data-field="title"] ins').inner_text() == "EVACUATE Harbour Street"
    check_accessibility(page, "incident with a pending change")
    box.get_by_role("button", name="Approve change").click()
    wait_for(lambda: page.locator("h1").inner_text() == "EVACUATE Harbour Street")
    assert page.locator(".change-request").count() == 0
    wait_for(lambda: banner_titles(api) == ["EVACUATE Harbour Street"])

    again = api.patch(f"/v1/incidents/{iid}", headers=scene["editor"], json={"severity": "minor"})
    assert again.status_code == 202, again.text
    page.reload()
    box = page.locator(f"#change-{again.json()['id']}")
    box.get_by_role("button", name="Reject change").click()
    assert "Say why" in box.locator(".error-box").inner_text()  # a comment is required
    box.get_by_label("Reason for rejecting").fill("Still critical: the leak is not contained.")
    box.get_by_role("button", name="Reject change").click()
    wait_for(lambda: page.locator(".change-closed").count() == 1)
    assert "Still critical: the leak is not contained." in page.locator(".change-closed").inner_text()
    assert (
        api.get(f"/v1/incidents/{iid}/change-requests/{again.json()['id']}", headers=scene["editor"]).json()["state"]
        == "rejected"
    )
    assert banner_titles(api) == ["EVACUATE Harbour Street"]
    assert page.errors == []  # type: ignore[attr-defined]
