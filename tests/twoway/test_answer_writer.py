"""SMS answers applied in batches on PostgreSQL (`responses/answer_writer.py`, `responses/sms_answers.py`).

What a batch must keep: each person's answers in arrival order (latest wins, both kept), retried MessageSids
counted once and given the first reply, one bad answer failing only its own request, two writers (two API
processes) never deadlocking or miscounting, and nothing answered 200 that is not stored, also when the API
process is killed mid-run (counted at the database after a restart, with the client retrying as Twilio does).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.delivery.conftest import memory, publish  # noqa: F401  (fixtures reused)
from tests.twoway.conftest import QUESTION

pytestmark = pytest.mark.usefixtures("postgres_only")


@pytest.fixture
def postgres_only(is_postgres: bool) -> None:
    if not is_postgres:
        pytest.skip("answers are batched on PostgreSQL (SQLite has one writer: answer_sms per request)")


def phone(i: int) -> str:
    return f"+1555000{i:04d}"


@pytest.fixture
def question(memory, add_subscribers, publish, emergency_category) -> dict[str, Any]:  # noqa: F811
    """40 subscribers asked "Are you safe?" (the broadcast planned, so every one of them is a recipient)."""
    from broadcaster.db import session_scope
    from broadcaster.delivery import planner

    add_subscribers(40)
    out = publish(channels=["memory"], question=QUESTION)
    with session_scope() as session:
        assert planner.plan_next(session) == out["broadcast_id"]
    return out


def answer(i: int, body: str, sid: str) -> Any:
    from broadcaster.responses.sms_answers import SmsAnswer

    return SmsAnswer(phone(i), body, sid, datetime.now(UTC))


def tallies() -> dict[str, int]:
    from sqlalchemy import text

    from broadcaster.db import session_scope

    with session_scope() as session:
        rows = session.execute(text("SELECT option_key, sum(count) FROM response_tallies GROUP BY option_key"))
        return {str(k): int(n) for k, n in rows if n}


def latest() -> dict[int, str | None]:
    from sqlalchemy import text

    from broadcaster.db import session_scope

    with session_scope() as session:
        rows = session.execute(text("SELECT subscriber_id, option_key FROM question_recipients"))
        return {int(s): k for s, k in rows}


def stored() -> list[tuple[str, str | None, bool]]:
    from sqlalchemy import text

    from broadcaster.db import session_scope

    with session_scope() as session:
        rows = session.execute(text("SELECT provider_event_id, option_key, counted FROM responses ORDER BY id"))
        return [(str(sid), key, bool(counted)) for sid, key, counted in rows]


def submit_all(writer: Any, answers: list[Any]) -> list[Any]:
    """Submit every answer before the first reply is awaited (one burst, in this order)."""

    async def burst() -> list[Any]:
        return list(await asyncio.gather(*(writer.submit(a) for a in answers), return_exceptions=True))

    try:
        return asyncio.run(burst())
    finally:
        writer.close()


def test_a_burst_is_applied_in_few_batches_with_each_person_in_arrival_order(question):
    from broadcaster.responses.answer_writer import SmsAnswerWriter

    writer = SmsAnswerWriter()
    burst = [answer(i, "1", f"SMa{i}") for i in range(1, 31)]
    burst += [answer(1, "2 need help", "SMb1"), answer(2, "SOS", "SMb2")]  # changed answers, later in the burst
    burst += [answer(3, "1", "SMa3"), answer(1, "2", "SMb1")]  # Twilio retries of stored MessageSids
    burst += [answer(4, "maybe", "SMc4"), answer(99, "1", "SMd99")]  # unrecognised; a number never asked
    replies = submit_all(writer, burst)

    assert replies[0] == "Thank you, we recorded your answer: I'm safe."
    assert replies[30] == replies[31] == "Thank you, we recorded your answer: I need help."
    assert replies[32] == replies[2] and replies[33] == replies[30]  # a retry gets the first answer's reply
    assert replies[34].startswith("Sorry, we did not understand your reply. Are you safe?")
    assert replies[35] is None
    assert writer.answers == len(burst) and writer.batches < len(burst) / 4  # batched, not one by one

    assert tallies() == {"1": 28, "2": 2}  # 30 people answered; two changed their minds; retries count nothing
    answers = latest()
    assert sum(1 for k in answers.values() if k == "1") == 28 and sum(1 for k in answers.values() if k == "2") == 2
    rows = stored()
    assert len(rows) == len(burst) - 2  # every answer kept once (both of a person's), retries not stored again
    assert sum(1 for sid, _, _ in rows if sid == "SMa1") == 1
    assert ("SMb1", "2", True) in rows and ("SMc4", None, False) in rows and ("SMd99", None, False) in rows


def test_one_bad_answer_fails_only_its_own_request(question):
    from broadcaster.responses.answer_writer import SmsAnswerWriter

    writer = SmsAnswerWriter()
    burst = [answer(i, "1", f"SMok{i}") for i in range(1, 11)]
    burst.insert(5, answer(11, "1\x00", "SMbad"))  # PostgreSQL refuses NUL in text: the batch fails as a whole
    replies = submit_all(writer, burst)
    failed = [r for r in replies if isinstance(r, BaseException)]
    assert len(failed) == 1 and replies[5] is failed[0]
    assert all(isinstance(r, str) and "I'm safe" in r for i, r in enumerate(replies) if i != 5)
    assert tallies() == {"1": 10}
    assert len(stored()) == 10


def test_two_writers_answering_at_once_never_deadlock_or_miscount(question):
    """Two writers (two API processes) apply overlapping bursts: the same people, the same tally shards, both
    writers taking row locks at once. Every answer is stored; each person counts once, with their latest answer."""
    from broadcaster.responses.answer_writer import SmsAnswerWriter

    writers = [SmsAnswerWriter(), SmsAnswerWriter()]
    bursts: list[list[Any]] = [[], []]
    for i in range(1, 41):
        bursts[i % 2].append(answer(i, "1", f"SMw{i}"))
    for i in range(1, 41):  # then everyone answers again on the other writer ("2"), some twice with a retry
        bursts[(i + 1) % 2].append(answer(i, "2", f"SMx{i}"))
        if i % 5 == 0:
            bursts[i % 2].append(answer(i, "2", f"SMx{i}"))
    results: list[list[Any]] = [[], []]
    start = threading.Barrier(2)

    def run(n: int) -> None:
        start.wait()
        results[n] = submit_all(writers[n], bursts[n])

    threads = [threading.Thread(target=run, args=(n,)) for n in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(not isinstance(r, BaseException) for rs in results for r in rs), results
    assert writers[0].answers + writers[1].answers == 40 + 40 + 8
    rows = stored()
    assert len(rows) == 80 and len({sid for sid, _, _ in rows}) == 80
    # each person counted once: the tallies sum to the people, and agree with their latest answers
    answers = latest()
    assert sum(tallies().values()) == 40
    assert tallies() == {k: sum(1 for v in answers.values() if v == k) for k in ("1", "2") if k in answers.values()}


def test_nothing_acknowledged_is_lost_when_the_api_process_is_killed(
    db_url, question, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Answers posted through the signed webhook to a real API process, killed (SIGKILL) once a third have been
    acknowledged; the client then retries what got no 200 (and some that did) against a restarted process."""
    import aiohttp
    from tests.public.servers import run_service
    from twilio.request_validator import RequestValidator

    token = "writer-test-token"
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", token)
    people = range(1, 41)
    rounds = 5  # each person answers 5 times ("1","2","1",...): the latest one is what counts
    posts = [(i, r) for r in range(rounds) for i in people]

    async def post_all(base: str, todo: list[tuple[int, int]], kill: Any | None) -> set[tuple[int, int]]:
        acked: set[tuple[int, int]] = set()
        validator = RequestValidator(token)
        url = f"{base}/v1/webhooks/twilio/inbound"
        queue = list(todo)

        async def one(session: aiohttp.ClientSession) -> None:
            while queue:
                i, r = queue.pop(0)
                params = {"From": phone(i), "To": "+15005550006", "Body": str(1 + r % 2), "MessageSid": f"SMk{i}r{r}"}
                headers = {"X-Twilio-Signature": validator.compute_signature(url, params)}
                try:
                    async with session.post(url, data=params, headers=headers) as resp:
                        if resp.status == 200:
                            acked.add((i, r))
                except aiohttp.ClientError:
                    continue
                if kill is not None and len(acked) >= len(todo) // 3:
                    kill()

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            await asyncio.gather(*(one(session) for _ in range(8)))
        return acked

    env = {"TWILIO_AUTH_TOKEN": token, "MEMORY_ADAPTER_ENABLED": "true"}
    with run_service(db_url, tmp_path, **env) as base:
        killed = {"done": False}

        def kill() -> None:
            if not killed["done"]:
                killed["done"] = True
                os.kill(base.pid, signal.SIGKILL)

        first = asyncio.run(post_all(base, posts, kill))
    assert killed["done"] and len(first) < len(posts)
    stored_sids = {sid for sid, _, _ in stored()}
    assert {f"SMk{i}r{r}" for i, r in first} <= stored_sids  # every 200 is in the database

    # Twilio retries what got no 200, and, as providers do, some that did
    retry = [p for p in posts if p not in first] + sorted(first)[:20]
    with run_service(db_url, tmp_path, **env) as base:
        second = asyncio.run(post_all(base, retry, None))
    assert second == set(retry)
    rows = stored()
    assert len(rows) == len(posts) == len({sid for sid, _, _ in rows})  # each answer stored once
    # each person counted once, and the tallies agree with their latest answers
    answers = latest()
    assert sum(tallies().values()) == len(people)
    assert tallies() == {k: sum(1 for v in answers.values() if v == k) for k in ("1", "2") if k in answers.values()}


