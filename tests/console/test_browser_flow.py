"""The console in a real browser (headless Debian Chromium driven by Playwright) against a real uvicorn server
with the in-process worker, sending through the real SDKs to the fake provider server.

Walks issue 11's "Done when": an editor signs in, composes a critical update and sees each channel's
preview, requests approval; an approver signs in, approves, and watches the live counters while the deliveries
reach the fake provider; the editor corrects it in one action and the correction reaches exactly the original
audience. Also: the author cannot approve their own update, a TEST send reaches only the test group, an edit
voids a pending approval (shown in the console), axe-core finds no serious/critical violations, no horizontal
scroll at 375 px, and screenshots of the main screens at 1280 and 375 px go to docs/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.public.servers import run_service
from tests.public.servers import wait_for as _wait_for
from tests.users.conftest import PASSWORD

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 800}
MESSAGE = "A gas leak on Harbour Street. Leave the area now and follow police instructions."
ORIGINAL_PHONES = ["+15550100001", "+15550100002", "+15550100003"]
TEST_PHONE = "+15550109999"
#: the person who composes live updates. The server lets only the publish scope (approver role) send live or
#: request approval (an editor-only person drafts and test-sends), so the author holds both roles; the approver
#: who approves is another person with the approver role only.
AUTHOR = "author@example.org"
AUTHOR_ROLES = ("editor",)
LATE_PHONE = "+15550100004"


def wait_for(predicate: Any, timeout: float = 30.0) -> Any:
    """Poll until truthy (a generous bound: the box is shared and the browser, server and worker compete)."""
    return _wait_for(predicate, timeout=timeout)


@pytest.fixture
def service(
    db_url: str, tmp_path: Path, fake_server: Any, make_user: Any, make_key: Any, oidc: Any
) -> Iterator[dict[str, Any]]:
    """The service with its worker, every adapter pointed at the fake, single sign-on through the test OpenID
    provider; people, a category and subscribers."""
    fake_server.reset()
    make_user("editor@example.org", "editor", name="Eddie Editor")
    make_user("approver@example.org", "approver", name="Alma Approver")
    make_user("both@example.org", "editor", "approver", name="Bo Both")
    make_user(AUTHOR, *AUTHOR_ROLES, name="Erin Author")
    make_user("admin@example.org", "admin", name="Ada Admin")
    env = fake_server.env() | {
        "WORKER_IN_PROCESS": "true",
        "WORKER_POLL_SECONDS": "0.05",
        "WORKER_LOOKUP_DELAY_SECONDS": "0.2",
        "RETRY_BASE_SECONDS": "0.05",
        "RETRY_MAX_SECONDS": "0.2",
        "APPROVAL_SEVERITY": "critical",
        "LOGIN_RATE_LIMIT_IP": "1000/minute",
        "LOGIN_RATE_LIMIT_ACCOUNT": "1000/minute",
        "OIDC_LINK_BY_EMAIL": "true",  # Alma's SSO identity links to her account (the fake verifies emails)
    }
    with run_service(db_url, tmp_path, **env) as base:
        admin = {"Authorization": f"Bearer {make_key('admin')}"}
        with httpx.Client(base_url=base, headers=admin, timeout=10) as api:
            resp = api.post(
                "/v1/categories",
                json={
                    "slug": "emergency",
                    "name": "Emergency",
                    "contact": {"phone": "+15551234567"},
                    "channels": {"critical": ["sms", "email", "social", "banner"], "major": ["sms", "banner"]},
                },
            )
            assert resp.status_code == 201, resp.text
            for i, phone in enumerate(ORIGINAL_PHONES):
                body = {"phone": phone, "email": f"r{i}@example.org", "categories": ["emergency"]}
                assert api.post("/v1/subscribers", json=body).status_code == 201
            test = {"phone": TEST_PHONE, "name": "Test phone", "categories": ["emergency"], "test_group": True}
            assert api.post("/v1/subscribers", json=test).status_code == 201
        yield {"base": base, "admin": admin, "fake": fake_server}


def sms_to(fake: Any) -> list[str]:
    """The numbers the fake Twilio accepted messages for (in arrival order)."""
    return [r.form_value("To") for r in fake.requests("twilio") if r.path.endswith("/Messages.json") and r.accepted]


def new_page(browser: Any, base: str, viewport: dict[str, int] = DESKTOP) -> Any:
    context = browser.new_context(base_url=base, viewport=viewport)
    page = context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    # script errors and CSP refusals; HTTP errors the page shows on purpose (a 422 from a validation) are not
    page.on(
        "console",
        lambda msg: (
            page.errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource")
            else None
        ),
    )
    return page


def sign_in(page: Any, email: str) -> None:
    page.goto("/console/")
    assert "/console/login" in page.url
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console/")


def check_accessibility(page: Any, name: str) -> None:
    """axe-core (bundled by axe-playwright-python) in this page: no serious or critical violation."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    bad = [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]
    assert not bad, f"{name}: " + "; ".join(f"{v['id']}: {[n['target'] for n in v['nodes']][:3]}" for v in bad)


