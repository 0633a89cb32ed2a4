"""Approvals that reach people (issue 21) in a real browser, against the service with its worker and the
approval-notice runner beside it, sending through the real SDKs to the fake provider.

An approver saves "e-mail me" under My notifications and waits on the (empty) approvals page; an editor asks for
approval: without a reload, the approver's navigation count shows 1, the page announces the request, and its
card appears in the queue with its preview; the e-mail with the link reaches the fake SendGrid (not the
requester's, not an approver who did not opt in). The editor's incident page names who can approve and how long
it waited; nobody approves, so it escalates and both pages say to whom and when. A rejection makes the card
disappear from another approver's open queue and the count go away. axe-core and 375 px on the new screens;
screenshots docs/screenshots/approval-notice-*.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.console.test_browser_flow import check_accessibility, new_page, shoot, sign_in, wait_for
from tests.public.servers import run_service

from broadcaster.fakes.counting import accepted, per_recipient, sends

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_only]

EDITOR, ALMA, BOB, ADA = "erin@example.org", "alma@example.org", "bob@example.org", "ada@example.org"
TITLE = "Water main burst on Mill Road"


@pytest.fixture
def service(db_url: str, tmp_path: Path, fake_server: Any, make_user: Any, make_key: Any) -> Iterator[dict[str, Any]]:
    """The service with its worker; an editor, two approvers and an admin (the admin and the editor asked for
    e-mail notices; the editor must never get one for her own request); a category."""
    from importlib.metadata import entry_points

    from broadcaster.db import session_scope
    from broadcaster.models import User
    from broadcaster.security import create_key
    from broadcaster.users import notices

    if "users" not in {ep.name for ep in entry_points(group="broadcaster.hooks")}:
        pytest.fail("the approval-notice runner is not wired: the package metadata is stale; run pip install -e .")
    fake_server.reset()
    ids = {
        "erin": make_user(EDITOR, "editor", name="Erin Editor"),
        "alma": make_user(ALMA, "approver", name="Alma Approver"),
        "bob": make_user(BOB, "approver", name="Bob Approver"),
        "ada": make_user(ADA, "admin", name="Ada Admin"),
    }
    with session_scope() as session:
        for who in ("erin", "ada"):
            user = session.get(User, ids[who])
            assert user is not None
            notices.set_prefs(session, user, notices.Prefs(email=True), "test")
        _, erin_key = create_key(session, "erin-laptop", ["read", "write"], owner_user_id=ids["erin"])
    env = fake_server.env() | {
        "WORKER_IN_PROCESS": "true",
        "WORKER_POLL_SECONDS": "0.05",
        "RETRY_BASE_SECONDS": "0.05",
        "APPROVAL_SEVERITY": "critical",
        "APPROVER_GRANT_DELAY": "0",
        "APPROVAL_NOTIFY_POLL_SECONDS": "0.2",
        "APPROVAL_ESCALATE_MINUTES": "0.25",  # 15 s: the escalation shows while the test watches
        "LOGIN_RATE_LIMIT_IP": "1000/minute",
        "LOGIN_RATE_LIMIT_ACCOUNT": "1000/minute",
    }
    with run_service(db_url, tmp_path, **env) as base:
        admin = {"Authorization": f"Bearer {make_key('admin')}"}
        with httpx.Client(base_url=base, headers=admin, timeout=10) as api:
            resp = api.post(
                "/v1/categories",
                json={"slug": "utilities", "name": "Utilities", "channels": {"critical": ["email"]}},
            )
            assert resp.status_code == 201, resp.text
        yield {"base": base, "fake": fake_server, "erin": {"Authorization": f"Bearer {erin_key}"}}


def mails(fake: Any) -> list[Any]:
    return accepted(sends(fake.requests(), "sendgrid"))


def test_the_approver_hears_of_the_request_live_and_the_editor_sees_who_can_approve(service, browser, db_url) -> None:
    base, fake = service["base"], service["fake"]
    write = db_url.startswith("sqlite")

    # Alma asks for e-mail notices in the console, then waits on the empty queue
    alma = new_page(browser, base)
    sign_in(alma, ALMA)
    alma.get_by_role("link", name="My notifications").click()
    alma.get_by_label(f"E-mail to {ALMA}").check()
    alma.get_by_label("Text message (SMS) to").fill("555")
    alma.get_by_role("button", name="Save").click()
    wait_for(lambda: "sms" in alma.locator("#notifications-form .error-box").inner_text())
    assert alma.get_by_label("Text message (SMS) to").get_attribute("aria-invalid") == "true"
    alma.get_by_label("Text message (SMS) to").fill("")
    alma.get_by_role("button", name="Save").click()
    wait_for(lambda: alma.locator(".save-status").inner_text() == "Saved.")
    check_accessibility(alma, "notifications")
    shoot(alma, "approval-notice-settings", write=write)

    alma.get_by_role("link", name="Approvals").click()
    alma.wait_for_url("**/console/approvals")
    assert "Nothing is waiting" in alma.locator("main").inner_text()
    assert alma.locator("#approvals-badge").is_hidden()
    alma.locator("h1").click()  # an interaction: the browser now lets the page beep
    alma.evaluate("window.stillTheSamePage = true")

    # Bob (no notices) waits on his queue too
    bob = new_page(browser, base)
    sign_in(bob, BOB)
    bob.goto("/console/approvals")
    bob.evaluate("window.stillTheSamePage = true")

    # Erin asks for approval of a critical update (her key: the API the console uses)
    with httpx.Client(base_url=base, headers=service["erin"], timeout=10) as api:
        made = api.post(
            "/v1/incidents",
            json={
                "title": TITLE,
                "category": "utilities",
                "severity": "critical",
                "update": {"body": "No tap water on Mill Road until tonight."},
            },
        )
        assert made.status_code == 201, made.text
        update_id, incident_id = made.json()["updates"][0]["id"], made.json()["id"]
        asked = api.post(f"/v1/updates/{update_id}/publish")
        assert asked.status_code == 202, asked.text

    # without a reload: the count, the announcement, the card with its preview
    wait_for(lambda: alma.locator("#approvals-badge").is_visible())
    assert alma.locator("#approvals-badge").inner_text().startswith("1")
    # the link keeps its name ("Approvals"); the count is its description
    nav_link = alma.get_by_role("link", name="Approvals", exact=True)
    assert nav_link.get_attribute("aria-describedby") == "approvals-badge"
    wait_for(lambda: TITLE in alma.locator("#approval-announce").inner_text())
    assert "critical" in alma.locator("#approval-announce").inner_text()
    assert "Erin Editor" in alma.locator("#approval-announce").inner_text()
    card = alma.locator(f"#approval-{update_id}")
    card.wait_for()
    wait_for(lambda: "Preview loaded" in card.locator(".approval-status").inner_text())
    # the card added live has its send summary too: a critical send waits for the typed title
    assert card.get_by_role("button", name="Approve and send").is_disabled()
    card.locator(".confirm-input").fill(TITLE)
    assert card.get_by_role("button", name="Approve and send").is_enabled()
    wait_for(lambda: "Who can approve: Ada Admin, Alma Approver, Bob Approver" in card.inner_text())
    assert alma.evaluate("window.stillTheSamePage") is True
    assert alma.evaluate("document.title").startswith("(1) ")
    wait_for(lambda: bob.locator(f"#approval-{update_id}").count() == 1)

    # the e-mails at the fake provider: Alma and Ada, with the link; not Erin (she asked), not Bob (no notices)
    wait_for(lambda: per_recipient(mails(fake)).get(ALMA) == 1 and per_recipient(mails(fake)).get(ADA) == 1)
    to_alma = [r for r in mails(fake) if ALMA in str(r.json["personalizations"])]
    assert f"/console/approvals#update-{update_id}" in to_alma[0].json["content"][0]["value"]
    assert set(per_recipient(mails(fake))) == {ALMA, ADA}

    # the link from the e-mail opens the queue at that card
    alma.goto(f"/console/approvals#update-{update_id}")
    wait_for(lambda: alma.evaluate("document.activeElement && document.activeElement.id") == f"approval-{update_id}")

    # the editor sees who can approve and how long it waited
    erin = new_page(browser, base)
    sign_in(erin, EDITOR)
    erin.goto(f"/console/incidents/{incident_id}")
    line = erin.locator(f"#approvers-{update_id}")
    assert "Who can approve: Ada Admin, Alma Approver, Bob Approver" in line.inner_text()
    assert line.inner_text().startswith("Waiting ")
    check_accessibility(erin, "incident with approvers")
    shoot(erin, "approval-notice-editor", write=write)

    # nobody approves: it escalates, and both pages say so without a reload
    wait_for(lambda: "Escalated to Ada Admin" in line.inner_text(), timeout=60)
    wait_for(lambda: "Escalated to Ada Admin" in alma.locator(f"#approval-{update_id}").inner_text())
    wait_for(lambda: per_recipient(mails(fake)).get(ADA) == 2)
    assert "ESCALATED" in [r for r in mails(fake) if ADA in str(r.json["personalizations"])][-1].json["subject"]
    alma.locator("h1").click()
    check_accessibility(alma, "approvals with a live request")
    shoot(alma, "approval-notice-queue", write=write)

    # Alma rejects: the card leaves Bob's open queue and his count goes
    alma.locator(f"#reject-comment-{update_id}").fill("The road name is wrong.")
    alma.locator(f"#approval-{update_id} .reject").click()
    wait_for(lambda: "Rejected" in alma.locator(f"#approval-{update_id} .approval-status").inner_text())
    wait_for(lambda: bob.locator(f"#approval-{update_id}").count() == 0)
    wait_for(lambda: bob.locator("#approvals-badge").is_hidden())
    assert bob.evaluate("window.stillTheSamePage") is True
    assert "no longer waits" in bob.locator("#approval-announce").inner_text()
    for page in (alma, bob, erin):
        assert page.errors == [], page.errors  # type: ignore[attr-defined]
