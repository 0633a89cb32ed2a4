"""Multi-process delivery harness: real `broadcaster worker` (or `serve`) processes against the fake
provider server in its own process, bulk-seeded subscribers, publishing through the API, and counting
what actually arrived at the provider (see `broadcaster.fakes.counting`).

Every wait here is bounded by a deadline and every process is stopped in `Cluster.stop_all` (call it in a
`finally`), so a broken engine makes a test fail with numbers instead of hanging the suite.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from unittest import mock

from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool
from tests.approving import confirm

from broadcaster.fakes.counting import accepted, per_recipient, sends
from broadcaster.fakes.state import RecordedRequest
from broadcaster.fakes.testing import FakeHandle
from broadcaster.settings import Settings

BROADCASTER = Path(sys.executable).with_name("broadcaster")
#: rate-limiter burst, as ratelimit.py documents it: one second of tokens
BURST_SECONDS = 1.0


def worker_env(db_url: str, fake: FakeHandle, **extra: str | int | float) -> dict[str, str]:
    """Environment of a worker (or serve) process: the database, every provider at the fake, quiet logs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "SENDGRID_", "WORKER_", "RETRY_"))}
    env.update(fake.env(webhook=False))
    env.update(
        {
            "DATABASE_URL": db_url,
            "PUBLIC_URL": "http://testserver",
            "WORKER_IN_PROCESS": "false",
            "WORKER_POLL_SECONDS": "0.2",
            "LOG_LEVEL": "WARNING",
            "APPROVAL_SEVERITY": "none",
            "APPROVAL_AUDIENCE_THRESHOLD": "0",
            "SEND_HOLD_SECONDS": "0",  # measured from publish to the first call: no send hold
        }
    )
    env.update({k.upper(): str(v) for k, v in extra.items()})
    return env


def settings_of(env: dict[str, str]) -> Settings:
    """The settings a process started with `env` reads (to derive bounds such as concurrency x chunk)."""
    with mock.patch.dict(os.environ, env, clear=True):
        return Settings(_env_file=None)


@dataclass
class Cluster:
    """Worker (or serve) processes started with one environment; logs under `tmp`."""

    env: dict[str, str]
    tmp: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, *args: str, **extra_env: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 (the child keeps writing to it)
        cmd = [str(BROADCASTER), *(args or ("worker",))]
        proc = subprocess.Popen(  # noqa: S603 (our own CLI)
            cmd, env={**self.env, **extra_env}, cwd=self.tmp, stdout=log, stderr=subprocess.STDOUT
        )
        self.procs[name] = proc
        return proc

    def kill(self, name: str) -> None:
        """kill -9: no cleanup, no lease release."""
        proc = self.procs[name]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def alive(self) -> dict[str, bool]:
        return {name: p.poll() is None for name, p in self.procs.items()}

    def stop_all(self, grace: float = 5.0) -> None:
        """SIGTERM every process, SIGKILL what is still running after `grace` seconds (in total)."""
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in self.procs.values():
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def log_tail(self, lines: int = 15) -> str:
        out = []
        for name in self.procs:
            path = self.tmp / f"{name}.log"
            tail = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
            out.append(f"--- {name} (exit {self.procs[name].poll()}) ---\n" + "\n".join(tail))
        return "\n".join(out)


@contextmanager
def cluster(env: dict[str, str], tmp: Path) -> Iterator[Cluster]:
    c = Cluster(env, tmp)
    try:
        yield c
    finally:
        c.stop_all()


def engine_for(db_url: str) -> Engine:
    """A pool-less engine for the harness's own reads: a terminated backend never poisons a later read."""
    return create_engine(db_url, poolclass=NullPool)


def retrying(fn: Callable[[], Any], attempts: int = 5) -> Any:
    """Run a harness read again when the database dropped the connection under it (backend termination)."""
    for i in range(attempts):
        try:
            return fn()
        except OperationalError:
            if i == attempts - 1:
                raise
            time.sleep(0.2)
    return None


def seed_subscribers(engine: Engine, n: int, *, start: int = 0, tags: list[str] | None = None) -> list[str]:
    """Insert `n` SMS subscribers in one multi-row statement; returns their phone numbers (+1555NNNNNNN)."""
    from broadcaster.models.audience import SubscriberTag
    from broadcaster.models.delivery import Subscriber

    phones = [f"+1555{start + i:07d}" for i in range(n)]
    rows = [{"phone": p, "email": None, "locale": "en"} for p in phones]
    with engine.begin() as conn:
        for i in range(0, len(rows), 5000):
            ids = conn.scalars(
                insert(Subscriber).returning(Subscriber.id, sort_by_parameter_order=True), rows[i : i + 5000]
            ).all()
            if tags:
                conn.execute(insert(SubscriberTag), [{"subscriber_id": sid, "tag": t} for sid in ids for t in tags])
    return phones


def create_category(client: Any, headers: dict[str, str]) -> None:
    """The `emergency` routing-map entry (as the shared `emergency_category` fixture makes it)."""
    resp = client.post(
        "/v1/categories",
        headers=headers,
        json={
            "slug": "emergency",
            "name": "Emergency",
            "contact": {"phone": "+15551234567", "opening_hours": "24/7"},
            "channels": {"critical": ["sms"], "major": ["sms"], "minor": ["sms"]},
        },
    )
    assert resp.status_code == 201, resp.text


