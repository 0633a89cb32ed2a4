"""Issue 21: answering "I need help" by e-mail, in headless Chromium against the real service (uvicorn, in-process
worker) and the fake provider. The update asks "Are you safe?"; the e-mail the fake SendGrid received carries
the answer buttons; the resident opens the "I need help" link, presses the confirm button and the answer is
counted. Also when the browser sends `Origin: null` (a no-referrer policy): accepted with the page's signed form
token, refused with a plain-language page (nothing counted) without it."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.delivery.conftest import add_subscribers  # noqa: F401  (fixture)
from tests.provider_env import UNLIMITED_RATES
from tests.public.servers import run_service

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_only]
SECRET = "answer-browser-secret-key-0123456789"  # noqa: S105 (a test key)
QUESTION = {
    "text": "Are you safe?",
    "options": [{"label": "I'm safe", "keywords": ["SAFE"]}, {"label": "I need help", "needs_help": True}],
}


@pytest.fixture
def service(db_url: str, tmp_path: Path, fake, monkeypatch) -> Iterator[str]:
    from broadcaster.settings import get_settings

    monkeypatch.setenv("SECRET_KEY", SECRET)
    get_settings.cache_clear()
    env = {
        **fake.env(webhook=False),
        **UNLIMITED_RATES,
        "SECRET_KEY": SECRET,
        "WORKER_IN_PROCESS": "true",
        "WORKER_POLL_SECONDS": "0.05",
        "APPROVAL_SEVERITY": "none",
    }
    with run_service(db_url, tmp_path, **env) as base:
        yield base


def _wait(predicate: Callable[[], Any], what: str, seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _answer_links(fake: Any, email: str) -> dict[str, str]:
    """label -> link, read from the HTML body of the e-mail the fake SendGrid received for `email` (each
    `-answer_url_<key>-` placeholder replaced by the recipient's substitution, as SendGrid does)."""
    for r in fake.requests("sendgrid"):
        if r.method != "POST" or not r.path.endswith("/mail/send"):
            continue
        html = next((c["value"] for c in r.json.get("content", []) if c["type"] == "text/html"), "")
        for p in r.json["personalizations"]:
            if p["to"][0]["email"] != email:
                continue
            out = {}
            for href, label in re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', html):
                for placeholder, value in (p.get("substitutions") or {}).items():
                    href = href.replace(placeholder, value)
                out[label.replace("&#39;", "'")] = href
            return out
    return {}


def _need_help_count(base: str, key: str, update_id: int) -> int:
    resp = httpx.get(f"{base}/v1/updates/{update_id}/responses", headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 200, resp.text
    return sum(sum(o["by_channel"].values()) for o in resp.json()["options"] if o["label"] == "I need help")


def _category(base: str, key: str) -> None:
    who = {"Authorization": f"Bearer {key}"}
    cat = httpx.post(
        f"{base}/v1/categories",
        headers=who,
        json={
            "slug": "emergency",
            "name": "Emergency",
            "contact": {"phone": "+15551234567"},
            "channels": {"major": ["email", "banner"]},
        },
    )
    assert cat.status_code == 201, cat.text


def _ask(base: str, key: str) -> int:
    who = {"Authorization": f"Bearer {key}"}
    inc = httpx.post(
        f"{base}/v1/incidents", headers=who, json={"title": "Flooding", "category": "emergency", "severity": "major"}
    )
    assert inc.status_code == 201, inc.text
    upd = httpx.post(
        f"{base}/v1/incidents/{inc.json()['id']}/updates",
        headers=who,
        json={"body": "Flooding in the north district.", "channels": ["sendgrid"], "question": QUESTION},
    )
    assert upd.status_code == 201, upd.text
    uid = int(upd.json()["id"])
    published = httpx.post(f"{base}/v1/updates/{uid}/publish", headers=who)
    assert published.status_code == 200, published.text
    return uid


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_answer_i_need_help_by_email_in_chromium(browser, service, fake, make_key, add_subscribers):  # noqa: F811
    key = make_key("admin")
    emails = ["ann@example.org", "bob@example.org", "cy@example.org"]
    _category(service, key)
    for email in emails:
        add_subscribers(1, categories=["emergency"], email=email, phone=None)
    uid = _ask(service, key)
    links = {e: _wait(lambda e=e: _answer_links(fake, e), f"the e-mail to {e}") for e in emails}
    assert {"I'm safe", "I need help"} <= set(links["ann@example.org"])
    assert links["ann@example.org"]["I need help"].startswith(service + "/v1/answer?token=")

    context = browser.new_context(viewport={"width": 375, "height": 800})
    page = context.new_page()
    response = page.goto(links["ann@example.org"]["I need help"])
    assert response is not None and response.status == 200
    assert response.headers["referrer-policy"] == "same-origin"
    assert page.locator("h1").inner_text() == "Confirm your answer"
    assert page.get_by_text("Your answer: I need help").is_visible()
    assert _need_help_count(service, key, uid) == 0  # opening the link records nothing
    with page.expect_navigation():
        page.get_by_role("button", name="Send my answer: I need help").click()
    assert page.locator("h1").inner_text() == "Thank you"
    assert "I need help" in page.locator("main").inner_text()
    assert _need_help_count(service, key, uid) == 1

    # the page as the defect had it (Referrer-Policy: no-referrer): Chromium posts the form with `Origin: null`,
    # which the page's signed form token lets through
    posted_origins: list[str | None] = []
    page.on("request", lambda r: posted_origins.append(r.headers.get("origin")) if r.method == "POST" else None)

    def no_referrer(route: Any, strip_token: bool) -> None:
        if route.request.method != "GET":
            route.continue_()
            return
        original = route.fetch()
        body = original.text().replace('<meta name="referrer" content="same-origin">', "")
        if strip_token:
            body = re.sub(r'<input type="hidden" name="form_token" value="[^"]*">', "", body)
        headers = {**original.headers, "referrer-policy": "no-referrer"}
        route.fulfill(status=original.status, headers=headers, body=body)

    page.route("**/v1/answer?*", lambda route: no_referrer(route, strip_token=False))
    page.goto(links["bob@example.org"]["I need help"])
    with page.expect_navigation():
        page.get_by_role("button", name="Send my answer: I need help").click()
    assert posted_origins[-1] == "null"
    assert page.locator("h1").inner_text() == "Thank you"
    assert _need_help_count(service, key, uid) == 2

    # ... and without a valid form token the post is refused with a plain-language page, nothing counted
    page.unroute("**/v1/answer?*")
    page.route("**/v1/answer?*", lambda route: no_referrer(route, strip_token=True))
    page.goto(links["cy@example.org"]["I need help"])
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Send my answer: I need help").click()
    assert posted.value.status == 403 and posted_origins[-1] == "null"
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Please press the button again"
    assert page.get_by_role("alert").is_visible()
    assert _need_help_count(service, key, uid) == 2
    # a named foreign origin is refused by the origin check, also with a styled page
    refused = httpx.post(
        links["cy@example.org"]["I need help"],
        headers={"Origin": "https://evil.example", "Accept": "text/html"},
    )
    assert refused.status_code == 403 and "text/html" in refused.headers["content-type"]
    assert "nothing was changed" in refused.text and "<style>" in refused.text
    assert _need_help_count(service, key, uid) == 2
    context.close()
