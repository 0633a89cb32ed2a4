"""What an approval binds in a question: its effective escalation (the question's own rules, else the category's
from the routing map) and every summary recipient (issue 19, reproduction 2). Counted at the fake provider
through the real Twilio and SendGrid SDKs; the escalation clock is moved, nothing sleeps.

Alice holds read, write and publish; Bob holds read and publish.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from tests.approving import confirm
from tests.twoway.conftest import QUESTION

from broadcaster import clock
from broadcaster.fakes.counting import accepted, per_recipient, sends

OUTSIDER_EMAIL = "collector@outside.example"
OUTSIDER_PHONE = "+15559990000"
#: voice calls to everyone 5 s after publication, and the non-responders' details to an outside address
HOSTILE = {
    "steps": [{"after_seconds": 5, "channel": "voice"}],
    "threshold": {
        "percent": 100,
        "after_seconds": 5,
        "group": {"emails": [OUTSIDER_EMAIL], "phones": [OUTSIDER_PHONE]},
    },
}


@pytest.fixture(autouse=True)
def moved_clock() -> Iterator[None]:
    """The escalation clock follows the wall clock; each test moves it forward itself."""
    clock.set_now(None)
    yield
    clock.set_now(None)


@pytest.fixture
def gated(fake, monkeypatch) -> Any:
    """The fake provider, with critical updates waiting for a second person."""
    from broadcaster.settings import get_settings

    monkeypatch.setenv("APPROVAL_SEVERITY", "critical")
    get_settings.cache_clear()
    return fake


@pytest.fixture
def alice(make_key) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key('read', 'write', 'publish', name='alice')}"}


@pytest.fixture
def bob(make_key) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key('read', 'publish', name='bob')}"}


def _update(client, who, *, severity: str, question: dict[str, Any]) -> int:
    inc = client.post(
        "/v1/incidents", headers=who, json={"title": "Flooding", "category": "emergency", "severity": severity}
    )
    assert inc.status_code == 201, inc.text
    body = {"body": "Flooding in the north district.", "summary": "Flooding (north)", "channels": ["twilio-sms"]}
    resp = client.post(f"/v1/incidents/{inc.json()['id']}/updates", headers=who, json=body | {"question": question})
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def _category_rules(client, admin, rules: dict[str, Any] | None, second: dict[str, str]) -> Any:
    """Set the emergency category's escalation rules: adding or widening them loosens the routing map, so the
    admin's change is a proposal a second person approves (routing/versions.py); narrowing applies at once."""
    edited = client.patch("/v1/categories/emergency", headers=admin, json={"escalation": rules})
    if edited.status_code == 202:
        proposal = edited.json()
        edited = client.post(
            f"/v1/routing-map/versions/{proposal['number']}/approve", headers={**second, "If-Match": proposal["etag"]}
        )
    assert edited.status_code == 200, edited.text
    return edited


def _preview(client, update_id: int, who) -> dict[str, Any]:
    resp = client.post(f"/v1/updates/{update_id}/preview", headers=who)
    assert resp.status_code == 200, resp.text
    assert resp.headers["ETag"] == resp.json()["etag"]
    return dict(resp.json())


def _approve(client, update_id: int, who, etag: str) -> Any:
    return client.post(f"/v1/updates/{update_id}/approve", json=confirm(update_id), headers={**who, "If-Match": etag})


def _state(client, update_id: int, who) -> str:
    return str(client.get(f"/v1/updates/{update_id}", headers=who).json()["state"])


def _cancelled() -> list[dict[str, Any]]:
    from sqlalchemy import select

    from broadcaster.db import session_scope
    from broadcaster.models import AuditEntry

    with session_scope() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "update.approval_cancelled").order_by(AuditEntry.id)
        )
        return [dict(r.detail) for r in rows]


def _escalate(drain) -> None:
    """Move past every delay, run the escalation runner twice (a second look does nothing) and send."""
    from broadcaster.responses.escalation_runner import Escalator

    clock.advance(timedelta(minutes=1))
    Escalator().tick()
    drain(max_seconds=60)
    clock.advance(timedelta(minutes=1))
    Escalator().tick()
    drain(max_seconds=60)


def _calls(fake) -> int:
    return len(accepted(sends(fake.requests("twilio"), "twilio-voice")))