def publish(
    client: Any,
    headers: dict[str, str],
    body: str,
    *,
    severity: str = "major",
    channels: list[str] | None = None,
    audience: dict[str, Any] | None = None,
) -> tuple[int, float]:
    """Create an incident in `emergency`, publish one update with `body`; (broadcast id, wall time of the
    publish request). `client` is a TestClient or an httpx.Client on a running server."""
    inc = client.post(
        "/v1/incidents",
        headers=headers,
        json={"title": f"Incident {body[:40]}", "category": "emergency", "severity": severity},
    )
    assert inc.status_code == 201, inc.text
    update: dict[str, Any] = {"body": body, "summary": body[:80], "channels": channels or ["twilio-sms"]}
    if audience is not None:
        update["audience"] = audience
    upd = client.post(f"/v1/incidents/{inc.json()['id']}/updates", headers=headers, json=update)
    assert upd.status_code == 201, upd.text
    at = time.time()
    pub = client.post(f"/v1/updates/{upd.json()['id']}/publish", json=confirm(upd.json()["id"]), headers=headers)
    assert pub.status_code == 200, pub.text
    return int(pub.json()["broadcast_id"]), at


@dataclass
class BroadcastState:
    state: str | None
    finished_at: datetime | None
    statuses: dict[str, int]


def broadcast_state(engine: Engine, bid: int) -> BroadcastState:
    from broadcaster.models.delivery import Broadcast, Delivery

    def read() -> BroadcastState:
        with engine.connect() as conn:
            row = conn.execute(select(Broadcast.state, Broadcast.finished_at).where(Broadcast.id == bid)).first()
            counts = conn.execute(
                select(Delivery.status, func.count()).where(Delivery.broadcast_id == bid).group_by(Delivery.status)
            ).all()
        return BroadcastState(
            row.state if row else None, row.finished_at if row else None, {s: int(n) for s, n in counts}
        )

    result: BroadcastState = retrying(read)
    return result


def delivery_rows(engine: Engine, bid: int) -> list[Any]:
    from broadcaster.models.delivery import Delivery

    def read() -> list[Any]:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    select(
                        Delivery.id, Delivery.address, Delivery.status, Delivery.error_reason, Delivery.attempts
                    ).where(Delivery.broadcast_id == bid)
                )
            )

    rows: list[Any] = retrying(read)
    return rows


def wait_for(predicate: Callable[[], bool], deadline: float, step: float = 0.1) -> bool:
    """Poll `predicate` until it holds (True) or the monotonic `deadline` passes (False)."""
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def settle(
    fake: FakeHandle, engine: Engine, bids: list[int], deadline: float, quiet: float = 2.0
) -> tuple[bool, dict[int, BroadcastState]]:
    """Wait until every broadcast is finished (done/cancelled/failed) AND the fake is quiet: no new request
    for `quiet` seconds and none in flight. (settled, the broadcasts' last states)."""
    last_count, last_change = -1, time.monotonic()
    states: dict[int, BroadcastState] = {}
    while True:
        now = time.monotonic()
        count = fake.count()
        if count != last_count:
            last_count, last_change = count, now
        states = {bid: broadcast_state(engine, bid) for bid in bids}
        finished = all(s.state in ("done", "cancelled", "failed") for s in states.values())
        if finished and now - last_change >= quiet and fake.in_flight() == 0:
            return True, states
        if now > deadline:
            return False, states
        time.sleep(0.25)


def body_sends(fake: FakeHandle, body: str, adapter: str = "twilio-sms") -> list[RecordedRequest]:
    """Send requests of one broadcast (told apart by the body that reached the provider), in arrival order."""
    marker = body[:30]
    return [r for r in sends(fake.requests("twilio"), adapter) if marker in (r.form_value("Body") or "")]


@dataclass(frozen=True)
class Reach:
    """Who got one broadcast at the provider (accepted sends only)."""

    received: int  # distinct recipients with at least one accepted message
    missing: list[str]  # expected recipients with none
    duplicates: int  # extra accepted copies, over all recipients
    most: int  # the most copies one recipient got

    def __str__(self) -> str:
        return (
            f"{self.received} reached, {len(self.missing)} missing, {self.duplicates} duplicates "
            f"(max {self.most} copies to one recipient)"
        )


def reach(requests: list[RecordedRequest], expected: list[str]) -> Reach:
    counts = per_recipient(accepted(requests))
    return Reach(
        received=len(counts),
        missing=[p for p in expected if counts.get(p, 0) == 0],
        duplicates=sum(n - 1 for n in counts.values() if n > 1),
        most=max(counts.values(), default=0),
    )


def terminate_backends(db_url: str) -> int:
    """`pg_terminate_backend` every other connection to this database (workers, API pool, LISTEN)."""
    engine = create_engine(db_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            return len(
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).all()
            )
    finally:
        engine.dispose()


def suspected_duplicates(report: Any) -> int:
    """Sum of every `suspected_duplicates` count anywhere in a broadcast report (0 when it has none)."""
    if isinstance(report, dict):
        total = 0
        for key, value in report.items():
            if "suspected" in key and isinstance(value, int | float):
                total += int(value)
            else:
                total += suspected_duplicates(value)
        return total
    if isinstance(report, list):
        return sum(suspected_duplicates(v) for v in report)
    return 0