def shoot(page: Any, name: str, *, write: bool) -> None:
    """Screenshots at 1280 and 375 px (viewport only: small PNGs), and no horizontal scroll on the phone."""
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.wait_for_timeout(150)  # let the layout settle after the resize (not an assertion on timing)
        if label == "phone":
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            wide = page.evaluate(
                "Array.from(document.querySelectorAll('body *')).filter(e => e.getBoundingClientRect().right > "
                "window.innerWidth + 1).slice(-3).map(e => e.tagName + '.' + e.className + ': ' + "
                "(e.textContent || '').slice(0, 40))"
            )
            assert overflow <= 0, f"{name}: {overflow}px of horizontal scroll at 375 px: {wide}"
        if write:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"))
    page.set_viewport_size(DESKTOP)


def submitted(page: Any, url_glob: str) -> None:
    """Wait for the compose form to navigate to `url_glob`; fail with the form's error if it shows one."""
    error = page.locator("#form-error")

    def outcome() -> str:
        if error.is_visible():
            raise AssertionError(f"the form shows an error: {error.inner_text()}")
        return "navigated" if "/console/compose" not in page.url else ""

    wait_for(outcome, timeout=30)
    page.wait_for_url(url_glob)


def compose_critical(page: Any, title: str, message: str = MESSAGE) -> None:
    page.get_by_role("link", name="Compose").click()
    page.get_by_label("Incident title").fill(title)
    page.get_by_label("Category").select_option("emergency")
    page.get_by_label("Severity").select_option("critical")
    page.get_by_label("Message", exact=True).fill(message)
    page.get_by_label("Summary").fill("Gas leak: leave Harbour Street now")
    # channels come from the routing map for emergency/critical
    for name in ("sms", "email", "social", "banner"):
        assert page.locator(f"#ch-{name}").is_checked()
    page.locator('.preview-card[data-channel="sms"]').wait_for()