def _to_outsider(fake) -> int:
    mails = per_recipient(accepted(sends(fake.requests("sendgrid"), "sendgrid")))[OUTSIDER_EMAIL]
    texts = per_recipient(accepted(sends(fake.requests("twilio"), "twilio-sms")))[OUTSIDER_PHONE]
    return int(mails + texts)


def test_editing_the_escalation_of_a_pending_question_voids_the_approval(
    client, alice, bob, gated, drain, add_subscribers, emergency_category
):
    """Reproduction 2: the PATCH returns the update to draft and changes the ETag; the approver's old ETag no
    longer approves anything; the new preview shows the new escalation and its recipients, and that is what runs."""
    add_subscribers(3, name="Ann")
    update_id = _update(client, alice, severity="critical", question=QUESTION)
    assert client.post(f"/v1/updates/{update_id}/publish", headers=alice).status_code == 202
    reviewed = _preview(client, update_id, bob)

    patched = client.patch(
        f"/v1/updates/{update_id}", headers=alice, json={"question": QUESTION | {"escalation": HOSTILE}}
    )
    assert patched.status_code == 200, patched.text
    assert _state(client, update_id, alice) == "draft", "a changed escalation must void the pending approval"
    assert _cancelled()[-1]["fields"] == ["escalation"]
    fresh = _preview(client, update_id, bob)
    assert fresh["etag"] != reviewed["etag"]
    assert reviewed["binding"]["question"]["escalation"] is None, "no escalation was asked for at first"

    # Alice asks again; Bob's approval of what he reviewed before is refused, and nothing was sent
    assert client.post(f"/v1/updates/{update_id}/publish", headers=alice).status_code == 202
    stale = _approve(client, update_id, bob, reviewed["etag"])
    assert stale.status_code == 412, stale.text
    _escalate(drain)
    assert gated.requests("twilio") == [] and gated.requests("sendgrid") == []

    # what Bob sees now: the steps and every summary recipient
    shown = _preview(client, update_id, bob)
    assert shown["etag"] == fresh["etag"]
    escalation = shown["binding"]["question"]["escalation"]
    assert escalation["source"] == "question"
    assert [(s["channel"], s["after"]) for s in escalation["steps"]] == [("voice", "5 s")]
    group = escalation["threshold"]["group"]
    assert (group["emails"], group["phones"]) == ([OUTSIDER_EMAIL], [OUTSIDER_PHONE])
    approved = _approve(client, update_id, bob, shown["etag"])
    assert approved.status_code == 200, approved.text
    drain(max_seconds=60)
    _escalate(drain)
    assert _calls(gated) == 3, "the approved escalation runs"
    assert _to_outsider(gated) == 2


def test_category_rules_added_after_publication_do_not_escalate_the_question(
    client, admin, bob, fake, drain, add_subscribers, emergency_category
):
    """The routing map's escalation rules are read when the update is published (approved), never at run time."""
    add_subscribers(3, name="Ann")
    update_id = _update(client, admin, severity="major", question=QUESTION)
    assert client.post(f"/v1/updates/{update_id}/publish", headers=admin).status_code == 200
    drain(max_seconds=60)
    assert len(accepted(sends(fake.requests("twilio"), "twilio-sms"))) == 3

    _category_rules(client, admin, HOSTILE, bob)
    _escalate(drain)
    assert _calls(fake) == 0
    assert _to_outsider(fake) == 0
    question = client.get(f"/v1/updates/{update_id}/question", headers=admin).json()
    assert question["escalation_applied"] == {}


def test_category_rules_in_force_at_publication_run_as_published(
    client, admin, bob, fake, drain, add_subscribers, emergency_category
):
    """A question without rules of its own takes its category's as they were when it was published: a later
    edit of the routing map (here: a summary to an outside address instead) changes nothing for it."""
    calls = {"steps": [{"after_seconds": 5, "channel": "voice"}]}
    _category_rules(client, admin, calls, bob)
    add_subscribers(3, name="Ann")
    update_id = _update(client, admin, severity="major", question=QUESTION)
    assert client.post(f"/v1/updates/{update_id}/publish", headers=admin).status_code == 200
    drain(max_seconds=60)
    applied = client.get(f"/v1/updates/{update_id}/question", headers=admin).json()["escalation_applied"]
    assert applied["steps"] == [{"after_seconds": 5.0, "channel": "voice"}]

    swapped = {"threshold": HOSTILE["threshold"]}
    _category_rules(client, admin, swapped, bob)
    _escalate(drain)
    assert _calls(fake) == 3
    assert _to_outsider(fake) == 0


