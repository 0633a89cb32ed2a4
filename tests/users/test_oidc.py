"""OpenID Connect sign-in against the test OpenID provider, through a real uvicorn server and a real HTTP
client (each redirect followed by hand, so every hop is checked)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select
from tests.public.servers import run_service


@pytest.fixture
def sso_service(db_url: str, tmp_path: Path, oidc):
    with run_service(db_url, tmp_path, **oidc.env()) as base:
        yield base


def _follow(http: httpx.Client, url: str, stop_at: str) -> httpx.Response:
    """Follow redirects across the service and the provider until a Location starts with `stop_at`."""
    for _ in range(10):
        resp = http.get(url)
        assert resp.status_code in (302, 303), resp.text
        url = resp.headers["location"]
        if url.startswith(stop_at):
            return resp
    raise AssertionError("too many redirects")


def test_sso_sign_in_creates_the_person_with_roles_from_groups(sso_service: str, oidc) -> None:
    from broadcaster.fakes.oidc import TestUser

    oidc.user = TestUser(sub="bob-1", email="Bob@Example.org", name="Bob", groups=["comms-approvers", "other"])
    with httpx.Client(base_url=sso_service, follow_redirects=False, timeout=10) as http:
        page = http.get("/console/login")
        assert "Sign in with Test IdP" in page.text
        start = http.get("/console/oidc/login", params={"next": "/v1/me"})
        assert start.status_code == 302
        authorize = urlsplit(start.headers["location"])
        assert f"{authorize.scheme}://{authorize.netloc}" == oidc.issuer
        query = parse_qs(authorize.query)
        assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
        assert query["state"][0] and query["nonce"][0]
        assert query["redirect_uri"] == [f"{sso_service}/console/oidc/callback"]
        back = http.get(start.headers["location"])  # the provider signs Bob in and sends him back
        callback = back.headers["location"]
        assert callback.startswith(f"{sso_service}/console/oidc/callback?code=")
        done = http.get(callback)
        assert done.status_code == 303, done.text
        assert done.headers["location"] == "/v1/me"
        cookie = done.headers["set-cookie"]
        assert "broadcaster_session=" in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
        me = http.get("/v1/me").json()
        assert me["via"] == "session"
        assert me["user"]["email"] == "bob@example.org" and me["user"]["roles"] == ["approver"]
        assert me["scopes"] == ["publish", "read"]
        assert me["actor"] == f"user:{me['user']['id']}"
    [token_request] = [p for name, p in oidc.requests if name == "token"]
    assert token_request["code_verifier"]  # PKCE: the provider checked it against the challenge


def test_roles_are_refreshed_from_the_claim_at_each_sign_in(sso_service: str, oidc) -> None:
    from broadcaster.fakes.oidc import TestUser

    @contextmanager
    def sign_in() -> Iterator[httpx.Client]:
        with httpx.Client(base_url=sso_service, follow_redirects=False, timeout=10) as http:
            _follow(http, "/console/oidc/login?next=/v1/me", "/v1/me")
            yield http

    oidc.user = TestUser(sub="carol-1", email="carol@example.org", groups=["comms-editors"])
    with sign_in() as http:
        assert http.get("/v1/me").json()["user"]["roles"] == ["editor"]
    oidc.user.groups = ["comms-editors", "it-admins"]
    with sign_in() as http:
        assert http.get("/v1/me").json()["user"]["roles"] == ["editor", "admin"]
        assert http.get("/v1/users").status_code == 200
    oidc.user.groups = ["nobody"]  # left every mapped group: refused, and the roles are gone
    with httpx.Client(base_url=sso_service, follow_redirects=False, timeout=10) as http:
        resp = _follow(http, "/console/oidc/login?next=/v1/me", "/console/login")
        assert resp.headers["location"].startswith("/console/login?error=sso")
        assert http.get("/v1/me").status_code == 401


def test_roles_from_the_userinfo_response_and_nothing_else(sso_service: str, oidc, db_url: str) -> None:
    """A provider that sends the groups only in its UserInfo response: the roles come from there, but who the
    person is comes from the signed ID token alone, and a UserInfo answer for another subject is refused
    (OpenID Connect Core 5.3.2)."""
    from broadcaster.fakes.oidc import TestUser

    oidc.user = TestUser(sub="dan-1", email="dan@example.org", groups=["comms-approvers"], groups_in_id_token=False)
    # the UserInfo answer also claims another address (verified): it must not change who signs in
    oidc.userinfo_extra = {"email": "admin@example.org", "email_verified": True}
    with httpx.Client(base_url=sso_service, follow_redirects=False, timeout=10) as http:
        _follow(http, "/console/oidc/login?next=/v1/me", "/v1/me")
        me = http.get("/v1/me").json()
        assert me["user"]["email"] == "dan@example.org" and me["user"]["roles"] == ["approver"]

    oidc.user = TestUser(sub="eve-1", email="eve@example.org", groups=["it-admins"], groups_in_id_token=False)
    oidc.userinfo_extra = {"sub": "someone-else"}
    with httpx.Client(base_url=sso_service, follow_redirects=False, timeout=10) as http:
        resp = _follow(http, "/console/oidc/login?next=/v1/me", "/console/login")
        assert resp.headers["location"].startswith("/console/login?error=sso")
        assert http.get("/v1/me").status_code == 401
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    with engine.connect() as conn:
        emails = set(conn.execute(text("SELECT email FROM users")).scalars())
        failures = conn.execute(text("SELECT detail FROM audit_log WHERE action = 'user.login_failed'")).scalars()
        details = [str(d) for d in failures]
    engine.dispose()
    assert "eve@example.org" not in emails and "admin@example.org" not in emails
    assert any("ValueError" in d for d in details), details


def test_callback_refuses_a_forged_state_and_a_missing_flow(sso_service: str, oidc) -> None:
    with httpx.Client(base_url=sso_service, follow_redirects=False, timeout=10) as http:
        # no flow cookie at all (e.g. a link from an attacker's page)
        resp = http.get("/console/oidc/callback", params={"code": "x", "state": "y"})
        assert resp.status_code == 303 and resp.headers["location"].startswith("/console/login?error=sso")
        # a real flow, but the state coming back is not the one sent
        start = http.get("/console/oidc/login")
        back = http.get(start.headers["location"]).headers["location"]
        query = parse_qs(urlsplit(back).query)
        resp = http.get("/console/oidc/callback", params={"code": query["code"][0], "state": "forged"})
        assert resp.headers["location"].startswith("/console/login?error=sso")
        assert "broadcaster_session" not in http.cookies
    assert not [p for name, p in oidc.requests if name == "token"]  # the code was never exchanged


def test_no_account_is_created_without_a_mapped_group(sso_service: str, oidc) -> None:
    from broadcaster.fakes.oidc import TestUser

    oidc.user = TestUser(sub="eve-1", email="eve@example.org", groups=["staff"])
    with httpx.Client(base_url=sso_service, follow_redirects=False, timeout=10) as http:
        resp = _follow(http, "/console/oidc/login", "/console/login")
        assert resp.headers["location"].startswith("/console/login?error=sso")
    from broadcaster.db import session_scope
    from broadcaster.users import service

    with session_scope() as session:
        assert service.by_email(session, "eve@example.org") is None


def test_without_a_role_map_an_existing_person_is_linked_and_keeps_their_roles(
    db_url: str, tmp_path: Path, oidc, make_user
) -> None:
    from broadcaster.fakes.oidc import TestUser

    uid = make_user("dora@example.org", "editor", "approver")
    oidc.user = TestUser(sub="dora-1", email="Dora@example.org", groups=["it-admins"])
    env = {**oidc.env(), "OIDC_ROLE_MAP": "", "OIDC_LINK_BY_EMAIL": "true"}  # the fake verifies every email
    with run_service(db_url, tmp_path, **env) as base:
        with httpx.Client(base_url=base, follow_redirects=False, timeout=10) as http:
            _follow(http, "/console/oidc/login?next=/v1/me", "/v1/me")
            me = http.get("/v1/me").json()
            assert me["actor"] == f"user:{uid}" and me["user"]["roles"] == ["editor", "approver"]
            assert me["user"]["sso_issuer"] == oidc.issuer
        oidc.user = TestUser(sub="frank-1", email="frank@example.org", groups=["it-admins"])
        with httpx.Client(base_url=base, follow_redirects=False, timeout=10) as http:
            resp = _follow(http, "/console/oidc/login", "/console/login")
            assert resp.headers["location"].startswith("/console/login?error=sso")  # nobody is created
        oidc.user = TestUser(sub="someone-else", email="dora@example.org")  # another identity, same email
        with httpx.Client(base_url=base, follow_redirects=False, timeout=10) as http:
            resp = _follow(http, "/console/oidc/login", "/console/login")
            assert resp.headers["location"].startswith("/console/login?error=sso")


# --- linking a new identity to an existing account by email (issue 19, item 5) ----------------------------


def _account(email: str) -> dict:
    from broadcaster.db import session_scope
    from broadcaster.models import ConsoleSession
    from broadcaster.users import service

    with session_scope() as session:
        user = service.by_email(session, email)
        assert user is not None
        sessions = session.scalars(select(ConsoleSession).where(ConsoleSession.user_id == user.id)).all()
        return {
            "id": user.id,
            "roles": list(user.roles),
            "oidc": (user.oidc_issuer, user.oidc_subject),
            "last_login_at": user.last_login_at,
            "sessions": len(sessions),
        }


def _audit(action: str) -> list[tuple[str, str, dict]]:
    from broadcaster.db import session_scope
    from broadcaster.models import AuditEntry

    with session_scope() as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))
        return [(r.actor, r.target_id, dict(r.detail or {})) for r in rows]


def _users() -> int:
    from broadcaster.db import session_scope
    from broadcaster.models import User

    with session_scope() as session:
        return len(session.scalars(select(User)).all())


def _refused_sign_in(base: str) -> str:
    """Sign in through the provider; assert it ends on the sign-in page with no session; that page's text."""
    with httpx.Client(base_url=base, follow_redirects=False, timeout=10) as http:
        resp = _follow(http, "/console/oidc/login?next=/v1/me", "/console/login")
        assert resp.headers["location"].startswith("/console/login?error=sso_link&next=/v1/me")
        assert "broadcaster_session" not in resp.headers.get("set-cookie", "")
        assert "broadcaster_session" not in http.cookies
        assert http.get("/v1/me").status_code == 401
        page = http.get(resp.headers["location"])
        assert page.status_code == 200
        return page.text


