"""Browser-facing headers and cross-origin form posts (issue 10): HTML pages send a CSP (`default-src 'self'`)
with `frame-ancestors 'none'` (the embeddable banner: BANNER_FRAME_ANCESTORS), and a page on another origin
cannot submit the subscribe, confirm or unsubscribe forms."""

from __future__ import annotations

import pytest


def _csp(resp) -> dict[str, str]:
    policy = resp.headers["content-security-policy"]
    return {d.split(" ", 1)[0]: d.split(" ", 1)[1] for d in (p.strip() for p in policy.split(";")) if " " in d}


@pytest.fixture
def confirm_link(db_url, monkeypatch) -> str:
    from broadcaster.db import session_scope
    from broadcaster.models.delivery import Subscriber
    from broadcaster.settings import get_settings
    from broadcaster.subscribers.tokens import confirm_url

    monkeypatch.setenv("SECRET_KEY", "test-secret-key-for-tokens")
    get_settings.cache_clear()
    with session_scope() as session:
        row = Subscriber(source="self", email="c@example.org", email_confirmed=False)
        session.add(row)
        session.flush()
        sid = row.id
    return confirm_url(sid, "c@example.org").removeprefix("http://testserver")


@pytest.mark.parametrize("path", ["/status", "/status/history", "/v1/unsubscribe?token=x.y"])
def test_html_pages_send_csp_and_refuse_framing(client, path):
    resp = client.get(path)
    assert resp.headers["content-type"].startswith("text/html")
    csp = _csp(resp)
    assert csp["default-src"] == "'self'" and csp["frame-ancestors"] == "'none'"
    assert "script-src" not in csp  # scripts only from this origin (default-src), never inline
    assert resp.headers["x-frame-options"] == "DENY"


def test_confirm_and_result_pages_send_csp(client, confirm_link):
    for resp in (client.get(confirm_link), client.post("/v1/subscribe", data={"email": "p@example.org"})):
        assert _csp(resp)["frame-ancestors"] == "'none'" and _csp(resp)["default-src"] == "'self'"


def test_banner_html_is_embeddable_and_configurable(client, monkeypatch):
    resp = client.get("/v1/banner.html")
    assert resp.status_code == 200
    assert _csp(resp)["frame-ancestors"] == "*" and "x-frame-options" not in resp.headers

    from broadcaster.public.cache import get_cache
    from broadcaster.settings import get_settings

    monkeypatch.setenv("BANNER_FRAME_ANCESTORS", "https://www.example.org")
    monkeypatch.setenv("FRAME_ANCESTORS", "'self'")
    get_settings.cache_clear()
    get_cache().invalidate()
    assert _csp(client.get("/v1/banner.html?lang=fr"))["frame-ancestors"] == "https://www.example.org"


def test_frame_ancestors_of_pages_is_configurable(db_url, monkeypatch):
    from fastapi.testclient import TestClient

    from broadcaster.app import create_app
    from broadcaster.settings import get_settings

    monkeypatch.setenv("FRAME_ANCESTORS", "'self' https://intranet.example.org")
    get_settings.cache_clear()
    resp = TestClient(create_app(run_worker=False)).get("/status")
    assert _csp(resp)["frame-ancestors"] == "'self' https://intranet.example.org"
    assert "x-frame-options" not in resp.headers


def test_cross_origin_form_posts_are_refused(client, confirm_link):
    from tests.core.helpers import row_counts

    before = row_counts()
    evil = {"Origin": "https://evil.example"}
    for path, data in (
        ("/v1/subscribe", {"email": "victim@example.org"}),
        (confirm_link, {}),
        ("/v1/unsubscribe?token=x.y", {"List-Unsubscribe": "One-Click"}),
    ):
        resp = client.post(path, data=data, headers=evil)
        assert resp.status_code == 403, (path, resp.text)
        assert resp.json()["field"] == "Origin" and resp.json()["error"] == "forbidden"
    assert client.post("/v1/subscribe", data={"email": "v@example.org"}, headers={"Origin": "null"}).status_code == 403
    assert row_counts() == before
    # the page's own origin, and clients that send no Origin (curl, mail providers' one-click POST), pass
    same = client.post("/v1/subscribe", data={"email": "v@example.org"}, headers={"Origin": "http://testserver"})
    assert same.status_code == 202
    assert client.post("/v1/subscribe", data={"email": "w@example.org"}).status_code == 202


def test_allowed_form_origins(db_url, monkeypatch):
    from fastapi.testclient import TestClient

    from broadcaster.app import create_app
    from broadcaster.settings import get_settings

    monkeypatch.setenv("FORM_ALLOWED_ORIGINS", "https://www.example.org")
    get_settings.cache_clear()
    with TestClient(create_app(run_worker=False)) as c:
        ok = c.post("/v1/subscribe", data={"email": "a@example.org"}, headers={"Origin": "https://www.example.org"})
        assert ok.status_code == 202
        bad = c.post("/v1/subscribe", data={"email": "b@example.org"}, headers={"Origin": "https://example.org"})
        assert bad.status_code == 403


def test_api_calls_with_a_key_are_not_affected_by_origin(client, admin):
    resp = client.post(
        "/v1/categories", json={"slug": "x", "name": "X"}, headers={**admin, "Origin": "https://console.example"}
    )
    assert resp.status_code == 201, resp.text


def test_null_origin_needs_the_pages_form_token(client, confirm_link):
    """Issue 21: a resident page opened under a no-referrer policy posts with `Origin: null`. On the signed-link
    paths that passes with the page's signed form token (for that link), and is refused without it (nothing
    changed, a plain-language page with the button again); /v1/subscribe still refuses `null`."""
    import re

    from tests.core.helpers import row_counts

    null = {"Origin": "null"}
    page = client.get(confirm_link)
    token = re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)
    assert page.headers["referrer-policy"] == "same-origin"

    from broadcaster.subscribers.tokens import unsubscribe_url

    other = client.get(unsubscribe_url(99).removeprefix("http://testserver"))
    other_token = re.search(r'name="form_token" value="([^"]+)"', other.text).group(1)
    before = row_counts()
    for data in ({}, {"form_token": "junk.junk"}, {"form_token": other_token}):  # missing, forged, another link's
        refused = client.post(confirm_link, data=data, headers=null)
        assert refused.status_code == 403 and refused.headers["content-type"].startswith("text/html")
        assert "Nothing was changed" in refused.text and 'name="form_token"' in refused.text
    assert row_counts() == before
    ok = client.post(confirm_link, data={"form_token": token}, headers=null)
    assert ok.status_code == 200 and "Subscription confirmed" in ok.text


def test_refused_browser_form_posts_get_a_page(client, confirm_link):
    """A browser's cross-origin form post (Accept: text/html) gets a styled, plain-language page; API clients
    keep the JSON error."""
    resp = client.post(confirm_link, headers={"Origin": "https://evil.example", "Accept": "text/html,*/*"})
    assert resp.status_code == 403 and resp.headers["content-type"].startswith("text/html")
    assert "<h1>We could not accept this</h1>" in resp.text and "<style>" in resp.text
    assert _csp(resp)["default-src"] == "'self'"
