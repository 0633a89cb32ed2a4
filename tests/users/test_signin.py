"""Password sign-in: success, wrong password (generic, audited), rate limits per account and per IP, idle and
absolute expiry, the cookie's flags, sign-out, and `next` only to same-site paths."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update
from tests.users.conftest import PASSWORD, csrf_of, session_csrf, sign_in

from broadcaster.sessions import COOKIE_NAME


def _audit(action: str) -> list:
    from broadcaster.db import session_scope
    from broadcaster.models import AuditEntry

    with session_scope() as session:
        return [
            (r.actor, r.target_id, r.detail)
            for r in session.scalars(select(AuditEntry).where(AuditEntry.action == action))
        ]


def _sessions() -> int:
    from broadcaster.db import session_scope
    from broadcaster.models import ConsoleSession

    with session_scope() as session:
        return len(session.scalars(select(ConsoleSession)).all())


def test_password_sign_in_sets_a_hardened_cookie_and_signs_out(client, make_user) -> None:
    uid = make_user("alice@example.org", "editor", "approver")
    resp = sign_in(client, "ALICE@example.org ", next_path="/v1/me")
    assert resp.status_code == 303 and resp.headers["location"] == "/v1/me"
    cookie = resp.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=") and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    assert "secure" not in cookie.lower()  # PUBLIC_URL is http://testserver
    me = client.get("/v1/me").json()
    assert me["actor"] == f"user:{uid}" and me["scopes"] == ["publish", "read", "write"]
    [(actor, target, detail)] = _audit("user.login")
    assert (actor, target, detail["method"]) == (f"user:{uid}", str(uid), "password")
    # the raw cookie is a signed random id; the database holds only a hash of it
    from broadcaster.db import session_scope
    from broadcaster.models import ConsoleSession

    raw = client.cookies[COOKIE_NAME]
    with session_scope() as session:
        row = session.scalars(select(ConsoleSession)).one()
        assert raw.split(".")[0] not in row.id_hash

    assert client.post("/console/logout").status_code == 403  # sign-out needs the CSRF token too
    out = client.post("/console/logout", data={"csrf_token": session_csrf(client)}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/console/login"
    assert _sessions() == 0
    client.cookies.set(COOKIE_NAME, raw)  # the old cookie is worth nothing now
    assert client.get("/v1/me").status_code == 401


def test_secure_cookie_when_public_url_is_https(make_user, monkeypatch, db_url) -> None:
    monkeypatch.setenv("PUBLIC_URL", "https://alerts.example.org")
    from fastapi.testclient import TestClient

    from broadcaster.app import create_app
    from broadcaster.settings import get_settings

    get_settings.cache_clear()
    make_user("alice@example.org", "editor")
    with TestClient(create_app(run_worker=False), base_url="https://alerts.example.org") as c:
        page = c.get("/console/login")
        assert "secure" in page.headers["set-cookie"].lower()  # the sign-in form's CSRF cookie too
        resp = sign_in(c, "alice@example.org")
        assert resp.status_code == 303
        cookie = resp.headers["set-cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie


def test_wrong_password_unknown_account_and_deactivated_account_look_the_same(client, make_user) -> None:
    make_user("alice@example.org", "editor")
    gone = make_user("gone@example.org", "editor")
    from broadcaster.db import session_scope
    from broadcaster.models import User

    with session_scope() as session:
        session.execute(update(User).where(User.id == gone).values(active=False))
    answers = [
        sign_in(client, "alice@example.org", "wrong password here"),
        sign_in(client, "nobody@example.org", "wrong password here"),
        sign_in(client, "gone@example.org", PASSWORD),
    ]
    for resp in answers:
        assert resp.status_code == 401
        assert "The email or password is incorrect" in resp.text
        assert COOKIE_NAME not in resp.cookies
    assert _sessions() == 0
    failed = _audit("user.login_failed")
    assert [d["email"] for _, _, d in failed] == ["alice@example.org", "nobody@example.org", "gone@example.org"]
    assert all(actor.startswith("ip:") for actor, _, _ in failed)
    assert all(PASSWORD not in str(d) and "wrong password" not in str(d) for _, _, d in failed)


def test_sign_in_form_needs_its_csrf_token(client, make_user) -> None:
    make_user("alice@example.org", "editor")
    client.get("/console/login")
    resp = client.post("/console/login", data={"email": "alice@example.org", "password": PASSWORD})
    assert resp.status_code == 403
    assert COOKIE_NAME not in client.cookies


def test_sign_in_is_rate_limited_per_account(client, make_user, monkeypatch) -> None:
    monkeypatch.setenv("LOGIN_RATE_LIMIT_ACCOUNT", "3/minute")
    from broadcaster.settings import get_settings

    get_settings.cache_clear()
    make_user("alice@example.org", "editor")
    for _ in range(3):
        assert sign_in(client, "alice@example.org", "wrong password").status_code == 401
    blocked = sign_in(client, "alice@example.org", PASSWORD)  # even the right password waits
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) >= 1
    assert "Too many sign-in attempts" in blocked.text
    assert COOKIE_NAME not in client.cookies
    make_user("bob@example.org", "editor")
    assert sign_in(client, "bob@example.org").status_code == 303  # another account is not affected


def test_sign_in_is_rate_limited_per_ip(client, make_user, monkeypatch) -> None:
    monkeypatch.setenv("LOGIN_RATE_LIMIT_IP", "4/minute")
    from broadcaster.settings import get_settings

    get_settings.cache_clear()
    make_user("alice@example.org", "editor")
    for i in range(4):  # four different accounts from one address
        assert sign_in(client, f"user{i}@example.org", "wrong password").status_code == 401
    assert sign_in(client, "alice@example.org").status_code == 429  # the right password of a fresh account


def test_forwarded_addresses_count_per_client_behind_a_trusted_proxy(make_user, monkeypatch, db_url) -> None:
    monkeypatch.setenv("LOGIN_RATE_LIMIT_IP", "2/minute")
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8")
    from fastapi.testclient import TestClient

    from broadcaster.app import create_app
    from broadcaster.settings import get_settings

    get_settings.cache_clear()
    make_user("alice@example.org", "editor")
    with TestClient(create_app(run_worker=False), client=("10.0.0.5", 40000)) as c:
        for i in range(2):
            assert sign_in(c, f"u{i}@example.org", "nope", **{"X-Forwarded-For": "203.0.113.7"}).status_code == 401
        assert sign_in(c, "alice@example.org", **{"X-Forwarded-For": "203.0.113.7"}).status_code == 429
        assert sign_in(c, "alice@example.org", **{"X-Forwarded-For": "203.0.113.8"}).status_code == 303


def test_ipv6_clients_count_per_64_behind_a_trusted_proxy(make_user, monkeypatch, db_url) -> None:
    """Issue 19, item 7: rotating addresses inside one /64 does not buy fresh sign-in attempts."""
    monkeypatch.setenv("LOGIN_RATE_LIMIT_IP", "3/minute")
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8")
    from fastapi.testclient import TestClient

    from broadcaster.app import create_app
    from broadcaster.settings import get_settings

    get_settings.cache_clear()
    make_user("alice@example.org", "editor")
    with TestClient(create_app(run_worker=False), client=("10.0.0.5", 40000)) as c:
        codes = [
            sign_in(c, f"u{i}@example.org", "nope", **{"X-Forwarded-For": f"2001:db8:7:7::{i + 1:x}"}).status_code
            for i in range(20)
        ]
        assert codes == [401] * 3 + [429] * 17
        assert len(_audit("user.login_failed")) == 3  # the refused attempts never reached a password check
        assert sign_in(c, "alice@example.org", **{"X-Forwarded-For": "2001:db8:7:8::1"}).status_code == 303


def test_idle_session_expires(client, make_user, monkeypatch) -> None:
    make_user("alice@example.org", "editor")
    assert sign_in(client, "alice@example.org").status_code == 303
    assert client.get("/v1/me").status_code == 200
    from broadcaster.db import session_scope
    from broadcaster.models import ConsoleSession, utcnow

    def age(**idle: float) -> None:
        with session_scope() as session:
            session.execute(update(ConsoleSession).values(last_seen_at=utcnow() - timedelta(**idle)))

    age(minutes=29)  # default CONSOLE_SESSION_IDLE_MINUTES=30: still signed in, and seen again now
    assert client.get("/v1/me").status_code == 200
    age(minutes=31)
    resp = client.get("/v1/me")
    assert resp.status_code == 401 and resp.json()["field"] == COOKIE_NAME
    page = client.get("/console/login", follow_redirects=False)
    assert page.status_code == 200  # not signed in any more (and the page deleted the expired row)
    assert _sessions() == 0


def test_absolute_expiry_even_when_active(client, make_user) -> None:
    make_user("alice@example.org", "editor")
    assert sign_in(client, "alice@example.org").status_code == 303
    from broadcaster.db import session_scope
    from broadcaster.models import ConsoleSession, utcnow

    with session_scope() as session:
        session.execute(update(ConsoleSession).values(created_at=utcnow() - timedelta(hours=12, minutes=1)))
    assert client.get("/v1/me").status_code == 401


@pytest.mark.parametrize(
    ("next_path", "location"),
    [
        ("/console/incidents/7?tab=x", "/console/incidents/7?tab=x"),
        ("https://evil.example/", "/console/"),
        ("//evil.example/", "/console/"),
        ("/\\evil.example/", "/console/"),
        ("javascript:alert(1)", "/console/"),
        ("", "/console/"),
    ],
)
def test_next_is_only_a_same_site_path(client, make_user, next_path, location) -> None:
    make_user("alice@example.org", "editor")
    resp = sign_in(client, "alice@example.org", next_path=next_path)
    assert resp.status_code == 303 and resp.headers["location"] == location


def test_signed_in_person_visiting_the_form_goes_on(client, make_user) -> None:
    make_user("alice@example.org", "editor")
    sign_in(client, "alice@example.org")
    resp = client.get("/console/login?next=/console/approvals", follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"] == "/console/approvals"
    assert "csrf_token" in csrf_of('<input name="csrf_token" value="csrf_token">')
