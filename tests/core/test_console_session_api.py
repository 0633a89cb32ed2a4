"""The console's JSON API with a console session instead of an API key: reject, audit, timeline (issue 11)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.users.conftest import PASSWORD, session_csrf, sign_in

from .helpers import assert_error


def _user(email: str, *roles: str) -> int:
    from broadcaster.db import session_scope
    from broadcaster.users import service

    with session_scope() as session:
        return int(service.create_user(session, email, email.split("@")[0], list(roles), PASSWORD).id)


@pytest.fixture
def people(app) -> Any:
    """Signed-in clients: an editor, an approver and an admin (each its own cookie jar)."""
    clients = {}
    for email, role in (("ed@example.org", "editor"), ("ann@example.org", "approver"), ("root@example.org", "admin")):
        _user(email, role)
        c = TestClient(app)
        c.__enter__()
        assert sign_in(c, email).status_code == 303
        clients[role] = c
    yield clients
    for c in clients.values():
        c.__exit__(None, None, None)


def _csrf(c: TestClient) -> dict[str, str]:
    return {"X-CSRF-Token": session_csrf(c)}


def test_reject_audit_and_timeline_with_console_sessions(people, client, admin, make_incident, make_update):
    editor, approver, root = people["editor"], people["approver"], people["admin"]
    update = make_update(make_incident(severity="critical")["id"])
    asked = client.post(f"/v1/updates/{update['id']}/publish", headers=admin)
    assert asked.status_code == 202, asked.text

    assert_error(approver.post(f"/v1/updates/{update['id']}/reject", json={"comment": "No."}), 403)  # no CSRF
    assert_error(
        editor.post(f"/v1/updates/{update['id']}/reject", json={"comment": "No."}, headers=_csrf(editor)), 403
    )  # an editor has no publish scope
    resp = approver.post(
        f"/v1/updates/{update['id']}/reject", json={"comment": "Say which district."}, headers=_csrf(approver)
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["rejection"]["by"].startswith("user:")

    assert_error(approver.get("/v1/audit"), 403)
    entries = root.get("/v1/audit", params={"action": "update.reject"}).json()["items"]
    assert [e["detail"]["comment"] for e in entries] == ["Say which district."]
    assert entries[0]["actor"] == resp.json()["rejection"]["by"]

    assert editor.get("/v1/broadcasts/1/timeline").status_code == 404  # read scope through the session


def test_the_requester_cannot_reject_with_their_own_key(people, app, make_incident, make_update):
    """A person's console session and their own API key are one person (`user:<id>`)."""
    from broadcaster.db import session_scope
    from broadcaster.security import create_key

    ann = _user("ann2@example.org", "approver", "editor")
    with session_scope() as session:
        _, key = create_key(session, "ann-laptop", ["read", "write", "publish"], owner_user_id=ann)
    own_key = {"Authorization": f"Bearer {key}"}
    with TestClient(app) as c:
        update = make_update(make_incident(severity="critical")["id"])
        assert c.post(f"/v1/updates/{update['id']}/publish", headers=own_key).status_code == 202
        assert sign_in(c, "ann2@example.org").status_code == 303
        resp = c.post(f"/v1/updates/{update['id']}/reject", json={"comment": "Hmm."}, headers=_csrf(c))
    assert_error(resp, 403, "forbidden", "Authorization")
