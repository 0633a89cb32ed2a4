"""banner.js in a real browser: headless Debian Chromium driven by Playwright, the page on another origin.

Fails (never skips) in CI when /usr/bin/chromium is missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.public.servers import run_service, serve_html

pytestmark = pytest.mark.browser

XSS_TITLE = "Alert <script>window.__bc_pwned = 'title'</script>"
XSS_TEXT = "Read this <img src=x onerror=\"window.__bc_pwned = 'text'\"> now"


@pytest.fixture
def service(db_url: str, tmp_path: Path) -> Iterator[str]:
    with run_service(db_url, tmp_path, BANNER_MAX_AGE="1", BANNER_STALE_WHILE_REVALIDATE="0") as base:
        yield base


def host_page(banner_src: str, attrs: str) -> Iterator[str]:
    """A second HTTP server on another origin (localhost:<other port>) with the one-line embed."""
    html = (
        "<!doctype html><html lang='en'><head><title>Host</title></head><body>"
        "<h1>Somebody else's website</h1>"
        f'<script src="{banner_src}" async {attrs}></script>'
        "</body></html>"
    ).encode()

    yield from serve_html(html)


class Api:
    def __init__(self, base: str, key: str) -> None:
        self.base, self.headers = base, {"Authorization": f"Bearer {key}"}

    def post(self, path: str, json: dict | None = None) -> dict:
        resp = httpx.post(self.base + path, headers=self.headers, json=json)
        assert resp.status_code in (200, 201), resp.text
        return resp.json()

    def publish(self, incident_id: int, **update: Any) -> int:
        update_id = self.post(f"/v1/incidents/{incident_id}/updates", update)["id"]
        self.post(f"/v1/updates/{update_id}/publish")
        return int(update_id)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_banner_js_embed_dismiss_refresh_and_xss(browser, service, make_key, db_url):
    api = Api(service, make_key("admin"))
    api.post("/v1/categories", {"slug": "it", "name": "IT", "contact": {"phone": "+15551234567"}})
    incident = api.post("/v1/incidents", {"title": XSS_TITLE, "category": "it", "severity": "major"})["id"]
    first = api.publish(incident, body=XSS_TEXT, summary=XSS_TEXT)

    page_gen = host_page(f"{service}/v1/banner.js", 'data-refresh="1"')
    page_url = next(page_gen)
    try:
        context = browser.new_context()
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(page_url)
        assert page.evaluate("location.origin") != service  # really cross-origin

        banner = page.locator(f'[data-update-id="{first}"]')
        banner.wait_for(state="visible", timeout=15_000)
        # user text shows literally and never runs
        assert XSS_TITLE in banner.locator(".bc-title").inner_text()
        assert "<img src=x onerror=" in banner.locator(".bc-text").inner_text()
        assert banner.locator("img, script").count() == 0
        page.wait_for_timeout(300)
        assert page.evaluate("typeof window.__bc_pwned") == "undefined"
        # accessibility attributes: major -> role=alert, aria-live=assertive; a labelled dismiss button
        assert banner.get_attribute("role") == "alert"
        assert banner.get_attribute("aria-live") == "assertive"
        dismiss = banner.get_by_role("button")
        assert (dismiss.get_attribute("aria-label") or "").startswith("Dismiss")
        assert page.locator(".bc-banner a[href='tel:+15551234567']").count() == 1

        # dismiss: gone, and stays gone after a reload (localStorage per update id)
        dismiss.click()
        assert banner.count() == 0
        page.reload()
        with page.expect_response(lambda r: r.url.startswith(service + "/v1/banner") and "banner.js" not in r.url):
            pass
        page.wait_for_timeout(1500)  # a refresh cycle or two
        assert page.locator(f'[data-update-id="{first}"]').count() == 0

        # a new update appears on the next refresh, without a reload
        second = api.publish(incident, body="Second update: still investigating.")
        page.locator(f'[data-update-id="{second}"]').wait_for(state="visible", timeout=15_000)
        assert "Second update" in page.locator(f'[data-update-id="{second}"] .bc-text').inner_text()

        # an edit of the incident (no new update) redraws the banner in place
        resp = httpx.patch(
            f"{service}/v1/incidents/{incident}", headers=api.headers, json={"title": "Renamed", "severity": "minor"}
        )
        assert resp.status_code == 200, resp.text
        edited = page.locator(f'[data-update-id="{second}"].bc-minor')
        edited.wait_for(state="visible", timeout=15_000)
        assert edited.locator(".bc-title").inner_text() == "Renamed"
        assert edited.get_attribute("role") == "status"
        assert page.locator(".bc-banner").count() == 1
        assert page.evaluate("typeof window.__bc_pwned") == "undefined"
        assert errors == []
        context.close()
    finally:
        page_gen.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_banner_html_fragment_is_inert_in_a_browser(browser, service, make_key, db_url):
    api = Api(service, make_key("admin"))
    api.post("/v1/categories", {"slug": "it", "name": "IT"})
    incident = api.post("/v1/incidents", {"title": XSS_TITLE, "category": "it", "severity": "info"})["id"]
    api.publish(incident, body=XSS_TEXT)
    fragment = httpx.get(service + "/v1/banner.html").text
    page = browser.new_page()
    page.set_content(f"<!doctype html><html><body>{fragment}</body></html>")
    page.wait_for_timeout(300)
    assert page.evaluate("typeof window.__bc_pwned") == "undefined"
    assert XSS_TITLE in page.locator(".bc-title").inner_text()
    assert page.locator(".bc-banner").get_attribute("role") == "status"
    assert page.locator(".bc-banner img, .bc-banner script").count() == 0
    page.close()
