"""The approvals queue shows what an approval binds beyond the rendered text (issue 19): the escalation steps and
every summary recipient, the audience and services, so the approver sees what a question sets off."""

from __future__ import annotations

from typing import Any

import httpx
from tests.console.test_browser_flow import (  # noqa: F401  (the `service` fixture)
    check_accessibility,
    new_page,
    service,
    sign_in,
    wait_for,
)

OUTSIDE = "collector@outside.example"


def test_the_approver_sees_the_escalation_and_its_summary_recipients(service: Any, browser: Any) -> None:  # noqa: F811
    with httpx.Client(base_url=service["base"], headers=service["admin"], timeout=10) as api:
        inc = api.post("/v1/incidents", json={"title": "Gas leak", "category": "emergency", "severity": "critical"})
        assert inc.status_code == 201, inc.text
        question = {
            "text": "Are you safe?",
            "options": [{"label": "I'm safe"}, {"label": "I need help", "needs_help": True}],
            "escalation": {
                "steps": [{"after_minutes": 10, "channel": "voice"}],
                "threshold": {"percent": 60, "after_minutes": 30, "group": {"emails": [OUTSIDE], "tag": "managers"}},
            },
        }
        body = {"body": "Leave Harbour Street now.", "channels": ["sms"], "question": question}
        upd = api.post(f"/v1/incidents/{inc.json()['id']}/updates", json=body)
        assert upd.status_code == 201, upd.text
        assert api.post(f"/v1/updates/{upd.json()['id']}/publish").status_code == 202

    approver = new_page(browser, service["base"])
    sign_in(approver, "approver@example.org")
    approver.goto("/console/approvals")
    card = approver.locator('.preview-card[data-channel="binding"]')
    card.wait_for()
    text = card.inner_text()
    assert "Step 1: after 10 min without an answer, ask again by voice" in text
    assert f"go to {OUTSIDE}, everyone tagged managers (0 now)" in text
    assert "Are you safe? — 1 = I'm safe; 2 = I need help (needs help)" in text
    assert "emergency (reach: either)" in text
    approver.get_by_label("type the incident's title").fill("Gas leak")  # critical: the title confirms it
    wait_for(lambda: approver.get_by_role("button", name="Approve and send").is_enabled())
    check_accessibility(approver, "approvals with escalation")
    assert approver.errors == []
