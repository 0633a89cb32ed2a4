"""Role grants (issue 19, item 8): one admin alone cannot mint a second approver and approve their own request
at once, nor silently. Each door that makes a new approver (the API and the console creating or promoting a
person, the SSO role mapping, a new key with the publish scope) is tried by one admin: the approval is refused
with when it becomes possible, nothing reaches the fake provider but the e-mail to every admin, the grant is
audited; with APPROVER_GRANT_DELAY=0, or once the (moved) clock passes the delay, the same approval works."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.approving import confirm
from tests.core.helpers import assert_error
from tests.delivery.conftest import run_until_idle
from tests.provider_env import UNLIMITED_RATES, use_fake_provider
from tests.users.conftest import PASSWORD, session_csrf, sign_in
from typer.testing import CliRunner

from broadcaster import clock
from broadcaster.fakes.counting import accepted, per_recipient, sends

ROOT, ADA, SECOND = "root@example.org", "ada@example.org", "mallory@example.org"
CRITICAL = {"title": "Chemical leak", "category": "emergency", "severity": "critical"}
SUBSCRIBERS = 3


@pytest.fixture(autouse=True)
def wall_clock() -> Iterator[None]:
    yield
    clock.set_now(None)


@pytest.fixture
def fake(fake, db_url, monkeypatch):  # noqa: F811  (the module's fake provider, tests/conftest.py)
    return use_fake_provider(fake, monkeypatch, webhook=False, **UNLIMITED_RATES, SECRET_KEY="grants-test-secret")


def drain() -> None:
    run_until_idle(max_seconds=60)


def add_subscribers(n: int) -> None:
    """`n` subscribers of every category, each with a phone and a confirmed e-mail address."""
    from broadcaster.db import session_scope
    from broadcaster.models.delivery import Subscriber

    with session_scope() as session:
        for i in range(1, n + 1):
            session.add(Subscriber(phone=f"+1555000{i:04d}", email=f"s{i:04d}@example.org", email_confirmed=True))


def owned_key(user_id: int, *scopes: str) -> dict[str, str]:
    """Headers with a key owned by `user_id` (made directly: an existing key, not a grant)."""
    from broadcaster.db import session_scope
    from broadcaster.security import create_key

    with session_scope() as session:
        _, plaintext = create_key(session, f"laptop-{user_id}", list(scopes), owner_user_id=user_id)
    return {"Authorization": f"Bearer {plaintext}"}


def signed_in(app, email: str) -> tuple[TestClient, dict[str, str]]:
    """A new browser signed in to the console as `email`; the headers its pages' fetch() sends."""
    browser = TestClient(app)
    assert sign_in(browser, email).status_code == 303
    return browser, {"X-CSRF-Token": session_csrf(browser)}


@pytest.fixture
def scene(client, fake, make_user, emergency_category) -> SimpleNamespace:
    """Two admins (root acts alone, ada only watches), subscribers of `emergency`, and root's critical update
    waiting for a second person's approval."""
    root = make_user(ROOT, "admin")
    make_user(ADA, "admin")
    root_h = owned_key(root, "admin")
    add_subscribers(SUBSCRIBERS)
    incident = client.post("/v1/incidents", headers=root_h, json=CRITICAL | {"update": {"body": "Stay indoors."}})
    assert incident.status_code == 201, incident.text
    update_id = incident.json()["updates"][0]["id"]
    asked = client.post(f"/v1/updates/{update_id}/publish", headers=root_h)
    assert asked.status_code == 202, asked.text
    return SimpleNamespace(root=root, root_h=root_h, update_id=update_id, etag=asked.headers["ETag"])