LINK_MESSAGE = "Single sign-on was not linked to the existing account with your email address"


def test_an_identity_without_email_verified_is_not_linked_to_the_admin(
    db_url: str, tmp_path: Path, oidc, make_user
) -> None:
    """The reproduction: a new identity whose ID token has no email_verified claim, carrying the admin's
    email, was signed in as the admin. Refused even with linking by email allowed; audited; the admin
    untouched."""
    from broadcaster.fakes.oidc import TestUser

    admin = make_user("admin@example.org", "admin")
    before = _account("admin@example.org")
    oidc.user = TestUser(sub="mallory-1", email="Admin@Example.org", groups=["it-admins"], email_verified=None)
    with run_service(db_url, tmp_path, **{**oidc.env(), "OIDC_LINK_BY_EMAIL": "true"}) as base:
        page = _refused_sign_in(base)
    assert LINK_MESSAGE in page and 'role="alert"' in page
    after = _account("admin@example.org")
    assert after == before and after["oidc"] == (None, None) and after["sessions"] == 0
    assert _users() == 1  # nobody created either
    [(actor, target, detail)] = _audit("user.sso_link_refused")
    assert actor == "ip:127.0.0.1" and target == str(admin)
    assert detail == {
        "reason": "the ID token has no email_verified claim",
        "issuer": oidc.issuer,
        "subject": "mallory-1",
        "email": "Admin@Example.org",
        "email_verified": "(missing)",
    }
    assert not _audit("user.login") and not _audit("user.sso_linked")


