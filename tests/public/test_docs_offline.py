"""/docs and /redoc work on a network without internet access: Swagger UI and ReDoc come from the package
(fastapi-offline's copies), never from a CDN. Checked in headless Chromium with every request to another
host refused. Fails (never skips) in CI when /usr/bin/chromium is missing (see test_browser.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from tests.public.servers import run_service

pytestmark = pytest.mark.browser
LOCAL = {"127.0.0.1", "localhost"}


@pytest.fixture
def service(db_url: str, tmp_path: Path) -> Iterator[str]:
    with run_service(db_url, tmp_path) as base:
        yield base


def _offline_page(browser, blocked: list[str]):
    context = browser.new_context()

    def only_local(route) -> None:
        if urlsplit(route.request.url).hostname in LOCAL:
            route.continue_()
        else:
            blocked.append(f"{route.request.resource_type} {route.request.url}")
            route.abort("internetdisconnected")

    context.route("**/*", only_local)
    return context.new_page()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_swagger_ui_and_redoc_render_with_no_internet(browser, service, db_url):
    blocked: list[str] = []
    page = _offline_page(browser, blocked)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{service}/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=15_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/v1/incidents" in [p.replace("\u200b", "") for p in paths]
    assert page.locator(".opblock").count() > 20
    assert not errors, errors

    assert blocked == [], f"requests to other hosts: {blocked}"

    page.goto(f"{service}/redoc")
    page.wait_for_selector("[data-section-id]", timeout=15_000)
    assert page.locator("[data-section-id]").count() > 20
    assert not errors, errors
    # ReDoc's sidebar footer shows Redocly's logo from their CDN (no option turns it off): a broken image
    # offline, nothing the page needs
    assert [b for b in blocked if not b.startswith("image https://cdn.redoc.ly/")] == [], blocked


def test_docs_pages_reference_no_other_host(client):
    """The HTML of /docs and /redoc loads scripts, styles and icons from this server only."""
    import re

    for path in ("/docs", "/redoc"):
        html = client.get(path).text
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html) + re.findall(r"""url: ?['"]([^'"]+)['"]""", html)
        assert urls, path
        for url in urls:
            assert urlsplit(url).hostname in (None, "testserver"), (path, url)
    assert '"validatorUrl": null' in client.get("/docs").text  # the spec is never sent to swagger.io


def test_metrics_need_a_key_with_the_metrics_scope(client, auth):
    assert client.get("/metrics").status_code == 401
    denied = client.get("/metrics", headers=auth("read", "write", "publish", "alerts"))
    assert denied.status_code == 403 and denied.json()["field"] == "Authorization"
    for scopes in (("metrics",), ("admin",)):
        resp = client.get("/metrics", headers=auth(*scopes))
        assert resp.status_code == 200 and "broadcaster_queue_depth" in resp.text, scopes