def sso_sign_in(app, oidc) -> TestClient:
    """A new browser signed in through the test OpenID provider as its current user."""
    browser = TestClient(app)
    start = browser.get("/console/oidc/login", params={"next": "/v1/me"}, follow_redirects=False)
    assert start.status_code == 302, start.text
    back = httpx.get(start.headers["location"], follow_redirects=False, timeout=10)
    callback = back.headers["location"]
    assert callback.startswith("http://testserver/console/oidc/callback?")
    done = browser.get(callback.removeprefix("http://testserver"), follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/v1/me", done.text
    return browser


# --- one admin, four doors -----------------------------------------------------------------------------------


def by_console(app, client, scene, request) -> Callable[[dict[str, str]], Any]:
    """(a) root creates an approver account in the console (the API with root's session)."""
    root_browser, root_console = signed_in(app, ROOT)
    made = root_browser.post(
        "/v1/users", headers=root_console, json={"email": SECOND, "roles": ["approver"], "password": PASSWORD}
    )
    assert made.status_code == 201, made.text
    second, headers = signed_in(app, SECOND)
    return lambda extra: second.post(
        f"/v1/updates/{scene.update_id}/approve", json=confirm(scene.update_id), headers=headers | extra
    )


def by_promotion(app, client, scene, request) -> Callable[[dict[str, str]], Any]:
    """(b) root promotes an existing editor to approver through the API (root's own key)."""
    make_user = request.getfixturevalue("make_user")
    uid = make_user(SECOND, "editor")
    patched = client.patch(f"/v1/users/{uid}", headers=scene.root_h, json={"roles": ["editor", "approver"]})
    assert patched.status_code == 200, patched.text
    second, headers = signed_in(app, SECOND)
    return lambda extra: second.post(
        f"/v1/updates/{scene.update_id}/approve", json=confirm(scene.update_id), headers=headers | extra
    )


def by_sso(app, client, scene, request) -> Callable[[dict[str, str]], Any]:
    """(c) root, who runs the identity provider, puts a new identity in the approvers' group."""
    from broadcaster.fakes.oidc import TestUser

    oidc = request.getfixturevalue("oidc")
    oidc.user = TestUser(sub="mallory-1", email=SECOND, name="Mallory", groups=["comms-approvers"])
    second = sso_sign_in(app, oidc)
    headers = {"X-CSRF-Token": session_csrf(second)}
    return lambda extra: second.post(
        f"/v1/updates/{scene.update_id}/approve", json=confirm(scene.update_id), headers=headers | extra
    )


def by_key(app, client, scene, request) -> Callable[[dict[str, str]], Any]:
    """(d) root creates a key with the publish scope owned by nobody (`key:<name>`, not `user:<root>`)."""
    from broadcaster.cli import app as cli

    made = CliRunner().invoke(cli, ["keys", "create", "--name", "second", "--scopes", "read,publish"])
    assert made.exit_code == 0, made.output
    key = {"Authorization": f"Bearer {made.stdout.strip().splitlines()[0]}"}
    return lambda extra: client.post(
        f"/v1/updates/{scene.update_id}/approve", json=confirm(scene.update_id), headers=key | extra
    )


DOORS = {"console": by_console, "api": by_promotion, "sso": by_sso, "cli": by_key}
GRANTED = {"console": ["approver"], "api": ["approver"], "sso": ["approver"], "cli": ["publish"]}


def _provider_sends(fake) -> dict[str, int]:
    """Messages the fake provider received: texts, calls, and e-mails per recipient (SendGrid batches them)."""
    requests = fake.requests()
    out = {name: len(sends(requests, name)) for name in ("twilio-sms", "twilio-voice")}
    return out | {"sendgrid": sum(per_recipient(sends(requests, "sendgrid")).values())}


@pytest.mark.parametrize("then", ["clock_moved", "delay_off"])
@pytest.mark.parametrize("door", list(DOORS))
def test_one_admin_cannot_approve_their_own_request_with_a_new_approver(
    request,
    app,
    client,
    fake,
    scene,
    monkeypatch,
    door,
    then,
) -> None:
    if door == "sso":
        request.getfixturevalue("oidc")
    approve = DOORS[door](app, client, scene, request)

    # refused, saying when; the update still waits; nothing sent but the admins' notice
    refused = approve({"If-Match": scene.etag})
    body = assert_error(refused, 403, "approver_grant_delay", "Authorization")
    assert "may approve from" in body["detail"] and body["may_approve_from"], body
    assert "granted at" in body["detail"] and ("root@example.org" in body["detail"] or door in ("sso", "cli"))
    waiting = client.get(f"/v1/updates/{scene.update_id}", headers=scene.root_h).json()
    assert waiting["state"] == "pending_approval"
    drain()
    assert _provider_sends(fake) == {"twilio-sms": 0, "twilio-voice": 0, "sendgrid": 2}
    mails = accepted(sends(fake.requests("sendgrid"), "sendgrid"))
    assert per_recipient(mails) == Counter({ROOT: 1, ADA: 1})  # every admin, the one who granted too
    [mail] = mails
    text, subject = mail.json["content"][0]["value"], mail.json["subject"]
    assert GRANTED[door][0] in subject and "may approve from" in text and f"through the {door}" in text

    # audited: who granted, to whom, what, through which door
    entries = client.get("/v1/audit", headers=scene.root_h, params={"action": "role.grant"}).json()["items"]
    assert len(entries) == 1, entries
    detail = entries[0]["detail"]
    assert detail["via"] == door and detail["roles"] == GRANTED[door] and detail["may_approve_from"]
    assert sorted(detail["announced_to"]) == [ADA, ROOT]
    assert entries[0]["actor"] == {"console": f"user:{scene.root}", "api": f"user:{scene.root}"}.get(
        door, entries[0]["actor"]
    )

    # the rule is a delay, not a refusal: once it passed (or with it off) the same approval goes out
    if then == "clock_moved":
        clock.advance(timedelta(hours=1, seconds=1))
    else:
        from broadcaster.settings import get_settings

        monkeypatch.setenv("APPROVER_GRANT_DELAY", "0")
        get_settings.cache_clear()
    approved = approve({"If-Match": scene.etag})
    assert approved.status_code == 200, approved.text
    assert approved.json()["update"]["state"] == "published"
    drain()
    sent = _provider_sends(fake)
    assert sent["twilio-sms"] == SUBSCRIBERS and sent["twilio-voice"] == SUBSCRIBERS
    assert sent["sendgrid"] == 2 + SUBSCRIBERS


def test_the_announcement_is_queued_with_the_grant_and_survives_until_a_worker_runs(
    client,
    fake,
    scene,
) -> None:
    from broadcaster.db import session_scope
    from broadcaster.models.delivery import Delivery

    made = client.post("/v1/users", headers=scene.root_h, json={"email": SECOND, "roles": ["admin"]})
    assert made.status_code == 201, made.text
    with session_scope() as session:  # committed with the grant: a worker that starts later sends it
        queued = session.execute(select(Delivery.address, Delivery.status, Delivery.channel)).all()
    assert sorted(queued) == [(ADA, "pending", "email"), (SECOND, "pending", "email"), (ROOT, "pending", "email")]
    assert _provider_sends(fake)["sendgrid"] == 0
    fake.inject("sendgrid", 503, times=1)  # the first try fails: retried, never dropped
    drain()
    mails = accepted(sends(fake.requests("sendgrid"), "sendgrid"))
    assert per_recipient(mails) == Counter({ROOT: 1, ADA: 1, SECOND: 1})


# --- what is and is not a new approver -----------------------------------------------------------------------


def _wait(*, user_id: int | None = None, key_id: int | None = None):
    from broadcaster.db import session_scope
    from broadcaster.publishing.approvers import approval_wait
    from broadcaster.security import Principal

    with session_scope() as session:
        return approval_wait(session, Principal(key_id=key_id, name="x", scopes=frozenset(), user_id=user_id))


def _key_id(name: str) -> int:
    from broadcaster.db import session_scope
    from broadcaster.models import ApiKey

    with session_scope() as session:
        return session.scalars(select(ApiKey.id).where(ApiKey.name == name)).one()


def test_grants_before_any_admin_exists_take_effect_at_once(db_url) -> None:
    """A fresh install (the README tour: keys before any admin; then the first admin) has nobody to tell."""
    from broadcaster.cli import app as cli

    runner = CliRunner()
    for name in ("alice", "bob"):
        assert runner.invoke(cli, ["keys", "create", "--name", name, "--scopes", "read,publish"]).exit_code == 0
    first = runner.invoke(cli, ["users", "create", "--email", ROOT, "--role", "admin", "--sso-only"])
    assert first.exit_code == 0, first.output
    assert _wait(key_id=_key_id("bob")) is None and _wait(user_id=1) is None
    # with an admin now, the next key waits
    assert runner.invoke(cli, ["keys", "create", "--name", "carol", "--scopes", "publish"]).exit_code == 0
    wait = _wait(key_id=_key_id("carol"))
    assert wait is not None and wait.may_approve_from - wait.granted_at == timedelta(hours=1)
    assert "API key 'carol'" in wait.message() and "cli:" in wait.message()
    # a key that cannot approve is no grant
    assert runner.invoke(cli, ["keys", "create", "--name", "ops", "--scopes", "alerts,read"]).exit_code == 0
    assert _wait(key_id=_key_id("ops")) is None


def test_an_admin_alone_cannot_mint_an_approver_through_the_api(client, fake, make_user, emergency_category) -> None:
    """The first-set-up exception is the CLI's only: one admin alone, through the API, still makes a new approver
    wait (a default install has one admin; that admin must not be a second person for themself in the moment)."""
    root = make_user(ROOT, "admin")
    root_h = owned_key(root, "admin")
    made = client.post("/v1/users", headers=root_h, json={"email": SECOND, "roles": ["approver"], "password": PASSWORD})
    assert made.status_code == 201, made.text
    wait = _wait(user_id=made.json()["id"])
    assert wait is not None and wait.may_approve_from - wait.granted_at == timedelta(hours=1)


def test_what_counts_as_a_new_approver(client, make_user, admin) -> None:
    from broadcaster.db import session_scope
    from broadcaster.models import RoleGrant

    root = make_user(ROOT, "admin")
    alice = make_user("alice@example.org", "approver")
    ed = make_user("ed@example.org", "editor")
    root_h = owned_key(root, "admin")
    # an approver made admin too: announced, but she could approve before: no wait
    resp = client.patch(f"/v1/users/{alice}", headers=root_h, json={"roles": ["approver", "admin"]})
    assert resp.status_code == 200 and _wait(user_id=alice) is None
    # an editor's name changed: no grant at all
    assert client.patch(f"/v1/users/{ed}", headers=root_h, json={"name": "Ed"}).status_code == 200
    # an approver's password set by someone else: whoever set it could sign in as her
    bob = make_user("bob@example.org", "approver")
    assert (
        client.patch(f"/v1/users/{bob}", headers=root_h, json={"password": "a brand new password"}).status_code == 200
    )
    assert _wait(user_id=bob) is not None
    # ... but not an admin's change of their own, nor an editor's
    assert (
        client.patch(f"/v1/users/{root}", headers=root_h, json={"password": "a brand new password"}).status_code == 200
    )
    assert client.patch(f"/v1/users/{ed}", headers=root_h, json={"password": "a brand new password"}).status_code == 200
    assert _wait(user_id=root) is None and _wait(user_id=ed) is None
    # the editor promoted to admin: admin can approve, so he waits
    assert client.patch(f"/v1/users/{ed}", headers=root_h, json={"roles": ["admin"]}).status_code == 200
    assert _wait(user_id=ed) is not None
    with session_scope() as session:
        rows = session.execute(select(RoleGrant.kind, RoleGrant.target_id, RoleGrant.roles, RoleGrant.delays_approval))
        assert sorted(map(tuple, rows)) == sorted(
            [("roles", alice, ["admin"], False), ("password", bob, ["approver"], True), ("roles", ed, ["admin"], True)]
        )


def test_a_new_approver_waits_with_the_key_they_own_too(client, make_user, admin, emergency_category) -> None:
    """Their own key acts as them (`user:<id>`): it waits like their session."""
    root = make_user(ROOT, "admin")
    ed = make_user("ed@example.org", "editor")
    key_h = owned_key(ed, "read", "publish")  # made while ed could not approve
    promoted = client.patch(f"/v1/users/{ed}", headers=owned_key(root, "admin"), json={"roles": ["approver"]})
    assert promoted.status_code == 200
    incident = client.post("/v1/incidents", headers=admin, json=CRITICAL | {"update": {"body": "Stay indoors."}})
    update_id = incident.json()["updates"][0]["id"]
    asked = client.post(f"/v1/updates/{update_id}/publish", headers=admin)
    assert asked.status_code == 202
    refused = client.post(
        f"/v1/updates/{update_id}/approve", json=confirm(update_id), headers=key_h | {"If-Match": asked.headers["ETag"]}
    )
    assert_error(refused, 403, "approver_grant_delay")
    assert "the approver role to ed@example.org" in refused.json()["detail"]


# --- the console: the admins' notice, the waiting approver's -------------------------------------------------


def test_admins_see_the_grant_on_every_console_page_until_they_acknowledge_it(app, client, make_user, admin) -> None:
    root = make_user(ROOT, "admin")
    make_user(ADA, "admin")
    make_user("ed@example.org", "editor")
    made = client.post("/v1/users", headers=owned_key(root, "admin"), json={"email": SECOND, "roles": ["approver"]})
    assert made.status_code == 201
    ada, ada_h = signed_in(app, ADA)
    for path in ("/console/", "/console/channels", "/console/audit"):
        page = ada.get(path)
        assert page.status_code == 200
        assert "New approvers and admins" in page.text and f"the approver role to {SECOND}" in page.text
        assert "may approve from" in page.text and f"{ROOT} (user:{root})" in page.text
    editor, _ = signed_in(app, "ed@example.org")
    assert "New approvers and admins" not in editor.get("/console/").text  # admins only

    up_to = int(ada.get("/console/").text.split('data-up-to="', 1)[1].split('"', 1)[0])
    done = ada.post("/v1/role-grants/acknowledge", headers=ada_h, json={"up_to": up_to})
    assert done.status_code == 200 and done.json() == {"acknowledged_up_to": up_to}
    assert "New approvers and admins" not in ada.get("/console/").text
    root_browser, _ = signed_in(app, ROOT)
    assert "New approvers and admins" in root_browser.get("/console/").text  # each admin acknowledges for themself
    # a later grant shows again
    assert (
        client.post("/v1/users", headers=admin, json={"email": "x@example.org", "roles": ["admin"]}).status_code == 201
    )
    assert "the admin role to x@example.org" in ada.get("/console/").text
    assert f"the approver role to {SECOND}" not in ada.get("/console/").text
    # and after NOTICE_DAYS it is gone even unacknowledged
    clock.advance(timedelta(days=8))
    assert "New approvers and admins" not in root_browser.get("/console/").text


def test_acknowledge_needs_an_admin_person_and_good_input(app, client, make_user, admin, auth) -> None:
    root = make_user(ROOT, "admin")
    url = "/v1/role-grants/acknowledge"
    assert_error(client.post(url, json={"up_to": 1}), 401)
    assert_error(client.post(url, json={"up_to": 1}, headers=auth("read", "publish")), 403, field="Authorization")
    assert_error(client.post(url, json={"up_to": 1}, headers=admin), 403, field="Authorization")  # a key of nobody
    root_h = owned_key(root, "admin")
    assert_error(client.post(url, json={"up_to": -1}, headers=root_h), 422, field="up_to")
    assert_error(client.post(url, json={"up_to": 2**40}, headers=root_h), 422, field="up_to")
    assert_error(client.post(url, json={"up_to": 1, "all": True}, headers=root_h), 422, field="all")
    assert_error(client.post(url, json={}, headers=root_h), 422, field="up_to")
    browser, _ = signed_in(app, ROOT)
    assert_error(browser.post(url, json={"up_to": 1}), 403, "csrf_failed")
    assert client.post(url, json={"up_to": 99}, headers=root_h).json() == {"acknowledged_up_to": 0}  # none exist


def test_the_approvals_page_tells_a_waiting_approver_when(app, client, make_user) -> None:
    root = make_user(ROOT, "admin")
    ed = make_user("ed@example.org", "editor")
    assert (
        client.patch(f"/v1/users/{ed}", headers=owned_key(root, "admin"), json={"roles": ["approver"]}).status_code
        == 200
    )
    browser, _ = signed_in(app, "ed@example.org")
    page = browser.get("/console/approvals")
    assert page.status_code == 200 and "You cannot approve yet" in page.text and "may approve from" in page.text
    old_hand, _ = signed_in(app, ROOT)
    assert "You cannot approve yet" not in old_hand.get("/console/approvals").text


# --- upgrade and settings ------------------------------------------------------------------------------------


def test_accounts_and_keys_from_before_the_upgrade_approve_at_once(db_url) -> None:
    from alembic import command
    from sqlalchemy import create_engine, text

    from broadcaster.migrate import alembic_config, upgrade

    command.downgrade(alembic_config(db_url), "0001")
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO users (id, email, name, roles, active, created_at) "
                    "VALUES (7, 'old@example.org', 'Old', '[\"approver\"]', true, CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO api_keys (id, name, prefix, key_hash, scopes, created_at) "
                    "VALUES (9, 'old', 'abcd1234', 'x', '[\"publish\"]', CURRENT_TIMESTAMP)"
                )
            )
    finally:
        engine.dispose()
    upgrade(db_url)
    assert _wait(user_id=7) is None and _wait(key_id=9) is None


