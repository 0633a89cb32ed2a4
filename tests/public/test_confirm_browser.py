"""The emailed confirmation link in a real browser (headless Debian Chromium driven by Playwright): opening it
confirms nothing, the landing page's button confirms by POST under the page's CSP, and a page on another
origin that auto-submits the subscribe form is refused (issue 10)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from tests.public.servers import run_service, serve_html

pytestmark = pytest.mark.browser
SECRET = "browser-test-secret-key"


@pytest.fixture
def service(db_url: str, tmp_path: Path, monkeypatch) -> Iterator[str]:
    from broadcaster.settings import get_settings

    monkeypatch.setenv("SECRET_KEY", SECRET)
    get_settings.cache_clear()
    with run_service(db_url, tmp_path, SECRET_KEY=SECRET) as base:
        yield base


def _subscriber(email: str) -> Any:
    from broadcaster.db import session_scope
    from broadcaster.models.delivery import Subscriber

    with session_scope() as session:
        row = session.scalar(select(Subscriber).where(Subscriber.email == email))
        if row is not None:
            session.expunge(row)
        return row


def _count() -> int:
    from broadcaster.db import session_scope
    from broadcaster.models.delivery import Subscriber

    with session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(Subscriber)) or 0)


def _evil_page(target: str) -> Iterator[str]:
    """Another origin whose page auto-submits the subscribe form to `target` (the attack in issue 10)."""
    html = (
        "<!doctype html><html><body><form id=f method=post action='" + target + "'>"
        "<input name=email value='victim@example.org'></form>"
        "<script>document.getElementById('f').submit()</script></body></html>"
    ).encode()

    yield from serve_html(html)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_confirm_landing_page_in_chromium(browser, service, db_url):
    from broadcaster.db import session_scope
    from broadcaster.models.delivery import Subscriber
    from broadcaster.subscribers.tokens import confirm_url

    with session_scope() as session:
        row = Subscriber(source="self", email="reader@example.org", email_confirmed=False)
        session.add(row)
        session.flush()
        sid = row.id
    link = service + confirm_url(sid, "reader@example.org").removeprefix("http://testserver")

    context = browser.new_context()
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda msg: console.append(msg.text))
    response = page.goto(link)
    assert response is not None and response.status == 200
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert page.locator("h1").inner_text() == "Confirm your subscription"
    assert not _subscriber("reader@example.org").email_confirmed  # opening the link confirms nothing

    with page.expect_navigation():
        page.get_by_role("button", name="Confirm my subscription").click()
    assert page.locator("h1").inner_text() == "Subscription confirmed"
    assert _subscriber("reader@example.org").email_confirmed
    assert not [m for m in console if "Content Security Policy" in m]

    # the status page renders under its CSP (inline styles allowed, nothing refused)
    page.goto(service + "/status")
    assert page.locator("h1").count() == 1
    assert page.evaluate("getComputedStyle(document.body).maxWidth") != "none"  # the <style> block applied
    assert not [m for m in console if "Content Security Policy" in m]

    # another origin auto-submits the subscribe form: refused, nothing stored
    before = _count()
    gen = _evil_page(service + "/v1/subscribe")
    evil = next(gen)
    try:
        with page.expect_response(lambda r: r.url.endswith("/v1/subscribe")) as posted:
            page.goto(evil)
        assert posted.value.status == 403
        assert posted.value.request.headers.get("origin", "").startswith("http://localhost:")
    finally:
        gen.close()
    assert _count() == before and _subscriber("victim@example.org") is None
    context.close()
