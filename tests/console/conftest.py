"""Fixtures for the console: people with roles, signed-in TestClients."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tests.users.conftest import PASSWORD, sign_in


@pytest.fixture
def make_user(db_url: str) -> Callable[..., int]:
    """Create an account (`make_user("alice@example.org", "editor")`); returns its id."""
    from broadcaster.db import session_scope
    from broadcaster.users import service

    def make(email: str, *roles: str, password: str | None = PASSWORD, name: str = "") -> int:
        with session_scope() as session:
            return service.create_user(session, email, name or email.split("@")[0].title(), list(roles), password).id

    return make


@pytest.fixture
def signed_in(app, make_user) -> Callable[..., object]:
    """`signed_in("editor")` -> a TestClient signed in as a new person with those roles."""
    from fastapi.testclient import TestClient

    clients = []
    counter = {"n": 0}

    def make(*roles: str) -> object:
        counter["n"] += 1
        email = f"{'-'.join(roles)}{counter['n']}@example.org"
        make_user(email, *roles)
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        resp = sign_in(client, email)
        assert resp.status_code == 303, resp.text
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)