def test_whole_flow_editor_composes_approver_approves_editor_corrects(service, browser, db_url, oidc) -> None:
    base, fake = service["base"], service["fake"]
    write = db_url.startswith("sqlite")
    editor = new_page(browser, base)
    sign_in(editor, AUTHOR)

    # 1. compose a critical update and see every channel's preview
    compose_critical(editor, "Gas leak on Harbour Street")
    sms = editor.locator('.preview-card[data-channel="sms"]')
    wait_for(lambda: "GSM-7" in sms.inner_text())
    assert "segment" in sms.inner_text()
    assert "Harbour Street" in sms.locator("pre").inner_text()
    email = editor.locator('.preview-card[data-channel="email"]')
    assert "Subject:" in email.inner_text()
    assert email.locator("iframe.email-html").get_attribute("sandbox") == ""
    for social in ("x", "mastodon", "bluesky"):
        card = editor.locator(f'.preview-card[data-channel="{social}"], .preview-card[data-channel="social"]')
        assert card.count() >= 1
    assert editor.locator('.preview-card[data-channel="mastodon"] .counts').inner_text().endswith("characters")
    banner = editor.locator('.preview-card[data-channel="banner"] .bc-banner')
    assert "Gas leak on Harbour Street" in banner.inner_text()
    assert editor.locator('.preview-card[data-channel="status-page"]').count() == 1
    wait_for(lambda: editor.locator("#audience-sizes tr").count() >= 4)
    publish = editor.locator("#publish")
    assert publish.inner_text() == "Request approval"
    check_accessibility(editor, "compose")
    shoot(editor, "compose", write=write)

    # 2. request approval
    publish.click()
    submitted(editor, "**/console/incidents/*")
    incident_url = editor.url.split("?")[0]
    assert "Waiting for a second person's approval" in editor.locator("#timeline").inner_text()
    check_accessibility(editor, "incident")
    shoot(editor, "incident", write=write)
    assert sms_to(fake) == []

    # 3. an approver signs in, sees the same preview, approves and watches the counters move
    from broadcaster.fakes.oidc import TestUser

    oidc.user = TestUser(
        sub="alma-sso", email="approver@example.org", name="Alma Approver", groups=["comms-approvers"]
    )  # her account exists (an approver for long): SSO links to it, no new grant
    approver = new_page(browser, base)
    approver.goto("/console/")
    approver.get_by_text("Sign in with Test IdP").click()  # single sign-on: roles from the provider's groups
    approver.wait_for_url("**/console/")
    approver.get_by_role("link", name="Approvals", exact=True).click()
    item = approver.locator(".approval").first
    item.locator('.preview-card[data-channel="sms"]').wait_for()
    assert "Harbour Street" in item.locator('.preview-card[data-channel="sms"] pre').inner_text()
    approve = item.get_by_role("button", name="Approve and send")
    wait_for(lambda: approve.is_enabled())
    check_accessibility(approver, "approvals")
    shoot(approver, "approvals", write=write)
    approve.click()
    approver.wait_for_url("**/console/broadcasts/*")
    approver.evaluate("window.__same_page = true")
    seen: set[str] = set()

    def finished() -> bool:
        seen.add(approver.locator("#finished").inner_text())
        return approver.locator("#state").inner_text() == "done"

    wait_for(finished, timeout=60)
    assert approver.evaluate("window.__same_page") is True  # the counters moved without a reload
    total = int(approver.locator("#total").inner_text())
    assert int(approver.locator("#finished").inner_text()) == total > 0
    assert len(seen) >= 1
    assert sorted(sms_to(fake)) == sorted([*ORIGINAL_PHONES, TEST_PHONE])  # the category's subscribers
    assert approver.locator('#report-rows tr[data-channel="sms"] .sent, #report-rows tr[data-channel="sms"] .delivered')
    wait_for(lambda: approver.locator("#chart svg").count() == 1)
    check_accessibility(approver, "broadcast")
    shoot(approver, "broadcast", write=write)

    # a new subscriber joins after the original went out: the correction must not reach them
    with httpx.Client(base_url=base, headers=service["admin"]) as api:
        late = {"phone": LATE_PHONE, "categories": ["emergency"]}
        assert api.post("/v1/subscribers", json=late).status_code == 201

    # 4. the editor corrects it in one action (pre-filled), an approver approves, the original audience gets it
    editor.goto(incident_url)
    editor.locator("a[id^=correct-]").first.click()
    editor.wait_for_url("**/console/compose?corrects=*")
    body = editor.get_by_label("Message", exact=True)
    assert body.input_value() == MESSAGE
    body.fill(MESSAGE.replace("Harbour Street", "Harbour Road"))
    editor.locator('.preview-card[data-channel="sms"]').wait_for()
    wait_for(lambda: "Harbour Road" in editor.locator('.preview-card[data-channel="sms"] pre').inner_text())
    editor.locator("#publish").click()
    submitted(editor, "**/console/incidents/*")
    before = len(sms_to(fake))
    approver.goto("/console/approvals")
    item = approver.locator(".approval").first
    assert "Harbour Road" in item.inner_text()
    approve = item.get_by_role("button", name="Approve and send")
    wait_for(lambda: approve.is_enabled())
    approve.click()
    approver.wait_for_url("**/console/broadcasts/*")
    wait_for(lambda: approver.locator("#state").inner_text() == "done", timeout=60)
    correction = sms_to(fake)[before:]
    assert sorted(correction) == sorted([*ORIGINAL_PHONES, TEST_PHONE])  # exactly the original audience
    editor.goto(incident_url)
    assert "correction" in editor.locator("#timeline").inner_text()
    assert not editor.errors, editor.errors
    assert not approver.errors, approver.errors


