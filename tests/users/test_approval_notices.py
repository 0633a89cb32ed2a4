"""Approvals that reach people (issue 21): a request for approval tells every person who can approve it and
asked for notices, through the service's own adapters (counted at the fake provider, not in the database):
the link to the queue is in the message; someone who did not opt in, and the requester, get nothing; a critical
request nobody approves escalates to the admins after APPROVAL_ESCALATE_MINUTES (the clock is moved); a runner
that runs again (a restart, a second worker) tells nobody twice."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace

import pytest
from tests.core.helpers import assert_error
from tests.delivery.conftest import run_until_idle
from tests.provider_env import UNLIMITED_RATES, use_fake_provider
from tests.users.test_role_grants import owned_key

from broadcaster import clock
from broadcaster.fakes.counting import accepted, per_recipient, sends

REQUESTER, ALMA, BOB, ADA = "erin@example.org", "alma@example.org", "bob@example.org", "ada@example.org"
ALMA_PHONE, ADA_PHONE = "+15550107001", "+15550107002"
CRITICAL = {"title": "Gas leak on Harbour Street", "category": "emergency", "severity": "critical"}


@pytest.fixture(autouse=True)
def wall_clock() -> Iterator[None]:
    yield
    clock.set_now(None)


@pytest.fixture
def fake(fake, db_url, monkeypatch):  # noqa: F811  (the module's fake provider, tests/conftest.py)
    return use_fake_provider(
        fake, monkeypatch, webhook=False, **UNLIMITED_RATES, APPROVER_GRANT_DELAY="0", APPROVAL_ESCALATE_MINUTES="10"
    )


def tick() -> dict[str, int]:
    """One look of the approval-notice runner (what runs beside every worker)."""
    from broadcaster.users.notice_runner import ApprovalNoticeRunner

    return ApprovalNoticeRunner().run_once()


def delivered(fake) -> dict[str, Counter[str]]:
    """What reached the fake provider: e-mails and texts per recipient."""
    requests = fake.requests()
    return {
        "email": per_recipient(accepted(sends(requests, "sendgrid"))),
        "sms": per_recipient(accepted(sends(requests, "twilio-sms"))),
    }


def mails_to(fake, address: str) -> list[tuple[str, str]]:
    """(subject, text) of every e-mail the fake SendGrid accepted for `address`."""
    out = []
    for r in accepted(sends(fake.requests("sendgrid"), "sendgrid")):
        to = [t["email"] for p in r.json["personalizations"] for t in p["to"]]
        if address in to:
            out.append((r.json["subject"], r.json["content"][0]["value"]))
    return out


@pytest.fixture
def scene(client, fake, make_user, emergency_category) -> SimpleNamespace:
    """Erin (who asks), Alma (approver, e-mail and SMS), Bob (approver, no notices), Ada (admin, e-mail), each
    with their own key; Erin opted in too (she must not hear of her own request)."""
    ids = {
        "erin": make_user(REQUESTER, "editor", "approver", name="Erin Editor"),
        "alma": make_user(ALMA, "approver", name="Alma Approver"),
        "bob": make_user(BOB, "approver", name="Bob Approver"),
        "ada": make_user(ADA, "admin", name="Ada Admin"),
    }
    keys = {who: owned_key(uid, *(("admin",) if who == "ada" else ("read", "publish"))) for who, uid in ids.items()}
    keys["erin"] = owned_key(ids["erin"], "write", "publish", "read")
    choices = {
        "erin": {"email": True},
        "alma": {"email": True, "sms": ALMA_PHONE},
        "ada": {"email": True, "sms": None},
    }
    for who, body in choices.items():
        resp = client.put("/v1/users/me/notifications", headers=keys[who], json=body)
        assert resp.status_code == 200, resp.text
    return SimpleNamespace(ids=ids, keys=keys)


def request_approval(client, scene, **incident) -> int:
    made = client.post(
        "/v1/incidents",
        headers=scene.keys["erin"],
        json=(CRITICAL | incident) | {"update": {"body": "Leave the area now."}},
    )
    assert made.status_code == 201, made.text
    update_id = made.json()["updates"][0]["id"]
    asked = client.post(f"/v1/updates/{update_id}/publish", headers=scene.keys["erin"])
    assert asked.status_code == 202, asked.text
    return update_id


def test_an_opted_in_approver_is_told_with_the_link_and_nobody_else(client, fake, scene) -> None:
    update_id = request_approval(client, scene)
    assert tick() == {"told": 2, "escalated": 0}  # Alma and Ada (an admin can approve too); not Bob, not Erin
    run_until_idle()
    got = delivered(fake)
    assert got["email"] == Counter({ALMA: 1, ADA: 1})
    assert got["sms"] == Counter({ALMA_PHONE: 1})
    [(subject, text)] = mails_to(fake, ALMA)
    assert "Approval needed" in subject and CRITICAL["title"] in subject and "critical" in subject
    assert f"/console/approvals#update-{update_id}" in text
    assert "Erin Editor" in text and CRITICAL["title"] in text and "severity critical" in text
    [sms] = accepted(sends(fake.requests(), "twilio-sms"))
    assert f"/console/approvals#update-{update_id}" in sms.form_value("Body")

    # who can approve, for the editor: everyone but Erin, by name; how long it waited
    who = client.get(f"/v1/updates/{update_id}/approvers", headers=scene.keys["erin"])
    assert who.status_code == 200, who.text
    body = who.json()
    assert body["approvers"] == ["Ada Admin", "Alma Approver", "Bob Approver"]
    assert body["requested_by_name"] == "Erin Editor" and body["waited"] and body["escalated_at"] is None
    assert body["escalates_at"]


def test_a_new_approver_waiting_out_the_grant_delay_is_told_only_once_they_may_approve(
    client, fake, scene, make_user, monkeypatch
) -> None:
    from broadcaster.settings import get_settings

    monkeypatch.setenv("APPROVER_GRANT_DELAY", "3600")
    monkeypatch.setenv("APPROVAL_ESCALATE_MINUTES", "0")  # no escalation in the hour the clock moves
    get_settings.cache_clear()
    carl = make_user("carl@example.org", "editor", name="Carl New")
    promoted = client.patch(f"/v1/users/{carl}", headers=scene.keys["ada"], json={"roles": ["approver", "editor"]})
    assert promoted.status_code == 200, promoted.text
    carl_h = owned_key(carl, "read", "publish")
    assert client.put("/v1/users/me/notifications", headers=carl_h, json={"email": True}).status_code == 200
    update_id = request_approval(client, scene)
    tick()
    run_until_idle()
    assert not mails_to(fake, "carl@example.org") and len(mails_to(fake, ALMA)) == 1
    names = client.get(f"/v1/updates/{update_id}/approvers", headers=scene.keys["erin"]).json()["approvers"]
    assert "Carl New" not in names
    clock.advance(timedelta(hours=1, seconds=1))
    tick()
    run_until_idle()
    assert len(mails_to(fake, "carl@example.org")) == 1 and len(mails_to(fake, ALMA)) == 1


def test_nobody_is_told_twice_after_a_restart_or_by_a_second_runner(client, fake, scene) -> None:
    from broadcaster.db import session_scope
    from broadcaster.models.delivery import Delivery

    request_approval(client, scene)
    tick()
    with session_scope() as session:  # queued durably with the notice rows: a worker that starts later sends them
        assert session.query(Delivery).filter(Delivery.status == "pending").count() == 3
    assert delivered(fake)["email"] == Counter()
    fake.inject("sendgrid", 503, times=1)  # the first try fails: retried by the worker, never dropped
    tick()  # a second runner (or this one after a restart) finds everyone told
    run_until_idle()
    tick()
    run_until_idle()
    got = delivered(fake)
    assert got["email"] == Counter({ALMA: 1, ADA: 1}) and got["sms"] == Counter({ALMA_PHONE: 1})


def test_a_critical_request_nobody_approves_escalates_once(client, fake, scene) -> None:
    update_id = request_approval(client, scene)
    tick()
    run_until_idle()
    clock.advance(timedelta(minutes=9))
    assert tick() == {"told": 0, "escalated": 0}  # not yet
    clock.advance(timedelta(minutes=1, seconds=1))
    assert tick() == {"told": 2, "escalated": 1}
    assert tick() == {"told": 0, "escalated": 0}  # once
    run_until_idle()
    got = delivered(fake)
    assert got["email"] == Counter({ALMA: 2, ADA: 2})  # the request, then the escalation
    assert not mails_to(fake, BOB) and not mails_to(fake, REQUESTER)
    subject, text = mails_to(fake, ADA)[-1]
    assert subject.startswith("[") and "ESCALATED" in subject and f"#update-{update_id}" in text
    assert "after 10 minutes" in text

    # audited and shown: escalated to whom, when (admins first)
    entries = client.get("/v1/audit", headers=scene.keys["ada"], params={"action": "update.approval_escalated"})
    [entry] = entries.json()["items"]
    assert entry["detail"]["to"] == ["Ada Admin", "Alma Approver", "Bob Approver"]
    shown = client.get(f"/v1/updates/{update_id}/approvers", headers=scene.keys["erin"]).json()
    assert shown["escalated_at"] and shown["escalated_to"][0] == "Ada Admin" and shown["escalates_at"] is None


def test_rejected_then_requested_again_is_a_new_request(client, fake, scene) -> None:
    update_id = request_approval(client, scene)
    tick()
    rejected = client.post(f"/v1/updates/{update_id}/reject", headers=scene.keys["bob"], json={"comment": "Typo"})
    assert rejected.status_code == 200, rejected.text
    assert client.post(f"/v1/updates/{update_id}/publish", headers=scene.keys["erin"]).status_code == 202
    assert tick()["told"] == 2
    run_until_idle()
    assert delivered(fake)["email"] == Counter({ALMA: 2, ADA: 2})


def test_notification_settings_are_validated_and_personal(client, fake, scene, admin) -> None:
    h = scene.keys["alma"]
    got = client.get("/v1/users/me/notifications", headers=h).json()
    assert got == {
        "email": True,
        "sms": ALMA_PHONE,
        "webhook": None,
        "email_address": ALMA,
        "can_approve": True,
    }
    assert_error(client.put("/v1/users/me/notifications", headers=h, json={"sms": "555"}), 422, field="sms")
    assert_error(
        client.put("/v1/users/me/notifications", headers=h, json={"webhook": "ftp://x.example"}), 422, field="webhook"
    )
    assert_error(client.put("/v1/users/me/notifications", headers=h, json={"pager": True}), 422, field="pager")
    assert client.get("/v1/users/me/notifications", headers=h).json()["sms"] == ALMA_PHONE  # nothing half-written
    # a key that belongs to nobody has no notification settings
    assert_error(client.put("/v1/users/me/notifications", headers=admin, json={"email": True}), 403)
    changed = client.put("/v1/users/me/notifications", headers=h, json={"email": False, "sms": " +1 555 010 7001 "})
    assert changed.json()["sms"] == ALMA_PHONE and changed.json()["email"] is False
    entries = client.get("/v1/audit", headers=scene.keys["ada"], params={"action": "user.notifications"}).json()
    assert any(e["after"] == {"email": False, "sms": ALMA_PHONE, "webhook": None} for e in entries["items"])
    # the approvers endpoint: 404 for no update, 409 when nothing waits
    assert_error(client.get("/v1/updates/999999/approvers", headers=h), 404, field="update_id")


def test_a_personal_webhook_gets_the_notice_at_its_own_url(client, fake, scene, monkeypatch) -> None:
    from broadcaster.channels.registry import adapter_classes
    from broadcaster.settings import get_settings

    for key, value in fake.env(webhook=True).items():  # the webhook adapter is configured (WEBHOOK_URLS)
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    adapter_classes.cache_clear()
    hook = fake.webhook_url("bob")
    saved = client.put("/v1/users/me/notifications", headers=scene.keys["bob"], json={"webhook": hook})
    assert saved.status_code == 200 and saved.json()["webhook"] == hook
    update_id = request_approval(client, scene)
    tick()
    run_until_idle()
    posts = [r for r in fake.requests() if r.path.startswith("/hooks/")]
    assert [r.path for r in posts] == ["/hooks/bob"]  # only Bob's URL, not the service's public webhook
    assert f"/console/approvals#update-{update_id}" in posts[0].body.decode()


def test_the_console_count_is_what_each_person_can_act_on(app, client, fake, scene) -> None:
    from fastapi.testclient import TestClient
    from tests.users.conftest import sign_in

    update_id = request_approval(client, scene)

    def live(email: str) -> dict:
        with TestClient(app) as browser:
            assert sign_in(browser, email).status_code == 303
            page = browser.get("/console/notifications")
            assert page.status_code == 200 and "My notifications" in page.text
            resp = browser.get("/console/approvals/live.json")
            assert resp.status_code == 200 and resp.headers["cache-control"] == "no-store"
            return resp.json()

    alma = live(ALMA)
    assert alma["count"] == 1
    [item] = alma["items"]
    assert item["update_id"] == update_id and item["mine"] is False and item["link"].endswith(f"#update-{update_id}")
    assert item["title"] == CRITICAL["title"] and item["requested_by_name"] == "Erin Editor"
    erin = live(REQUESTER)  # her own request: in the list, not in her count
    assert erin["count"] == 0 and erin["items"][0]["mine"] is True
    with TestClient(app) as anonymous:
        assert anonymous.get("/console/approvals/live.json", follow_redirects=False).status_code in (303, 307, 401)
