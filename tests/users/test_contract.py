"""The console contract (broadcaster.sessions): require_console_user, console_user, LoginRequired handling."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import Depends
from tests.users.conftest import session_csrf, sign_in

from broadcaster.sessions import ConsoleUser, require_console_user


@pytest.fixture
def contract_app(app):
    @app.get("/console/_probe")
    def probe(user: Annotated[ConsoleUser, Depends(require_console_user)]) -> dict:
        return {"id": user.id, "actor": user.actor, "roles": sorted(user.roles), "admin": user.has_role("approver")}

    @app.post("/console/_probe")
    def probe_post(user: Annotated[ConsoleUser, Depends(require_console_user)]) -> dict:
        return {"ok": user.email}

    return app


@pytest.fixture
def cclient(contract_app):
    from fastapi.testclient import TestClient

    with TestClient(contract_app) as c:
        yield c


def test_page_without_session_redirects_to_login_and_json_gets_401(cclient) -> None:
    resp = cclient.get("/console/_probe?x=1", headers={"Accept": "text/html"}, follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"] == "/console/login?next=/console/_probe%3Fx%3D1"
    resp = cclient.get("/console/_probe", headers={"Accept": "application/json"})
    assert resp.status_code == 401
    assert resp.json()["error"] == "login_required"


def test_signed_in_person_and_csrf_on_unsafe_methods(cclient, make_user) -> None:
    uid = make_user("Alice@Example.org ", "editor")
    resp = sign_in(cclient, "alice@example.org", next_path="/console/_probe")
    assert resp.status_code == 303, resp.text
    assert resp.headers["location"] == "/console/_probe"
    me = cclient.get("/console/_probe").json()
    assert me == {"id": uid, "actor": f"user:{uid}", "roles": ["editor"], "admin": False}
    token = session_csrf(cclient)
    refused = cclient.post("/console/_probe")
    assert refused.status_code == 403
    assert refused.json()["field"] == "csrf_token"
    assert cclient.post("/console/_probe", data={"csrf_token": "wrong"}).status_code == 403
    assert cclient.post("/console/_probe", data={"csrf_token": token}).json() == {"ok": "alice@example.org"}
    assert cclient.post("/console/_probe", headers={"X-CSRF-Token": token}).json() == {"ok": "alice@example.org"}