@pytest.mark.parametrize(
    ("verified", "reason"),
    [(False, "email_verified is 'False', not true"), ("true", "email_verified is 'true', not true")],
)
def test_an_identity_whose_email_is_not_verified_is_not_linked(
    db_url: str, tmp_path: Path, oidc, make_user, verified, reason
) -> None:
    """email_verified false (or the string "true", which is not JSON true): refused, not created either
    (the email is taken), and audited."""
    from broadcaster.fakes.oidc import TestUser

    uid = make_user("ed@example.org", "editor")
    oidc.user = TestUser(sub="ed-2", email="ed@example.org", groups=["comms-editors"], email_verified=verified)
    with run_service(db_url, tmp_path, **{**oidc.env(), "OIDC_LINK_BY_EMAIL": "true"}) as base:
        assert LINK_MESSAGE in _refused_sign_in(base)
    assert _account("ed@example.org")["oidc"] == (None, None) and _users() == 1
    [(_, target, detail)] = _audit("user.sso_link_refused")
    assert target == str(uid) and detail["reason"] == reason and detail["email_verified"] == verified


def test_a_verified_email_is_not_linked_unless_the_issuer_is_trusted_for_it(
    db_url: str, tmp_path: Path, oidc, make_user
) -> None:
    """The default: OIDC_LINK_BY_EMAIL off, so even email_verified: true does not link."""
    from broadcaster.fakes.oidc import TestUser

    uid = make_user("ed@example.org", "editor")
    oidc.user = TestUser(sub="ed-2", email="ed@example.org", groups=["comms-editors"], email_verified=True)
    with run_service(db_url, tmp_path, **oidc.env()) as base:
        assert LINK_MESSAGE in _refused_sign_in(base)
    assert _account("ed@example.org")["oidc"] == (None, None) and _users() == 1
    [(_, target, detail)] = _audit("user.sso_link_refused")
    assert target == str(uid) and detail["reason"] == "linking by email is off (OIDC_LINK_BY_EMAIL)"
    assert detail["email_verified"] is True