@pytest.mark.parametrize(
    ("raw", "expected"), [("PT2H", timedelta(hours=2)), ("90", timedelta(seconds=90)), ("0", timedelta(0))]
)
def test_the_delay_setting(monkeypatch, raw, expected) -> None:
    from broadcaster.settings import Settings

    monkeypatch.setenv("APPROVER_GRANT_DELAY", raw)
    assert Settings().approver_grant_delay == expected


def test_a_negative_delay_is_refused(monkeypatch) -> None:
    from pydantic import ValidationError

    from broadcaster.settings import Settings

    monkeypatch.setenv("APPROVER_GRANT_DELAY", "-5")
    with pytest.raises(ValidationError, match="approver_grant_delay"):
        Settings()


@pytest.mark.browser
def test_an_admin_acknowledges_the_notice_in_a_browser(browser, db_url, tmp_path, make_user) -> None:
    """The notice's button works with the console's scripts (no inline script under the CSP)."""
    from tests.public.servers import run_service

    root = make_user(ROOT, "admin")
    make_user(ADA, "admin")
    with run_service(db_url, tmp_path) as base:
        made = httpx.post(
            f"{base}/v1/users", headers=owned_key(root, "admin"), json={"email": SECOND, "roles": ["approver"]}
        )
        assert made.status_code == 201, made.text
        errors: list[str] = []
        page = browser.new_context().new_page()
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{base}/console/login?next=/console/")
        page.fill("#email", ADA)
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/console/")
        notice = page.locator("#role-grants")
        assert f"the approver role to {SECOND}" in notice.inner_text() and notice.is_visible()
        page.click("text=I have seen these")
        notice.wait_for(state="hidden")
        page.reload()
        assert page.locator("#role-grants").count() == 0
        assert [e for e in errors if not e.endswith("/favicon.ico")] == []
