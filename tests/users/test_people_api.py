"""The API with a person's console session: role scopes, CSRF, the two-person rule between people, /v1/users."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from tests.approving import confirm
from tests.users.conftest import session_csrf, sign_in

from broadcaster.sessions import COOKIE_NAME

CRITICAL = {"title": "Flooding", "category": "emergency", "severity": "critical"}


def _as(client, email: str) -> dict[str, str]:
    """Sign `client` in as `email`; the headers a console page's fetch() sends (the CSRF token)."""
    client.cookies.clear()
    assert sign_in(client, email).status_code == 303
    return {"X-CSRF-Token": session_csrf(client)}


@pytest.fixture
def people(make_user) -> dict[str, int]:
    return {
        "editor": make_user("ed@example.org", "editor"),
        "alice": make_user("alice@example.org", "editor", "approver"),
        "bob": make_user("bob@example.org", "approver"),
        "admin": make_user("root@example.org", "admin"),
    }


def test_unsafe_api_request_with_the_cookie_needs_the_csrf_token(client, people, emergency_category) -> None:
    headers = _as(client, "ed@example.org")
    refused = client.post("/v1/incidents", json=CRITICAL)
    assert refused.status_code == 403
    assert refused.json()["field"] == "csrf_token" and refused.json()["error"] == "csrf_failed"
    assert client.post("/v1/incidents", json=CRITICAL, headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert client.get("/v1/incidents").json()["items"] == []  # nothing was written
    made = client.post("/v1/incidents", json=CRITICAL, headers=headers)
    assert made.status_code == 201, made.text
    # reads need no token
    assert client.get("/v1/incidents").status_code == 200


def test_bearer_requests_need_no_csrf_token(client, people, emergency_category, admin) -> None:
    _as(client, "ed@example.org")  # a cookie is present, but the key decides
    resp = client.post("/v1/incidents", json=CRITICAL, headers=admin)
    assert resp.status_code == 201, resp.text


def test_role_scopes_editor_drafts_test_sends_and_requests_approval(client, people, emergency_category) -> None:
    """An editor never publishes a live update: their publish is a request that an approver must approve."""
    headers = _as(client, "ed@example.org")
    incident = client.post("/v1/incidents", json=CRITICAL | {"update": {"body": "Water rising"}}, headers=headers)
    assert incident.status_code == 201, incident.text
    live_id = incident.json()["updates"][0]["id"]
    live = client.post(f"/v1/updates/{live_id}/publish", headers=headers)
    assert live.status_code == 202, live.text  # a request for approval, not a publish
    assert live.json()["approval_required"] and live.json()["broadcast_id"] is None
    assert live.json()["update"]["state"] == "pending_approval"
    approve = client.post(
        f"/v1/updates/{live_id}/approve", json=confirm(live_id), headers=headers | {"If-Match": live.headers["ETag"]}
    )
    assert approve.status_code == 403, approve.text  # and an editor approves nothing
    test = client.post(
        f"/v1/incidents/{incident.json()['id']}/updates", json={"body": "Drill", "test": True}, headers=headers
    )
    assert test.status_code == 201, test.text
    sent = client.post(f"/v1/updates/{test.json()['id']}/publish", headers=headers)
    assert sent.status_code == 200, sent.text
    assert sent.json()["update"]["state"] == "published" and sent.json()["update"]["test"] is True
    # editors cannot manage people or keys
    assert client.get("/v1/users").status_code == 403
    assert client.get("/v1/keys").status_code == 403
    # an approver cannot write drafts
    bob = _as(client, "bob@example.org")
    assert client.post("/v1/incidents", json=CRITICAL, headers=bob).status_code == 403


def _own_key(person_id: int, *scopes: str) -> dict[str, str]:
    from broadcaster.db import session_scope
    from broadcaster.security import create_key

    with session_scope() as session:
        _, plaintext = create_key(session, f"key-of-{person_id}", list(scopes), owner_user_id=person_id)
    return {"Authorization": f"Bearer {plaintext}"}


def test_approval_compares_people_not_keys(client, people, emergency_category) -> None:
    alice = _as(client, "alice@example.org")
    incident = client.post("/v1/incidents", json=CRITICAL | {"update": {"body": "Evacuate"}}, headers=alice).json()
    update_id = incident["updates"][0]["id"]
    asked = client.post(f"/v1/updates/{update_id}/publish", headers=alice)
    assert asked.status_code == 202, asked.text
    etag = asked.headers["ETag"]
    # Alice cannot approve her own request: not in the console ...
    own = client.post(f"/v1/updates/{update_id}/approve", json=confirm(update_id), headers={**alice, "If-Match": etag})
    assert own.status_code == 403, own.text
    # ... nor with an API key she owns (it acts as her)
    client.cookies.clear()
    key = _own_key(people["alice"], "read", "publish")
    assert client.get("/v1/me", headers=key).json()["actor"] == f"user:{people['alice']}"
    own_key = client.post(
        f"/v1/updates/{update_id}/approve", json=confirm(update_id), headers={**key, "If-Match": etag}
    )
    assert own_key.status_code == 403, own_key.text
    # Bob, another person, can
    bob = _as(client, "bob@example.org")
    approved = client.post(
        f"/v1/updates/{update_id}/approve", json=confirm(update_id), headers={**bob, "If-Match": etag}
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["update"]["state"] == "published"
    from broadcaster.db import session_scope
    from broadcaster.models import AuditEntry, Update

    with session_scope() as session:
        row = session.get(Update, update_id)
        assert (row.published_by, row.approved_by) == (f"user:{people['alice']}", f"user:{people['bob']}")
        actors = set(
            session.scalars(
                select(AuditEntry.actor).where(
                    AuditEntry.target_type == "update", AuditEntry.target_id == str(update_id)
                )
            )
        )
        assert actors == {f"user:{people['alice']}", f"user:{people['bob']}"}


def test_a_key_whose_owner_is_deactivated_stops_working(client, people, admin) -> None:
    key = _own_key(people["bob"], "read")
    assert client.get("/v1/incidents", headers=key).status_code == 200
    assert client.delete(f"/v1/users/{people['bob']}", headers=admin).status_code == 204
    assert client.get("/v1/incidents", headers=key).status_code == 401


def test_users_api_is_admin_only(client, people, auth) -> None:
    for scope in ("read", "write", "publish"):
        assert client.get("/v1/users", headers=auth(scope)).status_code == 403
    client.cookies.clear()
    assert client.get("/v1/users").status_code == 401
    headers = _as(client, "alice@example.org")
    assert client.get("/v1/users").status_code == 403
    assert client.post("/v1/users", json={"email": "x@example.org"}, headers=headers).status_code == 403
    _as(client, "root@example.org")
    listed = client.get("/v1/users").json()
    assert [u["email"] for u in listed] == [
        "ed@example.org",
        "alice@example.org",
        "bob@example.org",
        "root@example.org",
    ]
    assert all("password_hash" not in u and u["has_password"] for u in listed)


def test_admin_creates_patches_and_deactivates_people(client, people, admin) -> None:
    made = client.post(
        "/v1/users",
        json={"email": " Dana@Example.org", "name": "Dana", "roles": ["editor"], "password": "a long password 1"},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    dana = made.json()
    assert dana["email"] == "dana@example.org" and dana["has_password"] and "password_hash" not in dana
    dup = client.post("/v1/users", json={"email": "DANA@example.org"}, headers=admin)
    assert dup.status_code == 409 and dup.json()["field"] == "email"
    bad = client.post("/v1/users", json={"email": "e@example.org", "roles": ["boss"]}, headers=admin)
    assert bad.status_code == 422 and bad.json()["field"].startswith("roles")
    short = client.post("/v1/users", json={"email": "e@example.org", "password": "short"}, headers=admin)
    assert short.status_code == 422 and short.json()["field"] == "password"
    assert client.post("/v1/users", json={"email": "not-an-email"}, headers=admin).json()["field"] == "email"

    assert sign_in(client, "dana@example.org", "a long password 1").status_code == 303
    assert client.get("/v1/me").json()["user"]["roles"] == ["editor"]
    patched = client.patch(f"/v1/users/{dana['id']}", json={"roles": ["approver", "editor"]}, headers=admin)
    assert patched.status_code == 200 and patched.json()["roles"] == ["editor", "approver"]
    assert client.get("/v1/me").json()["scopes"] == ["publish", "read", "write"]  # takes effect at once
    assert client.patch(f"/v1/users/{dana['id']}", json={"active": False}, headers=admin).json()["active"] is False
    assert client.get("/v1/me").status_code == 401  # her session ended
    assert client.patch("/v1/users/999", json={"name": "x"}, headers=admin).status_code == 404
    assert client.patch(f"/v1/users/{dana['id']}", json={"roles": ["x"]}, headers=admin).status_code == 422
    client.cookies.clear()
    assert COOKIE_NAME not in client.cookies


def test_the_last_active_admin_stays(client, people, admin) -> None:
    root = people["admin"]
    resp = client.patch(f"/v1/users/{root}", json={"roles": ["editor"]}, headers=admin)
    assert resp.status_code == 409 and resp.json()["error"] == "last_admin"
    assert client.delete(f"/v1/users/{root}", headers=admin).status_code == 409
    assert client.patch(f"/v1/users/{people['bob']}", json={"roles": ["admin"]}, headers=admin).status_code == 200
    assert client.delete(f"/v1/users/{root}", headers=admin).status_code == 204


def test_an_editors_low_impact_update_also_waits_for_an_approver(client, people, emergency_category) -> None:
    headers = _as(client, "ed@example.org")
    minor = CRITICAL | {"severity": "minor", "update": {"body": "Slow water pressure", "channels": ["banner"]}}
    incident = client.post("/v1/incidents", json=minor, headers=headers)
    assert incident.status_code == 201, incident.text
    resp = client.post(f"/v1/updates/{incident.json()['updates'][0]['id']}/publish", headers=headers)
    assert resp.status_code == 202 and resp.json()["update"]["state"] == "pending_approval", resp.text
