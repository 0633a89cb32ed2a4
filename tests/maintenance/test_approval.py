"""The approval of a window's schedule (issue 19, reproduction 1): the whole schedule of notices is approved once,
at once by the gate below APPROVAL_SEVERITY and the audience threshold, else by a second person who previewed
every notice; any later change to the window or its incident voids the approval of the notices not yet sent.

Counted at the fake provider (real Twilio SDK); the clock is pinned and moved (broadcaster.clock), never slept on.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy import update as sql_update

from .helpers import API_FOLLOWER, CATEGORY_FAN, T0, drain, sms, window_body

TOLD = sorted([CATEGORY_FAN, API_FOLLOWER])


def _runner(db_url: str) -> Any:
    from broadcaster.db import make_engine
    from broadcaster.maintenance.runner import MaintenanceRunner

    return MaintenanceRunner(engine=make_engine(db_url), poll=0.05)


def _window(client: Any, headers: dict[str, str], wid: int) -> dict[str, Any]:
    resp = client.get(f"/v1/maintenance/{wid}", headers=headers)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _notice(window: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(n for n in window["notices"] if n["kind"] == kind)


def _preview(client: Any, headers: dict[str, str], wid: int) -> tuple[str, dict[str, Any]]:
    resp = client.get(f"/v1/maintenance/{wid}/preview", headers=headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert resp.headers["ETag"] == body["etag"]
    return body["etag"], body


def _approve(client: Any, headers: dict[str, str], wid: int, etag: str | None) -> Any:
    extra = {"If-Match": etag} if etag is not None else {}
    return client.post(f"/v1/maintenance/{wid}/approve", headers={**headers, **extra})


def _actor(client: Any, headers: dict[str, str]) -> str:
    """The audit actor of a key (`key:<name>`), read from the audit entry of a harmless call."""
    from broadcaster.db import session_scope
    from broadcaster.models import ApiKey
    from broadcaster.security import hash_key

    plaintext = headers["Authorization"].removeprefix("Bearer ")
    with session_scope() as session:
        name = session.scalar(select(ApiKey.name).where(ApiKey.key_hash == hash_key(plaintext)))
    return f"key:{name}"


def _schedule_log(client: Any, admin: dict[str, str], wid: int) -> list[dict[str, Any]]:
    resp = client.get("/v1/audit", headers=admin, params={"target_type": "maintenance_schedule", "target_id": str(wid)})
    assert resp.status_code == 200, resp.text
    return sorted(resp.json()["items"], key=lambda e: e["id"])


@pytest.fixture
def critical_by_sms(client: Any, admin: dict[str, str], world: dict[str, Any], make_key: Any) -> None:
    """The category's routing map sends critical updates by SMS too (as a real one would: SMS, voice, e-mail)."""
    channels = {"info": ["twilio-sms"], "major": ["twilio-sms"], "critical": ["twilio-sms"]}
    resp = client.patch("/v1/categories/platform", headers=admin, json={"channels": channels})
    # more channels loosen the routing map: an admin proposes, a second person approves (routing/versions.py)
    assert resp.status_code == 202, resp.text
    second = {"Authorization": f"Bearer {make_key('read', 'publish', name='map-approver')}"}
    approved = client.post(
        f"/v1/routing-map/versions/{resp.json()['number']}/approve",
        headers=second | {"If-Match": resp.json()["etag"]},
    )
    assert approved.status_code == 200, approved.text


