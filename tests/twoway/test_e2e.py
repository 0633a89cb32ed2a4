"""Issue 12's "done when", end to end through the real Twilio and SendGrid SDKs to the fake provider:

1. "Are you safe?" goes to 1,000 subscribers by SMS and e-mail;
2. the fake provider's inbound simulator answers for 60% of them, mixed channels (some on both), with
   retried duplicates (Twilio re-posting a MessageSid, a second click on an e-mail button);
3. the tally is exact;
4. after the escalation delay (the clock is moved) exactly the 40% who did not answer get a voice call, and
   the escalation group gets one summary;
5. a `broadcaster worker` process killed (SIGKILL) while those calls go out (the fake answers calls slowly)
   and a fresh one started: nobody is called twice. Calls and mails are counted at the fake provider.

PostgreSQL only: the calls are sent by worker processes (SKIP LOCKED, leases)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from tests.twoway.escalation_helpers import add_people

from broadcaster import clock
from broadcaster.fakes.counting import accepted, per_recipient, sends
from broadcaster.fakes.inbound import InboundSimulator, email_answer_links

N = 1000
MANAGERS = "managers@example.org"
SECRET = "e2e-secret-key-for-signed-links-0123456789"  # noqa: S105 (a test key)


def _env(fake: Any, db_url: str) -> dict[str, str]:
    return {
        **fake.env(webhook=False),
        "DATABASE_URL": db_url,
        "PUBLIC_URL": "http://testserver",
        "SECRET_KEY": SECRET,
        "TWILIO_SMS_RATE_PER_SECOND": "100000",
        "TWILIO_VOICE_RATE_PER_SECOND": "200",
        "SENDGRID_RATE_PER_SECOND": "1000",
        "WORKER_POLL_SECONDS": "0.2",
        "WORKER_LEASE_SECONDS": "2",
        "WORKER_LOOKUP_DELAY_SECONDS": "0.2",
        "RETRY_BASE_SECONDS": "0.1",
        "RETRY_MAX_SECONDS": "0.5",
        "ESCALATION_POLL_SECONDS": "0.5",
        "LOG_LEVEL": "WARNING",
    }


def _wait(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _drain() -> None:
    from broadcaster.delivery.worker import Worker

    asyncio.run(Worker().run(until_idle=True, max_seconds=60))


def _statuses(kind: str) -> Counter[str]:
    from broadcaster.db import session_scope
    from broadcaster.models.delivery import Broadcast, Delivery

    with session_scope() as session:
        rows = session.execute(
            select(Delivery.status, func.count())
            .join(Broadcast, Broadcast.id == Delivery.broadcast_id)
            .where(Broadcast.kind == kind)
            .group_by(Delivery.status)
        ).all()
    return Counter({s: int(n) for s, n in rows})


def _start_worker(env: dict[str, str], tmp_path: Path, name: str) -> subprocess.Popen[bytes]:
    log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 (the process keeps it)
    exe = Path(sys.executable).with_name("broadcaster")
    return subprocess.Popen([str(exe), "worker"], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.postgres
@pytest.mark.slow
def test_question_answers_tally_escalation_and_a_killed_worker(
    db_url, is_postgres, fake, monkeypatch, tmp_path, client, admin, emergency_category
):
    if not is_postgres:
        pytest.skip("worker processes are tested on PostgreSQL")
    from broadcaster.responses.escalation_runner import Escalator
    from broadcaster.settings import get_settings

    env = _env(fake, db_url)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    from broadcaster.channels.registry import adapter_classes

    adapter_classes.cache_clear()

    # --- 1. the question goes to 1,000 people by SMS and e-mail --------------------------------------------
    add_people(N)
    phones = [f"+1555100{i:04d}" for i in range(N)]
    emails = [f"p{i:04d}@example.org" for i in range(N)]
    inc = client.post(
        "/v1/incidents", headers=admin, json={"title": "Chemical leak", "category": "emergency", "severity": "major"}
    )
    assert inc.status_code == 201, inc.text
    upd = client.post(
        f"/v1/incidents/{inc.json()['id']}/updates",
        headers=admin,
        json={
            "body": "A chemical leak was reported near the river. Stay indoors.",
            "summary": "Chemical leak: stay indoors",
            "channels": ["sms", "email"],
            "question": {
                "text": "Are you safe?",
                "options": [
                    {"label": "I'm safe", "keywords": ["SAFE"]},
                    {"label": "I need help", "needs_help": True},
                ],
                "escalation": {
                    "steps": [{"after_minutes": 10, "channel": "voice"}],
                    "threshold": {"percent": 80, "after_minutes": 5, "group": {"emails": [MANAGERS]}},
                },
            },
        },
    )
    assert upd.status_code == 201, upd.text
    update_id = upd.json()["id"]
    pub = client.post(f"/v1/updates/{update_id}/publish", headers=admin)
    assert pub.status_code == 200, pub.text
    _drain()
    sms = per_recipient(accepted(sends(fake.requests("twilio"), "twilio-sms")))
    assert sms == dict.fromkeys(phones, 1)
    links = email_answer_links(accepted(sends(fake.requests("sendgrid"), "sendgrid")))
    assert set(links) == set(emails)
    assert all(set(v) == {"1", "2"} for v in links.values())

    # --- 2. 60% answer: SMS, e-mail, both; with provider retries ------------------------------------------
    sim = InboundSimulator(client)
    sms_only, email_only, both = range(0, 300), range(300, 500), range(500, 600)
    bodies = ["1", " 1 ", "1 safe", "Safe", "2"]
    expected: dict[int, tuple[str, str]] = {}  # person -> (final option, channel)
    for i in sms_only:
        expected[i] = ("2" if bodies[i % len(bodies)] == "2" else "1", "sms")
    for i in email_only:
        expected[i] = ("2" if i % 4 == 0 else "1", "email")
    for i in both:
        expected[i] = ("2", "email")

    def answer(i: int) -> list[Any]:
        if i in sms_only:  # every 6th SMS is delivered twice by "Twilio" (same MessageSid)
            return sim.sms(phones[i], bodies[i % len(bodies)], retries=1 if i % 6 == 0 else 0)
        if i in email_only:  # every 5th button is confirmed twice
            return sim.click(links[emails[i]][expected[i][0]], retries=1 if i % 5 == 0 else 0)
        # SMS first, then a different answer by e-mail: counted once, the latest wins
        return sim.sms(phones[i], "1") + sim.click(links[emails[i]]["2"])

    with ThreadPoolExecutor(8) as pool:
        replies = [r for rs in pool.map(answer, range(600)) for r in rs]
    assert len(replies) == 300 + 50 + 200 * 2 + 40 + 100 * 3
    assert all(r.status_code == 200 for r in replies), next(r.text for r in replies if r.status_code != 200)

    # --- 3. the tally is exact -----------------------------------------------------------------------------
    tally = client.get(f"/v1/updates/{update_id}/responses", headers=admin)
    assert tally.status_code == 200, tally.text
    t = tally.json()
    want = Counter(expected.values())
    assert (t["recipients"], t["answered"], t["no_answer_yet"]) == (N, 600, 400)
    got = {o["key"]: (o["count"], o["by_channel"]) for o in t["options"]}
    for key in ("1", "2"):
        by_channel = {ch: n for (k, ch), n in want.items() if k == key}
        assert got[key] == (sum(by_channel.values()), by_channel), (key, got)

    # --- 4. the escalation: the group's summary, then a call to exactly the 40% ----------------------------
    unanswered = [phones[i] for i in range(600, N)]
    clock.advance(timedelta(minutes=5, seconds=1))
    try:
        done = Escalator().tick()
        assert done["summaries"] == 1 and done["resent"] == 0, done
        _drain()  # the summary goes out (no call is due yet)
        clock.advance(timedelta(minutes=5))
        done = Escalator().tick()
        assert done["resent"] == 400, done
        assert Escalator().tick()["resent"] == 0
    finally:
        clock.set_now(None)
    mails = [r for r in accepted(sends(fake.requests("sendgrid"), "sendgrid")) if MANAGERS in per_recipient([r])]
    assert len(mails) == 1
    summary = mails[0].json
    assert "400 of 1000 have not answered" in summary["subject"]
    assert f"/v1/updates/{update_id}/responses.csv" in str(summary["content"])
    assert _statuses("escalation") == {"pending": 400}

    # --- 5. calls go out through a worker process; it is killed mid-way; a fresh one finishes -------------
    # the provider takes each call at once and answers 0.4 s later: a kill leaves calls placed but unrecorded
    fake.inject_random(
        "twilio", 1.0, timeout_fraction=1.0, accept_fraction=1.0, hang_seconds=0.4, path="/Calls.json", seed=12
    )
    worker_env = {**os.environ, **env}
    victim = _start_worker(worker_env, tmp_path, "victim")
    try:
        _wait(lambda: len(sends(fake.requests("twilio"), "twilio-voice")) >= 40, 60, "calls going out")
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
    finally:
        _stop(victim)
    in_flight = _statuses("escalation")["sending"]
    assert in_flight > 0, "the worker was killed with calls in flight"
    rescuer = _start_worker(worker_env, tmp_path, "rescuer")
    try:
        _wait(lambda: _statuses("escalation") == {"sent": 400}, 60, "every call placed")
    finally:
        _stop(rescuer)
    calls = per_recipient(accepted(sends(fake.requests("twilio"), "twilio-voice")))
    assert calls == dict.fromkeys(unanswered, 1), {p: n for p, n in calls.items() if n != 1 or p not in unanswered}
    mails = [r for r in accepted(sends(fake.requests("sendgrid"), "sendgrid")) if MANAGERS in per_recipient([r])]
    assert len(mails) == 1, "the escalation group gets exactly one summary"
    assert per_recipient(accepted(sends(fake.requests("twilio"), "twilio-sms"))) == dict.fromkeys(phones, 1)
    # the killed worker's calls were looked up at the provider before anyone was called again
    lookups = [r for r in fake.requests("twilio") if r.method == "GET" and r.path.endswith("/Calls.json")]
    assert len(lookups) >= in_flight