def test_closing_applies_what_is_queued_then_stops(db_url, question):
    """Shutdown (the app's lifespan) applies every queued answer, a person's second message too (carried to a
    batch after the one that held the stop), then the thread ends."""
    import threading

    from sqlalchemy import create_engine, text
    from tests.public.servers import wait_for

    from broadcaster.responses.answer_writer import SmsAnswerWriter

    writer = SmsAnswerWriter()
    burst = [answer(1, "1", "SMq1"), answer(1, "2", "SMq2"), answer(2, "1", "SMq3"), answer(2, "2", "SMq4")]
    engine = create_engine(db_url)
    locker = engine.connect()
    held = locker.begin()
    # person 3's recipient row is locked: the writer's first batch (person 3 alone) waits on it
    locker.execute(
        text(
            "SELECT 1 FROM question_recipients qr JOIN subscribers s ON s.id = qr.subscriber_id "
            "WHERE s.phone = :p FOR UPDATE OF qr"
        ),
        {"p": phone(3)},
    )

    def writer_waits_on_the_lock() -> bool:
        with engine.connect() as conn:
            return bool(
                conn.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock'"
                    )
                )
            )

    async def run() -> list[Any]:
        first = asyncio.ensure_future(writer.submit(answer(3, "1", "SMq0")))
        await asyncio.to_thread(wait_for, writer_waits_on_the_lock, 30)
        tasks = [asyncio.ensure_future(writer.submit(a)) for a in burst]
        await asyncio.sleep(0)  # the four answers are queued ...
        closing = asyncio.ensure_future(asyncio.to_thread(writer.close))
        await asyncio.to_thread(wait_for, lambda: writer._queue.qsize() == 5, 30)  # ... and then the stop
        held.commit()  # the first batch goes on; the next one takes the four answers and the stop together
        await closing
        return list(await asyncio.gather(first, *tasks))

    try:
        replies = asyncio.run(run())
    finally:
        locker.close()
        engine.dispose()
    assert all(isinstance(r, str) for r in replies), replies
    assert not [t for t in threading.enumerate() if t.name == "sms-answer-writer" and t.is_alive()]
    assert tallies() == {"1": 1, "2": 2} and len(stored()) == 5