@pytest.fixture
def threshold(fake: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """Set APPROVAL_AUDIENCE_THRESHOLD (the maintenance tests turn it off by default)."""

    def set_threshold(n: int) -> None:
        from broadcaster.settings import get_settings

        monkeypatch.setenv("APPROVAL_AUDIENCE_THRESHOLD", str(n))
        get_settings.cache_clear()

    return set_threshold


def test_raising_the_incident_of_an_info_window_holds_back_its_next_notice(
    client, admin, auth, world, critical_by_sms, fake, clock_at, db_url
):
    """Reproduction 1: a notice goes out at once because the window is info; someone with `write` raises the
    window's incident to critical and retitles it. The next notice must not reach anyone without a second
    person (before: SMS to every subscriber of the category)."""
    resp = client.post("/v1/maintenance", headers=admin, json=window_body())
    assert resp.status_code == 201, resp.text
    window = resp.json()
    runner = _runner(db_url)
    assert runner.run_once()["sent"] == 1
    drain()
    assert sorted(to for to, _ in sms(fake)) == TOLD
    seen = len(sms(fake))

    writer = auth("read", "write")
    raised = client.patch(
        f"/v1/incidents/{window['incident_id']}",
        headers=writer,
        json={"severity": "critical", "title": "EVACUATE the area immediately"},
    )
    # the window's incident is live: raising it is a change request (issue 19, incident.edit), nothing changes yet
    assert raised.status_code == 202, raised.text
    change = raised.json()
    # even once a second person approves the raise, the schedule's approval is void: the next notice waits
    approver = auth("read", "publish")
    applied = client.post(
        f"/v1/incidents/{window['incident_id']}/change-requests/{change['id']}/approve",
        headers=approver | {"If-Match": change["etag"]},
    )
    assert applied.status_code == 200, applied.text
    writer = approver  # the approved change voided the schedule's approval: its approver is the one who changed it

    clock_at(T0 + timedelta(hours=3))  # the reminder's moment
    runner.run_once()
    drain()
    assert sms(fake)[seen:] == []  # not one message of the raised notice
    incident = client.get(f"/v1/incidents/{window['incident_id']}", headers=admin)
    assert incident.status_code == 200, incident.text
    published = [u for u in incident.json()["updates"] if u["state"] == "published"]
    assert len(published) == 1  # the first notice only (nothing new on the public pages either)

    after = _window(client, admin, window["id"])
    approval = after["approval"]
    assert approval["state"] == "pending"
    assert approval["requested_by"] == _actor(client, writer)
    assert "the gate's approval no longer covers the unsent notices" in approval["voided"]
    assert "severity" in approval["voided"] and "title" in approval["voided"]
    reminder = _notice(after, "reminder")
    assert reminder["state"] == "pending" and "second person" in reminder["waiting_reason"]
    assert _notice(after, "created")["state"] == "sent"  # what was sent stays sent

    # the writer cannot approve (no publish scope); a second person previews the raised schedule and approves it
    etag, preview = _preview(client, writer, window["id"])
    assert _approve(client, writer, window["id"], etag).status_code == 403
    assert {n["kind"] for n in preview["notices"]} == {"reminder", "started", "completed"}
    assert all("critical" in (n["high_impact"] or "") for n in preview["notices"])
    assert preview["incident"]["severity"] == "critical"
    approver = auth("read", "publish")
    ok = _approve(client, approver, window["id"], etag)
    assert ok.status_code == 200, ok.text
    assert ok.json()["approval"]["decided_by"] == _actor(client, approver)
    assert runner.run_once()["sent"] == 1
    drain()
    got = sms(fake)[seen:]
    assert sorted(to for to, _ in got) == TOLD
    assert all("Maintenance in 2 hours: Database upgrade" in body for _, body in got)


def test_a_high_impact_schedule_waits_for_a_second_person_then_goes_out_at_its_times(
    client, admin, auth, world, fake, threshold, clock_at, db_url
):
    threshold(1)  # two people would be told: over APPROVAL_AUDIENCE_THRESHOLD
    resp = client.post("/v1/maintenance", headers=admin, json=window_body())
    assert resp.status_code == 201, resp.text
    window = resp.json()
    wid = window["id"]
    assert window["approval"]["state"] == "pending"
    assert "APPROVAL_AUDIENCE_THRESHOLD" in window["approval"]["reason"]
    assert window["approval"]["requested_by"] == _actor(client, admin)
    assert all("second person" in n["waiting_reason"] for n in window["notices"])

    runner = _runner(db_url)
    assert runner.run_once() == {"sent": 0, "skipped": 0, "failed": 0}
    drain()
    assert sms(fake) == []

    # the approver sees every notice's text, channels and recipients
    etag, preview = _preview(client, admin, wid)
    assert sorted(n["kind"] for n in preview["notices"]) == ["completed", "created", "reminder", "started"]
    for n in preview["notices"]:
        assert [ch["channel"] for ch in n["preview"]["channels"]] == ["twilio-sms"]
        assert n["preview"]["channels"][0]["recipients"] == 2
        assert "APPROVAL_AUDIENCE_THRESHOLD" in n["high_impact"]
    texts = {n["kind"]: n["preview"]["channels"][0]["text"] for n in preview["notices"]}
    assert "Maintenance in 2 hours: Database upgrade" in texts["reminder"]

    # the requester cannot approve their own schedule
    denied = _approve(client, admin, wid, etag)
    assert denied.status_code == 403 and denied.json()["field"] == "Authorization"
    assert _window(client, admin, wid)["approval"]["state"] == "pending"
    assert runner.run_once()["sent"] == 0
    drain()
    assert sms(fake) == []

    approver = auth("read", "publish")
    ok = _approve(client, approver, wid, etag)
    assert ok.status_code == 200, ok.text
    assert ok.json()["approval"]["state"] == "approved"
    assert all(n["waiting_reason"] == "" for n in ok.json()["notices"])

    # then each notice at its time, exactly the previewed text
    seen = 0
    for moment, kind in ((T0, "created"), (T0 + timedelta(hours=3), "reminder"), (T0 + timedelta(hours=5), "started")):
        clock_at(moment)
        assert runner.run_once() == {"sent": 1, "skipped": 0, "failed": 0}
        drain()
        got = sms(fake)[seen:]
        assert sorted(to for to, _ in got) == TOLD
        assert all(texts[kind] in body for _, body in got), (texts[kind], got)
        seen = len(sms(fake))
        clock_at(moment + timedelta(minutes=30))
        assert runner.run_once()["sent"] == 0  # nothing early, nothing twice
    clock_at(T0 + timedelta(hours=6))
    assert runner.run_once()["sent"] == 1
    drain()
    assert len(sms(fake)) == 8
    assert {n["state"] for n in _window(client, admin, wid)["notices"]} == {"sent"}

    log = _schedule_log(client, admin, wid)
    decisions = [(e["action"], e.get("detail", {}).get("decision")) for e in log]
    assert decisions[0] == ("gate.decision", "second_person")
    assert ("maintenance.approve", None) in decisions and ("gate.decision", "now") in decisions


def test_an_incident_edit_after_approval_voids_the_unsent_notices(
    client, admin, auth, world, fake, threshold, clock_at, db_url
):
    threshold(1)
    wid = client.post("/v1/maintenance", headers=admin, json=window_body()).json()["id"]
    approver = auth("read", "publish")
    etag, _ = _preview(client, approver, wid)
    assert _approve(client, approver, wid, etag).status_code == 200
    runner = _runner(db_url)
    assert runner.run_once()["sent"] == 1
    drain()
    assert sorted(to for to, _ in sms(fake)) == TOLD
    seen = len(sms(fake))

    editor = auth("read", "write", "publish")
    incident_id = _window(client, admin, wid)["incident_id"]
    edited = client.patch(f"/v1/incidents/{incident_id}", headers=editor, json={"status": "monitoring"})
    assert edited.status_code == 200, edited.text
    after = _window(client, admin, wid)
    assert after["approval"]["state"] == "pending"
    assert after["approval"]["requested_by"] == _actor(client, editor)
    assert f"the approval by {_actor(client, approver)} no longer covers" in after["approval"]["voided"]
    assert "status" in after["approval"]["voided"]

    clock_at(T0 + timedelta(hours=3))
    assert runner.run_once() == {"sent": 0, "skipped": 0, "failed": 0}
    drain()
    assert sms(fake)[seen:] == []  # the reminder did not go out
    assert _notice(_window(client, admin, wid), "created")["state"] == "sent"

    # the editor is the requester now; the first approver (or anyone else with publish) approves again
    etag, _ = _preview(client, editor, wid)
    assert _approve(client, editor, wid, etag).status_code == 403
    assert _approve(client, approver, wid, etag).status_code == 200
    assert runner.run_once()["sent"] == 1
    drain()
    assert sorted(to for to, _ in sms(fake)[seen:]) == TOLD


def test_a_change_that_bypassed_the_api_is_caught_right_before_sending(
    client, admin, auth, world, fake, threshold, clock_at, db_url
):
    """The runner recomputes each notice's digest before it sends: a window changed behind the schedule's back
    (here: in the database) is not covered by the approval, so the notice waits."""
    threshold(1)
    wid = client.post("/v1/maintenance", headers=admin, json=window_body()).json()["id"]
    approver = auth("read", "publish")
    etag, _ = _preview(client, approver, wid)
    assert _approve(client, approver, wid, etag).status_code == 200
    runner = _runner(db_url)
    assert runner.run_once()["sent"] == 1
    drain()
    seen = len(sms(fake))

    from broadcaster.db import session_scope
    from broadcaster.models.maintenance import MaintenanceWindow

    with session_scope() as session:
        session.execute(
            sql_update(MaintenanceWindow).where(MaintenanceWindow.id == wid).values(message="Leave the building now.")
        )
    clock_at(T0 + timedelta(hours=3))
    assert runner.run_once() == {"sent": 0, "skipped": 0, "failed": 0, "waiting": 1}
    drain()
    assert sms(fake)[seen:] == []
    approval = _window(client, admin, wid)["approval"]
    assert approval["state"] == "pending" and "changed since the approval by" in approval["voided"]
    # the second person sees the new text and approves it
    etag, preview = _preview(client, approver, wid)
    reminder = next(n for n in preview["notices"] if n["kind"] == "reminder")
    assert "Leave the building now." in reminder["preview"]["channels"][0]["text"]
    assert _approve(client, approver, wid, etag).status_code == 200
    assert runner.run_once()["sent"] == 1


def test_an_info_window_below_the_threshold_is_approved_at_once_and_rechecked_at_send_time(
    client, admin, auth, world, fake, threshold, clock_at, db_url
):
    threshold(3)  # two people told at creation: below
    resp = client.post("/v1/maintenance", headers=admin, json=window_body())
    assert resp.status_code == 201, resp.text
    window = resp.json()
    approval = window["approval"]
    assert approval["state"] == "approved" and approval["decided_by"] is None
    assert "no send reaches APPROVAL_SEVERITY or the audience threshold" in approval["reason"]
    log = _schedule_log(client, admin, window["id"])
    assert [(e["action"], e["detail"]["decision"]) for e in log] == [("gate.decision", "now")]
    runner = _runner(db_url)
    assert runner.run_once()["sent"] == 1
    drain()
    assert sorted(to for to, _ in sms(fake)) == TOLD
    seen = len(sms(fake))

    # the audience grows past the threshold before the reminder: the gate's approval no longer holds
    for phone in ("+15550000011", "+15550000012"):
        resp = client.post("/v1/subscribers", headers=admin, json={"phone": phone, "categories": ["platform"]})
        assert resp.status_code == 201, resp.text
    clock_at(T0 + timedelta(hours=3))
    assert runner.run_once() == {"sent": 0, "skipped": 0, "failed": 0, "waiting": 1}
    drain()
    assert sms(fake)[seen:] == []
    after = _window(client, admin, window["id"])
    assert after["approval"]["state"] == "pending"
    assert "APPROVAL_AUDIENCE_THRESHOLD" in after["approval"]["reason"]
    assert after["approval"]["requested_by"] == _actor(client, admin)  # the runner keeps the requester


def test_reject_then_ask_again(client, admin, auth, world, fake, threshold, clock_at, db_url):
    threshold(1)
    wid = client.post("/v1/maintenance", headers=admin, json=window_body()).json()["id"]
    approver = auth("read", "publish")
    own = client.post(f"/v1/maintenance/{wid}/reject", headers=admin, json={"comment": "no"})
    assert own.status_code == 403, own.text
    for body, field in (({}, "comment"), ({"comment": "   "}, "comment"), ({"comment": "x" * 2001}, "comment")):
        bad = client.post(f"/v1/maintenance/{wid}/reject", headers=approver, json=body)
        assert bad.status_code == 422 and bad.json()["field"] == field, bad.text
    rejected = client.post(f"/v1/maintenance/{wid}/reject", headers=approver, json={"comment": "Wrong date."})
    assert rejected.status_code == 200, rejected.text
    approval = rejected.json()["approval"]
    assert approval["state"] == "rejected" and approval["comment"] == "Wrong date."
    assert all("rejected" in n["waiting_reason"] for n in rejected.json()["notices"])
    etag, _ = _preview(client, approver, wid)
    again = _approve(client, approver, wid, etag)
    assert again.status_code == 409 and again.json()["error"] == "not_pending"
    runner = _runner(db_url)
    assert runner.run_once()["sent"] == 0
    drain()
    assert sms(fake) == []

    # the requester changes the window (an empty change asks again); the second person approves
    asked = client.patch(f"/v1/maintenance/{wid}", headers=admin, json={"message": "Now on the right date."})
    assert asked.status_code == 200, asked.text
    assert asked.json()["approval"]["state"] == "pending"
    etag, _ = _preview(client, approver, wid)
    assert _approve(client, approver, wid, etag).status_code == 200
    assert runner.run_once()["sent"] == 1
    drain()
    assert sorted(to for to, _ in sms(fake)) == TOLD


def test_approve_bad_input_and_credentials_write_nothing(client, admin, auth, world, fake, threshold, clock_at):
    threshold(1)
    wid = client.post("/v1/maintenance", headers=admin, json=window_body()).json()["id"]
    approver = auth("read", "publish")
    etag, _ = _preview(client, approver, wid)
    path = f"/v1/maintenance/{wid}"
    # credentials
    assert client.get(f"{path}/preview").status_code == 401
    assert client.post(f"{path}/approve", headers={"If-Match": etag}).status_code == 401
    assert client.post(f"{path}/reject", json={"comment": "no"}).status_code == 401
    bad_key = {"Authorization": "Bearer not-a-key", "If-Match": etag}
    assert client.post(f"{path}/approve", headers=bad_key).status_code == 401
    for scopes in (("read",), ("read", "write")):
        headers = auth(*scopes)
        assert _approve(client, headers, wid, etag).status_code == 403
        assert client.post(f"{path}/reject", headers=headers, json={"comment": "no"}).status_code == 403
    # If-Match: missing or `*` (428), stale, weak or another window's (412)
    assert _approve(client, approver, wid, None).status_code == 428
    assert _approve(client, approver, wid, "*").status_code == 428
    for wrong in ('"0000"', f"W/{etag}", "garbage"):
        resp = _approve(client, approver, wid, wrong)
        assert resp.status_code == 412 and resp.json()["field"] == "If-Match", resp.text
    # unknown or malformed windows
    assert _approve(client, approver, 999999, etag).status_code == 404
    assert client.get("/v1/maintenance/999999/preview", headers=approver).status_code == 404
    assert client.post("/v1/maintenance/999999/reject", headers=approver, json={"comment": "x"}).status_code == 404
    assert client.post("/v1/maintenance/abc/approve", headers={**approver, "If-Match": etag}).status_code == 422
    # nothing was written by any of these
    assert _window(client, admin, wid)["approval"]["state"] == "pending"
    assert [e["action"] for e in _schedule_log(client, admin, wid)] == ["gate.decision"]
    # an approval after the window changed (here: its message) needs the new preview
    moved = client.patch(path, headers=admin, json={"message": "Changed."})
    assert moved.status_code == 200, moved.text
    assert _approve(client, approver, wid, etag).status_code == 412
    etag, _ = _preview(client, approver, wid)
    assert _approve(client, approver, wid, etag).status_code == 200
    # an approved schedule is not pending any more
    assert _approve(client, approver, wid, etag).status_code == 409


def test_a_window_planned_before_the_upgrade_is_decided_by_the_runner(
    client, admin, world, fake, threshold, clock_at, db_url
):
    """Windows planned before schedule approvals existed have no decision: the runner has the gate decide before
    it sends anything (below the threshold: at once; over it: they wait)."""
    from broadcaster.db import session_scope
    from broadcaster.models.maintenance import MaintenanceNotice, MaintenanceWindow

    def as_before_the_upgrade(wid: int) -> None:
        with session_scope() as session:
            session.execute(
                sql_update(MaintenanceWindow)
                .where(MaintenanceWindow.id == wid)
                .values(approval_state=None, approval_etag=None, approval_reason="", approval_requested_by=None)
            )
            notices = sql_update(MaintenanceNotice).where(MaintenanceNotice.maintenance_id == wid)
            session.execute(notices.values(approved_digest=None))

    runner = _runner(db_url)
    old = client.post("/v1/maintenance", headers=admin, json=window_body(title="Old")).json()["id"]
    as_before_the_upgrade(old)
    assert _window(client, admin, old)["approval"]["state"] == "undecided"
    assert runner.run_once() == {"sent": 1, "skipped": 0, "failed": 0}
    drain()
    assert sorted(to for to, _ in sms(fake)) == TOLD
    approval = _window(client, admin, old)["approval"]
    assert approval["state"] == "approved" and approval["requested_by"] == _actor(client, admin)
    log = _schedule_log(client, admin, old)
    assert log[-1]["actor"] == "system:maintenance" and log[-1]["detail"]["decision"] == "now"
    seen = len(sms(fake))

    large = client.post("/v1/maintenance", headers=admin, json=window_body(title="Large")).json()["id"]
    as_before_the_upgrade(large)
    threshold(1)
    assert runner.run_once() == {"sent": 0, "skipped": 0, "failed": 0, "waiting": 1}
    drain()
    assert sms(fake)[seen:] == []
    after = _window(client, admin, large)
    assert after["approval"]["state"] == "pending" and _notice(after, "created")["state"] == "pending"