def test_a_category_rule_change_voids_pending_questions_that_inherit_it(
    client, admin, alice, bob, gated, add_subscribers, emergency_category
):
    add_subscribers(2, name="Ann")
    inherits = _update(client, alice, severity="critical", question=QUESTION)
    own = _update(client, alice, severity="critical", question=QUESTION | {"escalation": {"steps": []}})
    for update_id in (inherits, own):
        assert client.post(f"/v1/updates/{update_id}/publish", headers=alice).status_code == 202
    before = {u: _preview(client, u, bob)["etag"] for u in (inherits, own)}

    _category_rules(client, admin, HOSTILE, bob)
    assert _state(client, inherits, alice) == "draft"
    assert _cancelled()[-1]["fields"] == ["escalation"]
    assert _state(client, own, alice) == "pending_approval", "its own rules did not change"
    assert _preview(client, own, bob)["etag"] == before[own]
    after = _preview(client, inherits, bob)
    assert after["etag"] != before[inherits]
    assert after["binding"]["question"]["escalation"]["source"] == "category"

    # the same through PUT /v1/routing-map: taking the rules away voids it as well
    assert client.post(f"/v1/updates/{inherits}/publish", headers=alice).status_code == 202
    routing_map = client.get("/v1/routing-map", headers=admin).json()
    routing_map["categories"][0]["escalation"] = None
    assert client.put("/v1/routing-map", headers=admin, json=routing_map).status_code == 200
    assert _state(client, inherits, alice) == "draft"
    assert _state(client, own, alice) == "pending_approval"
    assert gated.requests("twilio") == []


def test_subscribers_joining_the_summary_tag_do_not_void_the_approval(
    client, alice, bob, gated, drain, add_subscribers, emergency_category
):
    """The summary's tag is bound by name (its members are shown, not bound): people joining it change
    nothing, and the approval still goes through."""
    add_subscribers(2, name="Ann")
    rules = {"threshold": {"percent": 50, "after_minutes": 30, "group": {"tag": "managers"}}}
    update_id = _update(client, alice, severity="critical", question=QUESTION | {"escalation": rules})
    assert client.post(f"/v1/updates/{update_id}/publish", headers=alice).status_code == 202
    reviewed = _preview(client, update_id, bob)
    group = reviewed["binding"]["question"]["escalation"]["threshold"]["group"]
    assert (group["tag"], group["tag_members"]) == ("managers", 0)
    add_subscribers(2, name="Manager", tags=["managers"])
    again = _preview(client, update_id, bob)
    assert again["binding"]["question"]["escalation"]["threshold"]["group"]["tag_members"] == 2
    assert again["etag"] == reviewed["etag"]
    assert _state(client, update_id, alice) == "pending_approval"
    assert _approve(client, update_id, bob, reviewed["etag"]).status_code == 200


def test_a_summary_of_non_responders_needs_a_second_person_even_for_a_minor_update(
    client, admin, gated, alice, add_subscribers, emergency_category
):
    """Mailing the non-responders' names and addresses to a summary group is high impact whatever the severity:
    one person with the publish scope cannot set it off alone (the gate's send rule)."""
    add_subscribers(2, name="Ann")
    update_id = _update(client, alice, severity="minor", question=QUESTION | {"escalation": HOSTILE})
    asked = client.post(f"/v1/updates/{update_id}/publish", headers=alice)
    assert asked.status_code == 202, asked.text
    assert asked.json()["update"]["state"] == "pending_approval"
    decisions = client.get("/v1/audit", headers=admin, params={"action": "gate.decision"}).json()["items"]
    assert decisions[0]["detail"]["decision"] == "second_person" and "summary group" in decisions[0]["detail"]["reason"]
    assert _approve(client, update_id, alice, asked.headers["ETag"]).status_code == 403
    assert gated.requests() == []
    # re-sends alone (no summary) stay a minor update's business: published at once
    steps_only = {"steps": HOSTILE["steps"]}
    other = _update(client, alice, severity="minor", question=QUESTION | {"escalation": steps_only})
    assert client.post(f"/v1/updates/{other}/publish", headers=alice).status_code == 200
