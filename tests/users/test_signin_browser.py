"""Sign-in in headless Chromium (Playwright) against a real uvicorn server: the password form, and single
sign-on through the test OpenID provider (its one-button consent page), both under the pages' CSP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.public.servers import run_service
from tests.users.conftest import PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture
def sso_service(db_url: str, tmp_path: Path, oidc):
    with run_service(db_url, tmp_path, **oidc.env()) as base:
        yield base


def _me(page) -> dict:
    return json.loads(page.locator("body").inner_text())


def test_password_and_sso_sign_in_in_a_browser(browser, sso_service: str, oidc, make_user) -> None:
    from broadcaster.fakes.oidc import TestUser

    make_user("ed@example.org", "editor")
    errors: list[str] = []
    context = browser.new_context()
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    # password: the form posts, the cookie is set, `next` is honoured
    page.goto(f"{sso_service}/console/login?next=/v1/me")
    page.fill("#email", "ed@example.org")
    page.fill("#password", "wrong password")
    page.click("button[type=submit]")
    assert "The email or password is incorrect" in page.locator("#login-error").inner_text()
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{sso_service}/v1/me")
    assert _me(page)["user"]["email"] == "ed@example.org"
    [cookie] = [c for c in context.cookies() if c["name"] == "broadcaster_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert page.evaluate("document.cookie").find("broadcaster_session") == -1  # not readable by scripts
    context.close()

    # single sign-on: the button, the provider's consent page, back signed in with roles from the groups
    oidc.user = TestUser(sub="ann-1", email="ann@example.org", name="Ann", groups=["comms-approvers"])
    oidc.interactive = True
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{sso_service}/console/login?next=/v1/me")
    page.click("text=Sign in with Test IdP")
    page.wait_for_url(f"{oidc.issuer}/authorize*")
    assert "Sign in as ann@example.org" in page.content()
    page.click("text=Continue")
    page.wait_for_url(f"{sso_service}/v1/me")
    me = _me(page)
    assert me["user"]["email"] == "ann@example.org" and me["user"]["roles"] == ["approver"]
    assert me["via"] == "session"
    context.close()
    assert not [e for e in errors if "Content Security Policy" in e]
