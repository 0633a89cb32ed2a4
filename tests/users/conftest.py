"""Fixtures for people and sign-in: accounts made through the service, password sign-in with a TestClient."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

PASSWORD = "correct horse battery staple"


@pytest.fixture
def make_user(db_url: str) -> Callable[..., int]:
    """Create an account (`make_user("alice@example.org", "editor")`); returns its id."""
    from broadcaster.db import session_scope
    from broadcaster.users import service

    def make(email: str, *roles: str, password: str | None = PASSWORD, name: str = "") -> int:
        with session_scope() as session:
            user = service.create_user(session, email, name or email.split("@")[0].title(), list(roles), password)
            return user.id

    return make


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def sign_in(client, email: str, password: str = PASSWORD, next_path: str = "", **headers: str):
    """Post the sign-in form as a browser would (GET the form first for its CSRF cookie); the response."""
    page = client.get("/console/login", headers=headers)
    data = {"email": email, "password": password, "csrf_token": csrf_of(page.text), "next": next_path}
    return client.post("/console/login", data=data, headers=headers, follow_redirects=False)


def session_csrf(client) -> str:
    """The CSRF token of the client's console session (what the console's pages embed)."""
    from broadcaster.db import session_scope
    from broadcaster.sessions import COOKIE_NAME, resolve

    with session_scope() as session:
        user = resolve(session, client.cookies.get(COOKIE_NAME))
    assert user is not None
    return user.csrf_token
