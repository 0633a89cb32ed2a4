"""The send summary and the send hold in a real browser (issue 21): an approver sees the totals per channel before
"Approve and send", must type the title of a critical incident before the button enables, approves, sees the
countdown on the broadcast page and presses Stop; the fake provider server receives no message of it (while the
worker, still running, sends a later test send). Screenshots: send-summary-* and hold-stop-* at 1280 and 375 px."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.console.test_browser_flow import (
    DESKTOP,
    PHONE,
    SCREENSHOTS,
    check_accessibility,
    new_page,
    shoot,
    sign_in,
    wait_for,
)

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_only]

TITLE = "Chlorine leak at the water works"
PHONES = ["+15550200001", "+15550200002", "+15550200003"]
TEST_PHONE = "+15550209999"


@pytest.fixture
def service(db_url: str, tmp_path: Path, fake_server: Any, make_user: Any, make_key: Any) -> Iterator[dict[str, Any]]:
    """The service with its worker and a long send hold (Stop always comes first; the test ends the hold itself)."""
    from tests.public.servers import run_service

    fake_server.reset()
    make_user("approver@example.org", "approver", name="Alma Approver")
    make_user("both@example.org", "editor", "approver", name="Bo Both")
    env = fake_server.env() | {
        "WORKER_IN_PROCESS": "true",
        "WORKER_POLL_SECONDS": "0.05",
        "APPROVAL_SEVERITY": "critical",
        "SEND_HOLD_SECONDS": "3600",
        "LOGIN_RATE_LIMIT_IP": "1000/minute",
        "LOGIN_RATE_LIMIT_ACCOUNT": "1000/minute",
    }
    with run_service(db_url, tmp_path, **env) as base:
        admin = {"Authorization": f"Bearer {make_key('admin', name='requester')}"}
        with httpx.Client(base_url=base, headers=admin, timeout=10) as api:
            category = {
                "slug": "emergency",
                "name": "Emergency",
                "contact": {"phone": "+15551234567"},
                "channels": {"critical": ["sms", "email", "banner"], "major": ["sms"]},
            }
            assert api.post("/v1/categories", json=category).status_code == 201
            for i, phone in enumerate(PHONES):
                body = {"phone": phone, "email": f"p{i}@example.org", "categories": ["emergency"]}
                assert api.post("/v1/subscribers", json=body).status_code == 201
            tester = {"phone": TEST_PHONE, "categories": ["emergency"], "test_group": True}
            assert api.post("/v1/subscribers", json=tester).status_code == 201
            incident = api.post("/v1/incidents", json={"title": TITLE, "category": "emergency", "severity": "critical"})
            assert incident.status_code == 201, incident.text
            update = api.post(
                f"/v1/incidents/{incident.json()['id']}/updates",
                json={"body": "Chlorine gas near the water works. Stay indoors, close windows.", "summary": "Stay in"},
            )
            asked = api.post(f"/v1/updates/{update.json()['id']}/publish")
            assert asked.status_code == 202, asked.text
            yield {"base": base, "admin": admin, "fake": fake_server, "incident_id": incident.json()["id"]}


def messages(fake: Any) -> list[str]:
    """Every text and e-mail the fake provider server accepted, as `sms:<to>` / `email:<to>`."""
    out = [f"sms:{r.form_value('To')}" for r in fake.requests("twilio") if r.path.endswith("/Messages.json")]
    for r in fake.requests("sendgrid"):
        if r.method == "POST" and r.path.endswith("/mail/send"):
            out += [f"email:{to['email']}" for p in r.json["personalizations"] for to in p["to"]]
    return out


def shoot_at(page: Any, locator: Any, name: str, *, write: bool) -> None:
    """`shoot` (1280 and 375 px, no sideways scroll on the phone) with `locator` scrolled into view each time."""
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.wait_for_timeout(150)  # layout settles after the resize (not a timing assertion)
        locator.evaluate("e => e.scrollIntoView({block: 'start'})")
        if label == "phone":
            assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0, name
        if write:
            page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"))
    page.set_viewport_size(DESKTOP)


def _box(locator: Any) -> dict[str, float]:
    box = locator.bounding_box()
    assert box is not None
    return box


def test_summary_confirm_countdown_and_stop_send_nothing(service, browser, db_url) -> None:
    base, fake = service["base"], service["fake"]
    write = db_url.startswith("sqlite")
    page = new_page(browser, base)
    sign_in(page, "approver@example.org")
    page.get_by_role("link", name="Approvals", exact=True).click()
    item = page.locator(".approval").first
    summary = item.locator(".send-summary")
    summary.wait_for()

    # the totals per channel, the audience in words, the approver, the hold
    # (the test group's phone is a subscriber of the category too: 4 phones, 3 e-mail addresses)
    assert item.locator('.summary-table tr[data-channel="sms"] .people').inner_text() == "4"
    assert item.locator('.summary-table tr[data-channel="sms"] .messages').inner_text() == "4 texts"
    assert item.locator('.summary-table tr[data-channel="email"] .messages').inner_text() == "3 e-mails"
    assert item.locator('.summary-table tr[data-channel="banner"] .messages').inner_text() == "1 banner"
    assert summary.locator(".summary-total").inner_text() == "This sends 8 messages to up to 4 people."
    assert "Subscribers of emergency" in summary.locator(".summary-audience").inner_text()
    assert summary.locator(".summary-approver").inner_text() == "you (Alma Approver)"
    assert "3600 seconds" in summary.locator(".summary-hold").inner_text()

    # critical: the button enables only once the title is typed
    approve = item.get_by_role("button", name="Approve and send")
    confirm = item.get_by_label("type the incident's title")
    assert not approve.is_enabled()
    confirm.fill("Chlorine leak")
    assert not approve.is_enabled()
    confirm.fill(TITLE.upper())
    wait_for(lambda: approve.is_enabled())
    check_accessibility(page, "send summary")
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(150)  # layout settles after the resize (not a timing assertion)
    assert _box(summary)["y"] + _box(summary)["height"] <= _box(approve)["y"]  # the summary comes first
    assert _box(approve)["height"] >= 44 and _box(approve)["width"] >= 44
    assert _box(confirm)["height"] >= 44
    page.set_viewport_size(DESKTOP)
    shoot_at(page, summary, "send-summary", write=write)

    # approve: the broadcast page counts down and offers Stop
    approve.click()
    page.wait_for_url("**/console/broadcasts/*")
    broadcast_id = page.url.rstrip("/").split("/")[-1]
    countdown = page.locator("#hold-countdown")
    assert countdown.inner_text().startswith("Sending starts in")
    stop = page.get_by_role("button", name="Stop — send nothing")
    assert _box(stop)["height"] >= 44 and _box(stop)["width"] >= 44
    check_accessibility(page, "send hold")
    shoot(page, "hold-stop", write=write)
    stop.click()
    wait_for(lambda: countdown.inner_text() == "Stopped: nothing was sent.")
    assert page.locator("#state").inner_text() == "cancelled"

    # the hold runs out (moved into the past here); the worker still runs and sends a later test send, but
    # nothing of the stopped broadcast reaches the provider
    from sqlalchemy import create_engine, update

    from broadcaster.models import utcnow
    from broadcaster.models.delivery import Broadcast

    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(update(Broadcast).where(Broadcast.id == int(broadcast_id)).values(not_before=utcnow()))
    engine.dispose()
    with httpx.Client(base_url=base, headers=service["admin"], timeout=10) as api:
        drill = api.post(
            f"/v1/incidents/{service['incident_id']}/updates",
            json={"body": "Drill.", "test": True, "channels": ["sms"]},
        )
        assert api.post(f"/v1/updates/{drill.json()['id']}/publish").status_code == 200
        wait_for(lambda: messages(fake) == [f"sms:{TEST_PHONE}"], timeout=60)
        report = api.get(f"/v1/broadcasts/{broadcast_id}").json()
    assert report["state"] == "cancelled" and report["total"] == 0
    assert messages(fake) == [f"sms:{TEST_PHONE}"]  # the test send only: 0 messages of the stopped broadcast
    assert not page.errors, page.errors


def test_compose_shows_the_summary_before_a_direct_publish_and_stop_works_there_too(service, browser) -> None:
    """A major update (below APPROVAL_SEVERITY) is published by its author alone: the summary comes before Publish,
    no title to type; the broadcast page counts down and Stop sends nothing."""
    base, fake = service["base"], service["fake"]
    page = new_page(browser, base)
    sign_in(page, "both@example.org")
    page.get_by_role("link", name="Compose").click()
    page.get_by_label("Incident title").fill("Low water pressure")
    page.get_by_label("Category").select_option("emergency")
    page.get_by_label("Severity").select_option("major")
    page.get_by_label("Message", exact=True).fill("Low water pressure in the north district until 18:00.")
    summary = page.locator("#send-summary .send-summary")
    summary.wait_for()
    publish = page.locator("#publish")
    assert publish.inner_text() == "Publish"
    wait_for(lambda: page.locator('#send-summary tr[data-channel="sms"] .messages').inner_text() == "4 texts")
    assert page.locator("#send-summary .confirm-input").count() == 0  # not critical: nothing to type
    assert "Approved by" in summary.inner_text() and "no second person" in summary.inner_text()
    assert _box(summary)["y"] + _box(summary)["height"] <= _box(publish)["y"]
    assert publish.is_enabled()
    publish.click()
    page.wait_for_url("**/console/broadcasts/*")
    page.get_by_role("button", name="Stop — send nothing").click()
    wait_for(lambda: page.locator("#hold-countdown").inner_text() == "Stopped: nothing was sent.")
    assert messages(fake) == []
    assert not page.errors, page.errors
