"""Issue 21: every public page in headless Chromium against the real service: axe-core finds no serious or
critical violation at 1280 and 375 px, nothing scrolls sideways at 320 px, and the screenshots in
docs/screenshots (public-*.png, resident-*.png) are taken at 1280 and 375 px.

Pages: the status page (a critical incident with a corrected update and an open question, components, a
planned maintenance window, contact details with hours and a note), an incident page, the history, the banner
embedded by banner.js on another origin, and the resident pages (answer, its thank-you page, subscription
confirm, unsubscribe, a link that is not valid, the subscribe form's thank-you page). One service for the
module (its own SQLite file)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.approving import confirm
from tests.public.servers import run_service, serve_html

pytestmark = pytest.mark.browser
SECRET = "public-pages-browser-secret-0123456789"  # noqa: S105 (a test key)
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WIDE, PHONE, NARROW = 1280, 375, 320
QUESTION = {
    "text": "Are you safe?",
    "options": [{"label": "I'm safe", "keywords": ["SAFE"]}, {"label": "I need help", "needs_help": True}],
}
NOTE = "Bring an ID if you come in person."


def _reset() -> None:
    from tests.conftest import _reset_caches

    _reset_caches()


def _post(base: str, who: dict[str, str], path: str, body: dict[str, Any], expect: int = 201) -> dict[str, Any]:
    resp = httpx.post(base + path, headers=who, json=body, timeout=30)
    assert resp.status_code == expect, (path, resp.text)
    return resp.json() if resp.content else {}


def _content(base: str, who: dict[str, str]) -> dict[str, Any]:
    """Incidents, services, a maintenance window and a question, through the API."""
    contact = {"phone": "+15557654321", "opening_hours": "24/7", "note": NOTE}
    _post(base, who, "/v1/categories", {"slug": "emergency", "name": "Emergency", "contact": contact})
    # long addresses without spaces: the reason the status page used to scroll sideways on a phone
    online = {
        "live_chat_url": "https://chat.example.org/emergency-services/residents-help-desk/start",
        "email": "roads-and-bridges-maintenance-desk@council.example.org",
        "portal_url": "https://council.example.org/report-a-problem/roads-and-pavements",
    }
    _post(base, who, "/v1/categories", {"slug": "roads", "name": "Roads and pavements", "contact": online})
    for slug, name in (("water", "Water supply"), ("power", "Electricity")):
        _post(base, who, "/v1/services", {"slug": slug, "name": name})
    _post(base, who, "/v1/services/water/state", {"state": "degraded", "reason": "low pressure"}, expect=200)

    def update(iid: int, body: dict[str, Any]) -> int:
        uid = int(_post(base, who, f"/v1/incidents/{iid}/updates", {"channels": [], **body})["id"])
        _post(base, who, f"/v1/updates/{uid}/publish", confirm(uid), expect=200)
        return uid

    critical = _post(
        base,
        who,
        "/v1/incidents",
        {"title": "Flooding in the north district", "category": "emergency", "severity": "critical"},
    )["id"]
    first = update(critical, {"body": "Water is rising near the river. Stay away from the river banks."})
    update(
        critical,
        {
            "body": "Water is rising near the old bridge. Stay away from the river banks.",
            "kind": "correction",
            "corrects": first,
        },
    )
    asked = update(critical, {"body": "Evacuation of Riverside Street has started.", "question": QUESTION})
    minor = _post(base, who, "/v1/incidents", {"title": "Slow website", "category": "emergency", "severity": "minor"})[
        "id"
    ]
    update(minor, {"body": "The website was slow for an hour.", "status": "resolved"})
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    _post(
        base,
        who,
        "/v1/maintenance",
        {
            "title": "Water main repair",
            "message": "Water may be off for two hours.",
            "services": ["water"],
            "category": "emergency",
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=2)).isoformat(),
        },
    )
    question = httpx.get(f"{base}/v1/updates/{asked}/question", headers=who, timeout=30).json()
    return {"incident": critical, "question": question["id"]}


@pytest.fixture(scope="module")
def site(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The running service with content; name -> URL of each public page."""
    work = tmp_path_factory.mktemp("public-pages")
    db = work / "broadcaster.db"
    shutil.copy(sqlite_template, db)
    url = f"sqlite:///{db}"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        for name, value in {
            "DATABASE_URL": url,
            "SECRET_KEY": SECRET,
            "APPROVAL_SEVERITY": "none",
            "WORKER_IN_PROCESS": "false",
            "PUBLIC_URL": "http://testserver",
        }.items():
            mp.setenv(name, value)
        _reset()
        from broadcaster.db import session_scope
        from broadcaster.models.delivery import Subscriber
        from broadcaster.responses.links import answer_url
        from broadcaster.security import create_key
        from broadcaster.subscribers.tokens import confirm_url, unsubscribe_url

        with session_scope() as session:
            _, key = create_key(session, "public-pages", ["admin"])
            resident = Subscriber(source="self", email="resident@example.org", email_confirmed=False)
            session.add(resident)
            session.flush()
            sid = resident.id
        with run_service(url, work, **{"SECRET_KEY": SECRET, "APPROVAL_SEVERITY": "none"}) as base:
            made = _content(base, {"Authorization": f"Bearer {key}"})

            def local(link: str) -> str:
                return base + link.removeprefix("http://testserver")

            banner_host = serve_html(
                b"<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport "
                b"content='width=device-width, initial-scale=1'><title>Town website</title></head><body>"
                b"<main><h1>Town website</h1><p>News and services.</p></main>"
                b"<script src='" + base.encode() + b"/v1/banner.js' async data-refresh='0'></script></body></html>"
            )
            pages = {
                "status": base + "/status",
                "incident": f"{base}/status/incidents/{made['incident']}",
                "history": base + "/status/history",
                "banner": next(banner_host),
                "answer": local(answer_url(made["question"], sid, "2")),
                "answer-thanks": local(answer_url(made["question"], sid, "1")),
                "subscribe-confirm": local(confirm_url(sid, "resident@example.org")),
                "unsubscribe": local(unsubscribe_url(sid)),
                "link-not-valid": base + "/v1/answer?token=x.y",
                "subscribe-thanks": base + "/status",
            }
            try:
                yield pages
            finally:
                banner_host.close()
    _reset()


