"""Two-way responses (issue 12): answers per second through the signed Twilio inbound webhook, and the tally
query's latency on a 1M-recipient question, each against a baseline measured in the same run.

Starts (and stops, by PID) one API process (`uvicorn broadcaster.asgi:app`, no in-process worker) on a private
PostgreSQL database, then:

1. **Answers.** 100,000 people were asked "Are you safe?" (seeded in SQL); each answers once by SMS ("1",
   "2", "safe", ...) through `POST /v1/webhooks/twilio/inbound`, signed with `X-Twilio-Signature` like
   Twilio's (signatures computed before the clock starts), from `--concurrency` connections. Baselines in
   the same run: the same webhook with `HELP` (signature check, form parsing and a TwiML reply, no answer
   recorded) and `GET /healthz`. Checks afterwards: exactly one counted response per person and tallies
   summing to the answers. Target: >= 1,000 answers/s per API process.
2. **Tally query.** A question asked to 1,000,000 people (60% answered: question_recipients, responses and
   tallies seeded in SQL): `GET /v1/updates/{id}/responses?segments=false` (counts per answer and channel,
   "no answer yet", the first page of people with needs-help first) and with segments (per category, tag,
   area), sequentially; p50/p99 against `GET /v1/categories` (an authenticated trivial read). Target: p99 <
   100 ms.

    .venv/bin/python bench/responses.py [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
        [--answers 100000] [--big 1000000] [--concurrency 32] [--repeats 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import (
    free_port,
    prepare_database,
    process_cpu_seconds,
    service_env,
    start_uvicorn,
    stop,
    tree_cpu_seconds,
    wait_http,
    workspace,
)

TARGET_RATE = 1000.0
TARGET_P99_MS = 100.0
TOKEN = "bench-twilio-token"
SID = "AC" + "1" * 32
BODIES = ["1", " 1 ", "1 safe", "Safe", "2", "2 need help"]


def log(msg: str) -> None:
    print(msg, flush=True)


def sql(url: str, *statements: str, params: dict[str, Any] | None = None) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        for s in statements:
            conn.execute(text(s), params or {})
    engine.dispose()


def scalar(url: str, statement: str) -> Any:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        value = conn.execute(text(statement)).scalar()
    engine.dispose()
    return value


def seed_people(url: str, prefix: str, n: int) -> None:
    """`n` subscribers with phone `+1<prefix><7 digits>` (Python-side column defaults applied by from_select)."""
    from sqlalchemy import create_engine, func, literal, select
    from sqlalchemy.dialects.postgresql import insert

    from broadcaster.models.delivery import Subscriber

    g = func.generate_series(1, n).table_valued("g").render_derived()
    src = select(
        (literal(f"+1{prefix}") + func.lpad(func.cast(g.c.g, type_=Subscriber.name.type), 7, "0")).label("phone"),
        (literal("Person ") + func.cast(g.c.g, type_=Subscriber.name.type)).label("name"),
    )
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(insert(Subscriber).from_select(["phone", "name"], src))
    engine.dispose()


def question(client: httpx.Client, title: str) -> tuple[int, int]:
    """A published update asking "Are you safe?"; (update id, question id)."""
    inc = client.post("/v1/incidents", json={"title": title, "category": "emergency", "severity": "major"})
    inc.raise_for_status()
    upd = client.post(
        f"/v1/incidents/{inc.json()['id']}/updates",
        json={
            "body": "A chemical leak was reported near the river. Stay indoors.",
            "summary": "Chemical leak: stay indoors",
            "channels": ["sms"],
            "question": {
                "text": "Are you safe?",
                "options": [
                    {"label": "I'm safe", "keywords": ["SAFE"]},
                    {"label": "I need help", "needs_help": True},
                ],
            },
        },
    )
    upd.raise_for_status()
    uid = upd.json()["id"]
    client.post(f"/v1/updates/{uid}/publish").raise_for_status()
    qid = client.get(f"/v1/updates/{uid}/question").json()["id"]
    return uid, qid


def ask(url: str, qid: int, prefix: str, answered_fraction: float = 0.0) -> None:
    """Everyone with a phone starting `+1<prefix>` was asked question `qid`; the first `answered_fraction` of
    them answered (recipients, responses and tallies written as the answer path would)."""
    like = f"+1{prefix}%"
    sql(
        url,
        "INSERT INTO question_recipients (question_id, subscriber_id, escalation_step) "
        f"SELECT :q, id, 0 FROM subscribers WHERE phone LIKE '{like}'",
        params={"q": qid},
    )
    if answered_fraction:
        sql(
            url,
            "UPDATE question_recipients qr SET option_key = CASE WHEN s.id % 10 = 0 THEN '2' ELSE '1' END, "
            "answer_channel = CASE WHEN s.id % 3 = 0 THEN 'email' ELSE 'sms' END, answered_at = now() "
            f"FROM subscribers s WHERE s.id = qr.subscriber_id AND qr.question_id = :q AND s.id % 10 < "
            f"{int(answered_fraction * 10)}",
            "INSERT INTO responses (question_id, subscriber_id, channel, address, body, option_key, counted, "
            "provider_event_id, received_at) SELECT question_id, subscriber_id, answer_channel, '', option_key, "
            "option_key, true, 'seed-' || question_id || '-' || subscriber_id, now() FROM question_recipients "
            "WHERE question_id = :q AND answered_at IS NOT NULL",
            "INSERT INTO response_tallies (question_id, option_key, channel, count) SELECT question_id, option_key, "
            "answer_channel, count(*) FROM question_recipients WHERE question_id = :q AND answered_at IS NOT NULL "
            "GROUP BY question_id, option_key, answer_channel",
            params={"q": qid},
        )
    sql(
        url,
        "UPDATE questions SET recipients = (SELECT count(*) FROM question_recipients WHERE question_id = :q) "
        "WHERE id = :q",
        params={"q": qid},
    )
    sql(url, "ANALYZE")


def signed_requests(base: str, prefix: str, n: int, body: str | None = None) -> list[tuple[bytes, str]]:
    """(form body, X-Twilio-Signature) of one inbound SMS per person, in random order."""
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(TOKEN)
    url = base + "/v1/webhooks/twilio/inbound"
    rng = random.Random(12)
    out = []
    for i in range(1, n + 1):
        params = {
            "MessageSid": f"SM{prefix}{i:030d}",
            "AccountSid": SID,
            "From": f"+1{prefix}{i:07d}",
            "To": "+15005550006",
            "Body": body if body is not None else BODIES[i % len(BODIES)],
            "NumMedia": "0",
        }
        out.append((urlencode(params).encode(), validator.compute_signature(url, params)))
    rng.shuffle(out)
    return out


async def post_all(url: str, requests: list[tuple[bytes, str]], concurrency: int) -> tuple[float, int]:
    """POST every signed form with `concurrency` connections; (seconds, non-200 answers)."""
    import aiohttp

    queue = list(reversed(requests))
    bad = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal bad
        while queue:
            body, signature = queue.pop()
            headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    bad += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        return time.perf_counter() - t0, bad


async def get_all(url: str, n: int, concurrency: int) -> float:
    import aiohttp

    left = n

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            async with session.get(url) as resp:
                await resp.read()

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        return time.perf_counter() - t0


def latencies(client: httpx.Client, path: str, repeats: int) -> list[float]:
    for _ in range(5):  # warm-up
        client.get(path).raise_for_status()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        client.get(path).raise_for_status()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def backend_cpu(url: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to this database (same host, from /proc)."""
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    pids = scalar_list(url, f"SELECT pid FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()")
    out = {}
    for pid in pids:
        if (seconds := process_cpu_seconds(int(pid))) is not None:
            out[int(pid)] = seconds
    return out


