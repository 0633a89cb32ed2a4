"""A scripted first-time-user run (issue 21): "post a critical update to every channel and get it approved",
counted in clicks and keystrokes, in a real Chromium against the service with its worker, the project's example
plan (examples/crisis-plan.yaml) and 31 residents, sending through the real SDKs to the fake provider.

The script acts as a person would and counts as it goes (`Person`): a click is a real mouse click; choosing in a
drop-down list counts two (open it, pick); typing counts one keystroke per character and a click to put the
cursor in the field unless it is already there. The page itself counts the trusted clicks it received
(sessionStorage, across page loads), and the two counts must agree, so the script cannot click anything it does
not count. Both people are already signed in to the console (signing in is not counted).

- The editor: from the incidents page to "Request approval"; at most 8 clicks besides typing the message.
- The approver: from the notification e-mail (its link, taken from the e-mail the fake SendGrid received) to
  "Approve and send"; at most 3 clicks.
Then every channel's messages are counted at the fake provider: 31 texts, 31 calls, 31 e-mails, the social
posts, the webhook and the banner. The figures are printed (run with -s) and quoted in docs/console.md:

    .venv/bin/python -m pytest -s -n 0 -p no:randomly tests/console/test_first_time_user.py -k sqlite
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.console.test_browser_flow import new_page, sign_in, submitted, wait_for
from tests.public.servers import run_service

from broadcaster.fakes.counting import accepted, per_recipient, sends

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_only]

PLAN = Path(__file__).resolve().parents[2] / "examples" / "crisis-plan.yaml"
RESIDENTS = 31
EDITOR, APPROVER = "erin@example.org", "alma@example.org"
TITLE = "Gas leak on Harbour Street"
MESSAGE = "Gas leak on Harbour Street. Leave the area now and follow police instructions."
EDITOR_CLICKS, APPROVER_CLICKS = 8, 3

#: the page counts the trusted clicks it receives, across page loads of the tab (sessionStorage)
COUNT_CLICKS = """
document.addEventListener("click", function (ev) {
  if (!ev.isTrusted) { return; }
  sessionStorage.setItem("clicks", String(Number(sessionStorage.getItem("clicks") || "0") + 1));
}, true);
"""


class Person:
    """Drives a page as a person would, counting clicks and keystrokes (see the module docstring)."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.clicks = 0
        self.choices = 0  # drop-down choices: two clicks each, none of which reaches the page as a click event
        self.keystrokes = 0
        self.message_keystrokes = 0

    def click(self, locator: Any) -> None:
        locator.click()
        self.clicks += 1

    def choose(self, locator: Any, value: str) -> None:
        locator.select_option(value)
        self.clicks += 2
        self.choices += 1

    def type(self, locator: Any, text: str, *, message: bool = False) -> None:
        if not locator.evaluate("e => e === document.activeElement"):
            self.click(locator)
        self.page.keyboard.type(text)
        if message:
            self.message_keystrokes += len(text)
        else:
            self.keystrokes += len(text)

    def page_counted(self) -> int:
        """The trusted clicks the pages of this tab received."""
        return int(self.page.evaluate("Number(sessionStorage.getItem('clicks') || '0')"))

    def agrees(self) -> None:
        assert self.page_counted() == self.clicks - 2 * self.choices, (self.page_counted(), self.clicks)


@pytest.fixture
def service(db_url: str, tmp_path: Path, fake_server: Any, make_user: Any, make_key: Any) -> Iterator[dict[str, Any]]:
    """The service with its worker, every adapter (webhook too) pointed at the fake; the example plan; an editor,
    an approver who asked for e-mail notices, an admin; 31 residents who follow Emergency by text, call and
    e-mail."""
    from broadcaster.db import session_scope
    from broadcaster.models import User
    from broadcaster.users import notices

    fake_server.reset()
    make_user(EDITOR, "editor", name="Erin Editor")
    alma = make_user(APPROVER, "approver", name="Alma Approver")
    with session_scope() as session:
        user = session.get(User, alma)
        assert user is not None
        notices.set_prefs(session, user, notices.Prefs(email=True), "test")
    env = fake_server.env(webhook=True) | {
        "WORKER_IN_PROCESS": "true",
        "WORKER_POLL_SECONDS": "0.05",
        "RETRY_BASE_SECONDS": "0.05",
        "RETRY_MAX_SECONDS": "0.2",
        "APPROVAL_SEVERITY": "critical",
        "APPROVER_GRANT_DELAY": "0",
        "APPROVAL_NOTIFY_POLL_SECONDS": "0.2",
        "SEND_HOLD_SECONDS": "1",
        "LOGIN_RATE_LIMIT_IP": "1000/minute",
        "LOGIN_RATE_LIMIT_ACCOUNT": "1000/minute",
    }
    with run_service(db_url, tmp_path, **env) as base:
        admin = {"Authorization": f"Bearer {make_key('admin')}"}
        with httpx.Client(base_url=base, headers=admin, timeout=10) as api:
            plan = api.put("/v1/routing-map", content=PLAN.read_bytes(), headers={"Content-Type": "application/yaml"})
            assert plan.status_code == 200, plan.text
            for i in range(RESIDENTS):
                body = {
                    "phone": f"+1555020{i:04d}",
                    "email": f"resident{i}@example.org",
                    "categories": ["emergency"],
                    "locale": "en",
                }
                made = api.post("/v1/subscribers", json=body)
                assert made.status_code == 201, made.text
        yield {"base": base, "fake": fake_server}