def _axe(page: Any, name: str) -> None:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    bad = [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]
    assert not bad, f"{name}: " + "; ".join(f"{v['id']}: {[n['target'] for n in v['nodes']][:3]}" for v in bad)


def _open(page: Any, name: str, url: str) -> None:
    response = page.goto(url)
    assert response is not None and response.status in (200, 400), (name, response and response.status)
    if name == "answer-thanks":
        with page.expect_navigation():
            page.get_by_role("button", name="Send my answer: I'm safe").click()
        assert page.locator("h1").inner_text() == "Thank you"
    elif name == "subscribe-thanks":
        page.get_by_label("Email").fill("new-reader@example.org")
        with page.expect_navigation():
            page.get_by_role("button", name="Subscribe").click()
        assert page.locator("h1").inner_text() == "Thank you"
    elif name == "banner":
        page.locator(".bc-banner").first.wait_for()


def _sideways(page: Any) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth"))


@pytest.mark.parametrize(
    "name",
    [
        "status",
        "incident",
        "history",
        "banner",
        "answer",
        "answer-thanks",
        "subscribe-confirm",
        "unsubscribe",
        "link-not-valid",
        "subscribe-thanks",
    ],
)
def test_public_page(browser, site, name):
    context = browser.new_context(viewport={"width": WIDE, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    _open(page, name, site[name])
    prefix = "public" if name in ("status", "incident", "history", "banner") else "resident"
    for width in (WIDE, PHONE):
        page.set_viewport_size({"width": width, "height": 900 if width == WIDE else 800})
        page.wait_for_function(f"window.innerWidth === {width}")
        _axe(page, f"{name} at {width} px")
        page.screenshot(path=str(SHOTS / f"{prefix}-{name}-{width}.png"))
    page.set_viewport_size({"width": NARROW, "height": 700})
    page.wait_for_function(f"window.innerWidth === {NARROW}")
    assert _sideways(page) <= 0, f"{name} scrolls sideways by {_sideways(page)} px at {NARROW} px"
    assert not [e for e in errors if "Content Security Policy" in e], errors
    if name in ("status", "incident"):
        # the critical header: its start time in the header's own colour (was #374151 on #9b1c1c, 1.26:1)
        header = page.locator(".sev-critical > header").first
        colours = header.evaluate("h => [getComputedStyle(h).color, getComputedStyle(h.querySelector('time')).color]")
        assert colours[0] == colours[1] == "rgb(255, 255, 255)", colours
        # contact details as a list, one per item, never run together
        items = page.locator(".sev-critical").first.locator("ul.routes li").all_inner_texts()
        assert items == ["Call: +15557654321", "Hours: 24/7", f"Note: {NOTE}"], items
    if name == "banner":
        items = page.locator(".bc-banner.bc-critical ul.bc-routes li").all_inner_texts()
        assert items == ["Call: +15557654321", "Hours: 24/7", f"Note: {NOTE}"], items
    context.close()