def test_a_verified_email_from_a_trusted_issuer_is_linked(db_url: str, tmp_path: Path, oidc, make_user) -> None:
    from broadcaster.fakes.oidc import TestUser

    uid = make_user("ed@example.org", "editor")
    oidc.user = TestUser(sub="ed-2", email="ed@example.org", groups=["comms-editors"], email_verified=True)
    with run_service(db_url, tmp_path, **{**oidc.env(), "OIDC_LINK_BY_EMAIL": "true"}) as base:
        for _ in range(2):  # linked once, then found by issuer and subject
            with httpx.Client(base_url=base, follow_redirects=False, timeout=10) as http:
                _follow(http, "/console/oidc/login?next=/v1/me", "/v1/me")
                assert http.get("/v1/me").json()["actor"] == f"user:{uid}"
    assert _account("ed@example.org")["oidc"] == (oidc.issuer, "ed-2") and _users() == 1
    assert _audit("user.sso_linked") == [(f"user:{uid}", str(uid), {"issuer": oidc.issuer, "subject": "ed-2"})]
    assert not _audit("user.sso_link_refused")


def test_a_new_identity_with_a_new_email_is_still_created_without_linking(db_url: str, tmp_path: Path, oidc) -> None:
    """Creation is unchanged by the linking rule: an email with no account, verified or not."""
    from broadcaster.fakes.oidc import TestUser

    oidc.user = TestUser(sub="nina-1", email="nina@example.org", groups=["comms-editors"], email_verified=None)
    with (
        run_service(db_url, tmp_path, **oidc.env()) as base,
        httpx.Client(base_url=base, follow_redirects=False, timeout=10) as http,
    ):
        _follow(http, "/console/oidc/login?next=/v1/me", "/v1/me")
        assert http.get("/v1/me").json()["user"]["email"] == "nina@example.org"
    assert _account("nina@example.org")["oidc"] == (oidc.issuer, "nina-1")