def test_author_cannot_approve_own_update(service, browser) -> None:
    base = service["base"]
    both = new_page(browser, base)
    sign_in(both, "both@example.org")
    compose_critical(both, "Own request")
    both.locator("#publish").click()
    submitted(both, "**/console/incidents/*")
    both.get_by_role("link", name="Approvals", exact=True).click()
    item = both.locator(".approval").first
    item.locator('.preview-card[data-channel="sms"]').wait_for()
    assert item.get_by_role("button", name="Approve and send").count() == 0
    assert "another approver must approve it" in item.inner_text()
    update_id = item.get_attribute("data-update-id")
    # and the server refuses it anyway (the console's own fetch path: session cookie + CSRF token)
    answer = both.evaluate(
        """async (id) => {
            const p = await BC.api("POST", "/v1/updates/" + id + "/preview");
            const r = await BC.api("POST", "/v1/updates/" + id + "/approve", null,
                                   {headers: {"If-Match": p.headers.get("ETag")}});
            return [r.status, r.data.error];
        }""",
        update_id,
    )
    assert answer[0] == 403, answer
    assert sms_to(service["fake"]) == []


def test_test_send_reaches_only_the_test_group(service, browser, db_url) -> None:
    base, fake = service["base"], service["fake"]
    editor = new_page(browser, base)
    sign_in(editor, "editor@example.org")
    nav = editor.locator('nav[aria-label="Console"]')
    assert nav.get_by_role("link", name="Approvals", exact=True).count() == 0  # an editor has no approvals queue
    compose_critical(editor, "Drill: gas leak")
    publish = editor.locator("#publish")  # an editor-only person cannot send live: only ask an approver
    assert publish.inner_text() == "Request approval"
    assert "An approver must approve" in editor.locator("#publish-help").inner_text()
    editor.get_by_role("button", name="Test send (test group only)").click()
    link = editor.locator("#form-status a")
    link.wait_for()
    assert link.inner_text().startswith("TEST broadcast")
    link.click()
    editor.wait_for_url("**/console/broadcasts/*")
    assert "TEST" in editor.locator("h1").inner_text()
    assert editor.locator(".test-banner").count() == 1
    wait_for(lambda: editor.locator("#state").inner_text() == "done", timeout=60)
    assert sms_to(fake) == [TEST_PHONE]
    [message] = [r for r in fake.requests("twilio") if r.path.endswith("/Messages.json")]
    assert "TEST" in (message.form_value("Body") or "")
    shoot(editor, "test-broadcast", write=db_url.startswith("sqlite"))


def test_edit_voids_a_pending_approval_and_the_console_says_so(service, browser) -> None:
    base = service["base"]
    editor = new_page(browser, base)
    sign_in(editor, AUTHOR)
    compose_critical(editor, "Boil water notice")
    editor.locator("#publish").click()
    submitted(editor, "**/console/incidents/*")
    incident_url = editor.url.split("?")[0]

    approver = new_page(browser, base)
    sign_in(approver, "approver@example.org")
    approver.goto("/console/approvals")
    item = approver.locator(".approval").first
    approve = item.get_by_role("button", name="Approve and send")
    wait_for(lambda: approve.is_enabled())  # the approver has reviewed this version

    # meanwhile the editor changes the text
    editor.locator("a[id^=edit-]").first.click()
    editor.wait_for_url("**/console/compose?update_id=*")
    editor.get_by_label("Message", exact=True).fill("Boil water before drinking: north district only.")
    editor.get_by_role("button", name="Save draft").click()
    submitted(editor, "**/console/incidents/*")
    note = editor.locator(".approval-cancelled")
    assert "Approval request cancelled" in note.inner_text()

    approve.click()
    error = item.locator(".error-box")
    error.wait_for()
    assert "changed after you reviewed it" in error.inner_text()
    assert sms_to(service["fake"]) == []
    editor.goto(incident_url)
    assert editor.locator(".approval-cancelled").count() == 1


