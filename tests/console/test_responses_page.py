"""The console's responses page (issue 12): live tallies of an update's question for the response team.

Server-rendered checks (counts, needs-help people first with their contact details, 404s, who may close), and
the page in a real headless Chromium against a real uvicorn server: answers posted through the signed Twilio
inbound webhook appear on the open page as they arrive (server-sent events), and Close question closes it.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from tests.console.test_browser_flow import check_accessibility, new_page, shoot, sign_in
from tests.delivery.conftest import add_subscribers, memory, publish  # noqa: F401  (fixtures reused)
from tests.public.servers import run_service
from tests.public.servers import wait_for as _wait_for
from tests.twoway.conftest import QUESTION

TOKEN = "console-responses-token"  # noqa: S105 (the Twilio auth token of this test)


@pytest.fixture
def asked(db_url, memory, add_subscribers, publish, emergency_category, monkeypatch) -> int:  # noqa: F811
    """Three people asked "Are you safe?" (the broadcast planned); returns the update id."""
    from sqlalchemy import select

    from broadcaster.db import session_scope
    from broadcaster.delivery import planner
    from broadcaster.models.delivery import Broadcast

    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    add_subscribers(3, name="Ann")
    out = publish(channels=["memory"], question=QUESTION)
    with session_scope() as session:
        assert planner.plan_next(session) == out["broadcast_id"]
        return int(session.scalar(select(Broadcast.update_id).where(Broadcast.id == out["broadcast_id"])) or 0)


def answer(phone: str, body: str) -> None:
    from broadcaster.db import session_scope
    from broadcaster.responses.service import record_answer

    with session_scope() as session:
        record_answer(session, channel="sms", body=body, address=phone)


def test_the_page_lists_tallies_and_needs_help_people_first(signed_in, asked) -> None:
    answer("+15550000001", "1")
    answer("+15550000002", "2 need help")
    answer("+15550000003", "maybe later")
    editor = signed_in("editor")
    page = editor.get(f"/console/updates/{asked}/responses")
    assert page.status_code == 200, page.text
    html = page.text
    assert "<h1>Are you safe?</h1>" in html
    assert '<span id="answered">2</span> of <span id="recipients">3</span>' in html
    assert '<td class="count" id="no-answer-count">1</td>' in html
    assert '<span id="unrecognised-count">1</span>' in html
    people = html.split('id="people-rows">', 1)[1].split("</tbody>", 1)[0]
    assert people.index("+15550000002") < people.index("+15550000001")  # needs help first
    assert 'href="tel:+15550000002"' in people and 'class="needs-help"' in people
    assert "<q>maybe later</q>" in html
    assert f'href="/v1/updates/{asked}/responses.csv"' in html
    assert 'id="close-question"' not in html  # an editor cannot close (publish scope)
    approver = signed_in("approver")
    assert 'id="close-question"' in approver.get(f"/console/updates/{asked}/responses").text


def test_the_page_is_found_only_for_a_question(signed_in, client, admin, emergency_category) -> None:
    editor = signed_in("editor")
    inc = client.post(
        "/v1/incidents",
        headers=admin,
        json={"title": "Outage", "category": "emergency", "severity": "minor", "update": {"body": "Down."}},
    ).json()
    plain = inc["updates"][0]["id"]
    assert editor.get(f"/console/updates/{plain}/responses").status_code == 404  # asks nothing
    assert editor.get("/console/updates/424242/responses").status_code == 404
    assert editor.get(f"/console/updates/{2**63}/responses").status_code == 404
    assert client.get(f"/console/updates/{plain}/responses", follow_redirects=False).status_code in (302, 303, 401)


@pytest.mark.browser
def test_answers_appear_live_and_the_question_closes(
    db_url, asked, make_user, browser, tmp_path: Path, client, admin
) -> None:
    from twilio.request_validator import RequestValidator

    make_user("approver@example.org", "approver", name="Alma Approver")
    incident_id = client.get("/v1/incidents?limit=1", headers=admin).json()["items"][0]["id"]
    with run_service(db_url, tmp_path, TWILIO_AUTH_TOKEN=TOKEN, MEMORY_ADAPTER_ENABLED="true") as base:

        def sms(phone: str, body: str, sid: str) -> None:
            url = f"{base}/v1/webhooks/twilio/inbound"
            params = {"From": phone, "To": "+15005550006", "Body": body, "MessageSid": sid}
            headers = {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(url, params)}
            resp = httpx.post(url, data=params, headers=headers, timeout=10)
            assert resp.status_code == 200, resp.text

        page = new_page(browser, base)
        sign_in(page, "approver@example.org")
        page.goto(f"/console/incidents/{incident_id}")
        page.locator(f"#responses-{asked}").click()
        page.wait_for_url(f"**/console/updates/{asked}/responses")
        assert page.locator("#answered").inner_text() == "0"
        page.locator("#stream-state", has_text="live").wait_for()

        sms("+15550000001", "1", "SMconsole1")
        sms("+15550000002", "SOS", "SMconsole2")
        _wait_for(lambda: page.locator("#answered").inner_text() == "2", timeout=30)
        rows = page.locator("#people-rows tr")
        assert rows.count() == 2
        first = rows.nth(0)
        assert "needs-help" in (first.get_attribute("class") or "")
        assert first.locator('a[href="tel:+15550000002"]').count() == 1
        assert page.locator('#option-rows tr[data-option="2"] .count').inner_text() == "1"
        assert page.locator("#no-answer-count").inner_text() == "1"
        check_accessibility(page, "responses")
        shoot(page, "responses", write=db_url.startswith("sqlite"))

        page.on("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Close question").click()
        page.locator("#q-state", has_text="closed").wait_for()
        page.locator("#stream-state", has_text="question closed").wait_for()
        assert page.locator("#close-question").is_hidden()
        sms("+15550000003", "1", "SMconsole3")  # a late answer: stored, counted nowhere
        page.reload()
        assert page.locator("#answered").inner_text() == "2" and page.locator("#q-state").inner_text() == "closed"
        assert not page.errors, page.errors  # type: ignore[attr-defined]