def scalar_list(url: str, statement: str) -> list[Any]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        values = list(conn.execute(text(statement)).scalars())
    engine.dispose()
    return values


class Cpu:
    """CPU seconds the API process and this database's PostgreSQL backends spend in a phase (backends that end
    inside the phase are missed: a lower bound for the database's share)."""

    def __init__(self, pid: int, url: str) -> None:
        self.pid, self.url = pid, url
        self.api0 = tree_cpu_seconds(pid)
        self.db0 = backend_cpu(url)

    def done(self) -> tuple[float, float]:
        api = tree_cpu_seconds(self.pid) - self.api0
        db1 = backend_cpu(self.url)
        db = sum(v - self.db0.get(pid, 0.0) for pid, v in db1.items())
        return api, db


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--answers", type=int, default=100_000)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    with workspace("bc-responses-bench-", args.database_url) as (tmp, db_url):
        return measure(args, tmp, db_url)


def measure(args: argparse.Namespace, tmp: Path, db_url: str) -> int:
    """Start the API process (files in `tmp`, on the private database `db_url`), run both phases, print the
    figures; 1 when a target is missed or the tallies are wrong."""
    service: subprocess.Popen[bytes] | None = None
    try:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = service_env(
            db_url,
            base,
            worker_in_process=False,
            TWILIO_ACCOUNT_SID=SID,
            TWILIO_AUTH_TOKEN=TOKEN,
            TWILIO_FROM_NUMBER="+15005550006",
            SECRET_KEY="bench-secret-key-0123456789abcdef",
            APPROVAL_AUDIENCE_THRESHOLD="0",
        )
        os.environ.update({k: env[k] for k in ("PUBLIC_URL", "SECRET_KEY")})
        key = prepare_database(db_url)
        t0 = time.perf_counter()
        seed_people(db_url, "555", args.answers)
        seed_people(db_url, "666", args.big)
        log(f"seeded {args.answers + args.big:,} subscribers in {time.perf_counter() - t0:.1f} s")
        service = start_uvicorn("broadcaster.asgi:app", port, env=env, cwd=tmp)
        wait_http(base + "/healthz", service, timeout=300)
        client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        client.post(
            "/v1/categories",
            json={"slug": "emergency", "name": "Emergency", "channels": {"major": ["sms"]}},
        ).raise_for_status()
        big_update, big_q = question(client, "Big one")
        t0 = time.perf_counter()
        ask(db_url, big_q, "666", answered_fraction=0.6)
        log(f"asked {args.big:,} people (60% answered) in {time.perf_counter() - t0:.1f} s")
        _, small_q = question(client, "Answers")  # the latest open question sent to the +1555 numbers
        ask(db_url, small_q, "555")

        # --- 1. answers -------------------------------------------------------------------------------------
        webhook = base + "/v1/webhooks/twilio/inbound"
        answers = signed_requests(base, "555", args.answers)
        helps = signed_requests(base, "777", min(args.answers, 20_000), body="HELP")
        load = os.getloadavg()[0]
        health_s = asyncio.run(get_all(base + "/healthz", len(helps), args.concurrency))
        cpu = Cpu(service.pid, db_url)
        help_s, help_bad = asyncio.run(post_all(webhook, helps, args.concurrency))
        help_cpu = cpu.done()
        cpu = Cpu(service.pid, db_url)
        answer_s, answer_bad = asyncio.run(post_all(webhook, answers, args.concurrency))
        answer_cpu = cpu.done()
        rate = args.answers / answer_s
        help_rate = len(helps) / help_s
        health_rate = len(helps) / health_s
        counted = scalar(db_url, f"SELECT count(*) FROM responses WHERE question_id = {small_q} AND counted")
        people = scalar(db_url, f"SELECT count(DISTINCT subscriber_id) FROM responses WHERE question_id = {small_q}")
        tallied = scalar(db_url, f"SELECT coalesce(sum(count), 0) FROM response_tallies WHERE question_id = {small_q}")
        answered = scalar(
            db_url,
            f"SELECT count(*) FROM question_recipients WHERE question_id = {small_q} AND answered_at IS NOT NULL",
        )
        log(f"1. answers through the signed Twilio inbound webhook, concurrency {args.concurrency}, load {load:.1f}")
        log(f"   GET /healthz                       {health_rate:8,.0f} req/s")
        log(f"   inbound HELP (no answer recorded)  {help_rate:8,.0f} req/s   ({help_bad} non-200)")
        log(
            f"   inbound answers                    {rate:8,.0f} answers/s ({answer_bad} non-200)  "
            f"= {rate / help_rate:.2f}x HELP, {rate / health_rate:.2f}x /healthz   (target >= {TARGET_RATE:,.0f}/s)"
        )
        for name, n, (api, db) in (("HELP", len(helps), help_cpu), ("answers", args.answers, answer_cpu)):
            log(
                f"   CPU per request ({name}): API process {api / n * 1000:.2f} ms, PostgreSQL backends "
                f"{db / n * 1000:.2f} ms  -> {n / api:,.0f}/s per API-process CPU second"
            )
        log(f"   load after {os.getloadavg()[0]:.1f}")
        log(f"   counted {counted:,}, people {people:,}, answered {answered:,}, tallies sum {tallied:,}")
        exact = counted == people == answered == tallied == args.answers

        # --- 2. tally query ----------------------------------------------------------------------------------
        base_ms = latencies(client, "/v1/categories", args.repeats)
        counts_ms = latencies(client, f"/v1/updates/{big_update}/responses?segments=false", args.repeats)
        seg_ms = latencies(client, f"/v1/updates/{big_update}/responses", max(10, args.repeats // 10))
        tally = client.get(f"/v1/updates/{big_update}/responses?segments=false").json()
        log(f"2. tally query on a {args.big:,}-recipient question ({tally['answered']:,} answered)")
        for name, ms in (
            ("GET /v1/categories (baseline)", base_ms),
            ("GET .../responses?segments=false", counts_ms),
            ("GET .../responses (with segments)", seg_ms),
        ):
            log(
                f"   {name:36s} p50 {statistics.median(ms):7.1f} ms  p99 {pct(ms, 99):7.1f} ms  "
                f"({pct(ms, 99) / pct(base_ms, 99):.1f}x baseline p99, n={len(ms)})"
            )
        ok = rate >= TARGET_RATE and pct(counts_ms, 99) < TARGET_P99_MS and exact
        log(
            f"answers {'OK' if rate >= TARGET_RATE else 'BELOW TARGET'}; counts p99 "
            f"{'OK' if pct(counts_ms, 99) < TARGET_P99_MS else 'ABOVE TARGET'}; tallies {'exact' if exact else 'WRONG'}"
        )
        return 0 if ok else 1
    finally:
        stop(service)


if __name__ == "__main__":
    sys.exit(main())