def test_other_screens_accessible_and_fit_a_phone(service, browser, db_url) -> None:
    """Routing map (with a validation error shown beside it), subscribers with an import and its error report,
    channels with a check, the audit log and the incident list: axe and 375 px."""
    base = service["base"]
    write = db_url.startswith("sqlite")
    admin = new_page(browser, base)
    sign_in(admin, "admin@example.org")
    check_accessibility(admin, "incidents")
    shoot(admin, "incidents", write=write)

    admin.get_by_role("link", name="Routing map").click()
    text = admin.get_by_label("Routing map (YAML)")
    wait_for(lambda: "emergency" in text.input_value())
    original = text.input_value()
    text.fill(original.replace("critical:", "catastrophic:", 1))
    admin.get_by_role("button", name="Validate and save").click()
    errors = admin.locator("#yaml-errors")
    errors.wait_for()
    assert "catastrophic" in errors.inner_text() or "severity" in errors.inner_text().lower()
    assert text.get_attribute("aria-invalid") == "true"
    check_accessibility(admin, "routing")
    shoot(admin, "routing", write=write)
    admin.get_by_role("button", name="Discard changes").click()
    wait_for(lambda: text.input_value() == original)

    admin.get_by_role("link", name="Subscribers").click()
    csv = "phone,email,name,categories\n+15550100200,a@example.org,Ann,emergency\nnot-a-phone,,Bad,emergency\n"
    admin.get_by_label("CSV file").set_input_files(
        files=[{"name": "people.csv", "mimeType": "text/csv", "buffer": csv.encode()}]
    )
    admin.get_by_role("button", name="Import").click()
    wait_for(lambda: admin.locator("#import-status").inner_text().startswith("done"), timeout=30)
    assert "1 created" in admin.locator("#import-status").inner_text()
    rows = admin.locator("#import-errors tbody tr")
    rows.first.wait_for()
    assert "3" in rows.first.inner_text() and "phone" in rows.first.inner_text()
    # (by email: the name search is case-sensitive on PostgreSQL, see the report)
    admin.get_by_label("Search").fill("a@example.org")
    admin.get_by_role("button", name="Search").click()
    admin.get_by_role("link", name="Ann", exact=True).click()
    assert "+15550100200" in admin.locator("dl.facts").inner_text()
    admin.goto("/console/subscribers")
    check_accessibility(admin, "subscribers")
    shoot(admin, "subscribers", write=write)

    admin.get_by_role("link", name="Channels").click()
    admin.wait_for_load_state("load")  # channels.js has attached its handlers (deferred script)
    card = admin.locator('.channel[data-channel="twilio-sms"]')
    card.get_by_role("button", name="Send a check to twilio-sms").click()
    result = card.locator(".last-check")
    wait_for(lambda: "just now" in result.inner_text())
    assert "Last check: OK" in result.inner_text(), result.inner_text()
    check_accessibility(admin, "channels")
    shoot(admin, "channels", write=write)

    admin.get_by_role("link", name="Audit log").click()
    admin.locator("#audit-table tbody tr").first.wait_for()
    admin.get_by_label("What").fill("channel.*")
    admin.get_by_role("button", name="Filter").click()
    actions = admin.locator("#audit-table tbody tr td:nth-child(3)")
    wait_for(lambda: (texts := actions.all_inner_texts()) and all(t == "channel.check" for t in texts))
    check_accessibility(admin, "audit")
    shoot(admin, "audit", write=write)
    assert not admin.errors, admin.errors