def test_post_a_critical_update_to_every_channel_and_get_it_approved(service, browser, db_url) -> None:
    base, fake = service["base"], service["fake"]

    # both people have the console open, signed in
    editor_page = new_page(browser, base)
    sign_in(editor_page, EDITOR)
    editor_page.add_init_script(COUNT_CLICKS)
    editor_page.reload()
    approver_page = new_page(browser, base)
    sign_in(approver_page, APPROVER)
    approver_page.add_init_script(COUNT_CLICKS)
    approver_page.reload()

    # --- the editor ---------------------------------------------------------------------------------------
    editor = Person(editor_page)
    editor.click(editor_page.get_by_role("link", name="Compose"))
    editor_page.wait_for_url("**/console/compose")
    editor.type(editor_page.get_by_label("Incident title"), TITLE)  # the title field has the cursor already
    assert editor_page.get_by_label("Category").input_value() == "emergency"  # the plan's first category
    editor.choose(editor_page.get_by_label("Severity"), "critical")
    editor.click(editor_page.get_by_label("All channels"))
    editor.type(editor_page.get_by_label("Message", exact=True), MESSAGE, message=True)
    editor_page.locator('.preview-card[data-channel="webhook"]').wait_for()
    publish = editor_page.locator("#publish")
    assert publish.inner_text() == "Request approval"
    editor.click(publish)
    submitted(editor_page, "**/console/incidents/*")
    editor.agrees()

    # --- the approver, from the notification e-mail --------------------------------------------------------
    def notice() -> str:
        for r in accepted(sends(fake.requests(), "sendgrid")):
            if APPROVER in str(r.json["personalizations"]):
                return str(r.json["content"][0]["value"])
        return ""

    mail = wait_for(notice)
    link = next(word for word in mail.split() if "/console/approvals#update-" in word)
    approver = Person(approver_page)
    approver_page.goto(link.strip("<>()."))  # the click on the link in the mail program
    approver.clicks += 1
    card = approver_page.locator(".approval").first
    confirm = card.locator(".confirm-input")
    confirm.wait_for()
    approver.type(confirm, TITLE)
    approve = card.get_by_role("button", name="Approve and send")
    wait_for(lambda: approve.is_enabled())
    approver.click(approve)
    approver_page.wait_for_url("**/console/broadcasts/*")
    assert approver.page_counted() == approver.clicks - 1  # the mail link was clicked outside the console
    wait_for(lambda: approver_page.locator("#state").inner_text() == "done", timeout=90)

    # --- what arrived, counted at the fake provider ------------------------------------------------------
    texts = per_recipient(accepted(sends(fake.requests(), "twilio-sms")))
    calls = per_recipient(accepted(sends(fake.requests(), "twilio-voice")))
    mails = per_recipient(accepted(sends(fake.requests(), "sendgrid")))
    residents = {f"resident{i}@example.org" for i in range(RESIDENTS)}
    assert len(texts) == RESIDENTS and set(texts.values()) == {1}, texts
    assert len(calls) == RESIDENTS and set(calls.values()) == {1}, calls
    assert {m for m in mails if m in residents} == residents
    assert all(mails[m] == 1 for m in residents)
    social = [r for name in ("x", "mastodon", "bluesky") for r in fake.requests(name) if r.method == "POST"]
    assert any(r.accepted for r in social), "no social post reached the fake"
    assert any(r.accepted and r.method == "POST" for r in fake.requests("webhook")), "no webhook call"
    banner = httpx.get(f"{base}/v1/banner", timeout=10)
    assert banner.status_code == 200 and TITLE in banner.text

    print(
        f"\nfirst-time user: editor {editor.clicks} clicks and {editor.keystrokes} keystrokes besides the "
        f"{editor.message_keystrokes}-character message; approver {approver.clicks} clicks (from the e-mail) and "
        f"{approver.keystrokes} keystrokes (the title typed to confirm); reached {len(texts)} texts, "
        f"{len(calls)} calls, {len(residents)} e-mails, social, webhook and the banner"
    )
    assert editor.clicks <= EDITOR_CLICKS, editor.clicks
    assert approver.clicks <= APPROVER_CLICKS, approver.clicks
    assert not editor_page.errors, editor_page.errors
    assert not approver_page.errors, approver_page.errors
