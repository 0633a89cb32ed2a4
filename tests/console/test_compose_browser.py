"""The compose screen in a real browser (issue 21): headless Debian Chromium driven by Playwright against a real
uvicorn server with its in-process worker, sending through the real SDKs to the fake provider server.

- a failed first submit writes nothing, keeps what was typed, and the re-submit goes out under the typed title;
- errors in plain words beside each field, an error summary that links to them, focus on the first one;
- the channel picker in the audience's words, with the providers only as detail;
- a question with its answers and escalation, an area with its recipient count;
- translation warnings only for the languages the audience reads, no jargon;
- the phone layout at 375 px (preview and summary above the button, 44 px targets, no sideways scroll), axe.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.console.test_browser_flow import check_accessibility, new_page, sign_in, submitted, wait_for
from tests.public.servers import run_service

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_only]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 800}
TITLE = "Chlorine leak at the water works"
MESSAGE = "A chlorine leak at the water works on Mill Road. Stay indoors and close your windows."
PHONES = ["+15550100001", "+15550100002"]


@contextmanager
def _started(db_url: str, tmp_path: Path, env: dict[str, str]) -> Iterator[Any]:
    """run_service, tried again when the server is slow to start (the box is shared by many test runs)."""
    for attempt in range(3):
        stack = ExitStack()
        try:
            base = stack.enter_context(run_service(db_url, tmp_path, **env))
        except RuntimeError as exc:
            stack.close()
            if "did not start" not in str(exc) or attempt == 2:
                raise
            continue
        with stack:
            yield base
        return


@pytest.fixture
def service(db_url: str, tmp_path: Path, fake_server: Any, make_user: Any, make_key: Any) -> Iterator[dict[str, Any]]:
    """The service with its worker and every adapter pointed at the fake; an author (editor), an approver, a
    category whose critical updates go out by SMS, e-mail and the banner, and English-reading subscribers."""
    fake_server.reset()
    make_user("author@example.org", "editor", name="Erin Author")
    make_user("approver@example.org", "approver", name="Alma Approver")
    env = fake_server.env() | {
        "WORKER_IN_PROCESS": "true",
        "WORKER_POLL_SECONDS": "0.05",
        "RETRY_BASE_SECONDS": "0.05",
        "RETRY_MAX_SECONDS": "0.2",
        "APPROVAL_SEVERITY": "critical",
        "LOGIN_RATE_LIMIT_IP": "1000/minute",
        "LOGIN_RATE_LIMIT_ACCOUNT": "1000/minute",
    }
    with _started(db_url, tmp_path, env) as base:
        admin = {"Authorization": f"Bearer {make_key('admin')}"}
        with httpx.Client(base_url=base, headers=admin, timeout=10) as api:
            resp = api.post(
                "/v1/categories",
                json={
                    "slug": "emergency",
                    "name": "Emergency",
                    "contact": {"phone": "+15551234567"},
                    "channels": {"critical": ["sms", "email", "banner", "webhook"], "major": ["sms", "x"]},
                },
            )
            assert resp.status_code == 201, resp.text
            ring = [[-74.0, 40.0], [-73.0, 40.0], [-73.0, 40.5], [-74.0, 40.5], [-74.0, 40.0]]
            area = {"type": "Feature", "properties": {"slug": "mill-road", "name": "Mill Road"}}
            area["geometry"] = {"type": "Polygon", "coordinates": [ring]}
            resp = api.post("/v1/areas/import", json={"type": "FeatureCollection", "features": [area]})
            assert resp.status_code == 200, resp.text
            for i, phone in enumerate(PHONES):
                body = {"phone": phone, "email": f"r{i}@example.org", "categories": ["emergency"], "locale": "en"}
                if i == 0:  # only the first one lives on Mill Road
                    body |= {"lat": 40.2, "lon": -73.5}
                assert api.post("/v1/subscribers", json=body).status_code == 201
        yield {"base": base, "admin": admin, "fake": fake_server}


def _emails(fake: Any) -> list[str]:
    """The subjects of the e-mails the fake SendGrid accepted."""
    out = []
    for r in fake.requests("sendgrid"):
        if r.method == "POST" and r.path.endswith("/mail/send") and r.accepted:
            body = r.json
            out += [p.get("subject") or body.get("subject") for p in body["personalizations"]]
    return out


def _sms(fake: Any) -> list[str]:
    """The texts of the SMS the fake Twilio accepted."""
    return [
        r.form_value("Body") or "" for r in fake.requests("twilio") if r.path.endswith("/Messages.json") and r.accepted
    ]


def _incident_titles(base: str, admin: dict[str, str]) -> list[str]:
    with httpx.Client(base_url=base, headers=admin, timeout=10) as api:
        resp = api.get("/v1/incidents", params={"limit": 100})
        assert resp.status_code == 200, resp.text
        return [i["title"] for i in resp.json()["items"]]


def test_failed_first_submit_writes_nothing_and_resubmit_uses_the_typed_title(service, browser, db_url) -> None:
    base, fake = service["base"], service["fake"]
    author = new_page(browser, base)
    sign_in(author, "author@example.org")
    author.get_by_role("link", name="Compose").click()
    author.get_by_label("Category").select_option("emergency")
    author.get_by_label("Severity").select_option("critical")

    # 1. "Request approval" on the empty form: errors in plain words, focus on the first, nothing written
    publish = author.locator("#publish")
    wait_for(lambda: publish.inner_text() == "Request approval")
    publish.click()
    summary = author.locator("#form-error")
    summary.wait_for()
    assert summary.get_attribute("role") == "alert"
    text = summary.inner_text()
    assert "Write a title for the incident" in text and "Write the message" in text
    assert "String should have" not in text and "field:" not in text
    title = author.get_by_label("Incident title")
    assert author.evaluate("document.activeElement.id") == "title"
    assert title.get_attribute("aria-invalid") == "true"
    described = (title.get_attribute("aria-describedby") or "").split()
    assert author.locator(f"#{described[0]}").inner_text() == "Write a title for the incident"
    body = author.get_by_label("Message", exact=True)
    assert body.get_attribute("aria-invalid") == "true"
    assert "Nothing was sent or saved" in author.locator("#action-error").inner_text()
    # the summary links to each field
    links = summary.locator("a")
    assert links.count() == 2
    links.nth(1).click()
    assert author.evaluate("document.activeElement.id") == "body"
    assert _incident_titles(base, service["admin"]) == []

    # 2. type the title and the message, request approval again: the typed title is used
    title.fill(TITLE)
    body.fill(MESSAGE)
    author.locator('.preview-card[data-channel="sms"]').wait_for()
    publish.click()
    submitted(author, "**/console/incidents/*")
    assert _incident_titles(base, service["admin"]) == [TITLE]
    assert TITLE in author.locator("h1").inner_text()

    # 3. another person, an approver, approves: every channel carries the typed title
    approver = new_page(browser, base)
    sign_in(approver, "approver@example.org")
    approver.goto("/console/approvals")
    item = approver.locator(".approval").first
    approve = item.get_by_role("button", name="Approve and send")
    item.locator(".confirm-input").fill(TITLE)  # a critical send: the approver types the incident's title
    wait_for(lambda: approve.is_enabled())
    approve.click()
    approver.wait_for_url("**/console/broadcasts/*")
    wait_for(lambda: approver.locator("#state").inner_text() == "done", timeout=60)
    subjects = _emails(fake)
    assert len(subjects) == len(PHONES), subjects
    assert all(TITLE in s for s in subjects), subjects
    texts = _sms(fake)
    assert len(texts) == len(PHONES), texts
    assert all("Untitled" not in t for t in texts)
    assert "Untitled incident" not in _incident_titles(base, service["admin"])
    assert not author.errors, author.errors
    assert not approver.errors, approver.errors


def _compose(page: Any, severity: str = "critical") -> None:
    page.get_by_role("link", name="Compose").click()
    page.get_by_label("Category").select_option("emergency")
    page.get_by_label("Severity").select_option(severity)


def test_channel_picker_in_the_audiences_words(service, browser) -> None:
    base = service["base"]
    author = new_page(browser, base)
    sign_in(author, "author@example.org")
    _compose(author)
    picker = author.locator("#channels")
    labels = picker.locator("label").all_inner_texts()
    for words in (
        "All channels",
        "Text message",
        "Voice call",
        "E-mail",
        "Social media",
        "Website banner and status page",
    ):
        assert any(t.startswith(words) for t in labels), labels
    assert any(t.startswith("Webhooks") for t in labels), labels
    assert not any(p in " ".join(labels) for p in ("twilio", "sendgrid", "mastodon")), labels  # providers: detail
    checked = author.locator("#channels input.group:checked")
    wait_for(
        lambda: sorted(checked.evaluate_all("els => els.map(e => e.value)")) == ["banner", "email", "sms", "webhook"]
    )
    assert author.locator("#ch-all").evaluate("e => e.indeterminate") is True
    detail = author.locator("#ch-sms-detail")
    assert "twilio-sms" in detail.text_content()
    assert not detail.is_visible()  # inside a closed <details>
    author.locator("#ch-sms").locator("xpath=../..").locator("summary").click()
    assert detail.is_visible()

    # "All channels" ticks every channel that is set up; "Reset to the channel plan" goes back
    author.get_by_label("All channels").check()
    assert author.locator("#ch-social").is_checked() and author.locator("#ch-voice").is_checked()
    author.get_by_role("button", name="Reset to the channel plan").click()
    wait_for(
        lambda: sorted(checked.evaluate_all("els => els.map(e => e.value)")) == ["banner", "email", "sms", "webhook"]
    )

    # a plan that names a provider keeps it (shown as detail), and the API gets the plan's names
    author.get_by_label("Severity").select_option("major")
    wait_for(lambda: sorted(checked.evaluate_all("els => els.map(e => e.value)")) == ["sms", "social"])
    assert "only through x" in author.locator("#ch-social-detail").text_content()
    author.get_by_label("Incident title").fill("Picker check")
    author.get_by_label("Message", exact=True).fill("Checking the channel picker.")
    author.locator("#ch-sms").uncheck()
    author.get_by_role("button", name="Save draft").click()
    submitted(author, "**/console/incidents/*")
    with httpx.Client(base_url=base, headers=service["admin"], timeout=10) as api:
        [incident] = api.get("/v1/incidents").json()["items"]
        [update] = api.get(f"/v1/incidents/{incident['id']}/updates").json()
    assert update["channels"] == ["x"]
    assert not author.errors, author.errors


def test_question_and_area(service, browser) -> None:
    base = service["base"]
    author = new_page(browser, base)
    sign_in(author, "author@example.org")
    _compose(author)
    author.get_by_label("Incident title").fill("Gas smell on Mill Road")
    author.get_by_label("Message", exact=True).fill("A gas smell was reported on Mill Road.")
    author.get_by_label("Ask people to answer").check()
    assert author.get_by_label("Question", exact=True).input_value() == "Are you safe?"
    assert author.locator(".option-row .q-label").evaluate_all("els => els.map(e => e.value)") == [
        "I'm safe",
        "I need help",
    ]
    author.get_by_label("If someone does not answer").select_option("voice15")
    sms = author.locator('.preview-card[data-channel="sms"]')
    wait_for(lambda: "replying 1 or 2" in sms.inner_text())
    email = author.locator('.preview-card[data-channel="email"] .how-to-answer')
    wait_for(lambda: email.count() == 1 and "I'm safe / I need help" in email.inner_text())
    assert "Are you safe?" in sms.locator("pre").inner_text()

    author.get_by_label("Area", exact=True).select_option("mill-road")
    count = author.locator("#area-count")
    wait_for(lambda: count.inner_text().startswith("1 subscriber lives in this area"))
    wait_for(lambda: author.locator("#audience-sizes tr").first.locator("td").first.inner_text() == "1")

    # an empty answer is an error in plain words beside it
    author.locator(".option-row .q-label").nth(1).fill("")
    author.get_by_role("button", name="Save draft").click()
    assert author.locator("#form-error").inner_text().count("Write what this answer means") == 1
    assert author.evaluate("document.activeElement.className") == "q-label"
    author.locator(".option-row .q-label").nth(1).fill("I need help")
    author.get_by_role("button", name="Save draft").click()
    submitted(author, "**/console/incidents/*")
    with httpx.Client(base_url=base, headers=service["admin"], timeout=10) as api:
        [incident] = api.get("/v1/incidents").json()["items"]
        [update] = api.get(f"/v1/incidents/{incident['id']}/updates").json()
    assert update["area"]["areas"] == ["mill-road"]
    assert [o["label"] for o in update["question"]["options"]] == ["I'm safe", "I need help"]
    assert update["question"]["escalation"]["steps"][0]["channel"] == "voice"
    assert not author.errors, author.errors


def test_phone_layout_touch_targets_and_accessibility(service, browser, db_url) -> None:
    """At 375 px: the preview and the send summary come before the button, every button and checkbox is at
    least 44 x 44 px, nothing scrolls sideways; axe finds no serious or critical violation at 1280 or 375 px."""
    base = service["base"]
    author = new_page(browser, base, viewport=PHONE)
    sign_in(author, "author@example.org")
    _compose(author)
    author.get_by_label("Incident title").fill(TITLE)
    author.get_by_label("Message", exact=True).fill(MESSAGE)
    author.get_by_label("Ask people to answer").check()
    author.get_by_role("button", name="Add link").click()
    author.get_by_label("Link title").fill("Advice")
    author.locator('.preview-card[data-channel="sms"]').wait_for()
    summary = author.locator("#send-line")
    wait_for(lambda: summary.inner_text().startswith("Goes to up to 2 people by Text message (2), E-mail (2)"))
    assert "Website banner and status page" in summary.inner_text()

    # no jargon and no warnings about languages nobody in the audience reads
    text = author.locator("main").inner_text()
    for jargon in ("ETag", "version hash", "routing map", "segments/s"):
        assert jargon not in text, jargon
    assert "translation" not in author.locator("#preview-warnings").inner_text()

    publish = author.locator("#publish").bounding_box()
    for locator in ("#preview", "#send-line", "#send-summary"):
        assert author.locator(locator).bounding_box()["y"] < publish["y"], locator
    small = author.evaluate(
        """() => Array.from(document.querySelectorAll('#main button, #main input[type=checkbox]'))
            .filter(e => e.offsetParent !== null)
            .map(e => [e.id || e.className || e.textContent, e.getBoundingClientRect()])
            .filter(([, r]) => r.width < 44 || r.height < 44)
            .map(([n, r]) => n + ' ' + Math.round(r.width) + 'x' + Math.round(r.height))"""
    )
    assert small == [], small
    assert author.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")
    check_accessibility(author, "compose at 375 px")
    write = db_url.startswith("sqlite")
    if write:  # the end of the preview, the send summary and the buttons
        author.evaluate("document.querySelector('.send-actions').scrollIntoView({block: 'end'})")
        author.screenshot(path=str(SCREENSHOTS / "compose-phone.png"))
    author.set_viewport_size(DESKTOP)
    author.wait_for_timeout(150)  # let the layout settle after the resize (not an assertion on timing)
    check_accessibility(author, "compose at 1280 px")
    if write:
        author.evaluate("window.scrollTo(0, 0)")
        author.screenshot(path=str(SCREENSHOTS / "compose-desktop.png"))
    assert not author.errors, author.errors
