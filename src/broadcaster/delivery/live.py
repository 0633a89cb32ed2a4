"""Live progress of a broadcast: the report as server-sent events, and deliveries per time bucket.

`events` polls the report once a second in a worker thread, each time with a short session of its own (no
database connection is held while the client reads, however slow it is), and sends it only when it changed.
sse-starlette writes the heartbeat comments (`: ping`), stops streams when uvicorn shuts down, notices a
client that went away, and drops one that does not read within `SEND_TIMEOUT` seconds.

`timeline` groups the broadcast's deliveries by time bucket inside the database (both backends).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
from pydantic import BaseModel, Field
from sqlalchemy import BigInteger, Integer, cast, func, select
from sqlalchemy.orm import Session
from sse_starlette import ServerSentEvent
from starlette.requests import Request

from broadcaster.delivery import reports
from broadcaster.models.delivery import Delivery

#: a broadcast in one of these states changes no more: the stream sends it and ends
FINAL_STATES = frozenset({"done", "cancelled", "failed"})
#: seconds between two looks at the report (so at most one event per second)
POLL_SECONDS = 1.0
#: a client that does not take an event within this many seconds is dropped
SEND_TIMEOUT = 30.0
#: reconnection delay suggested to EventSource clients (ms)
RETRY_MS = 3000
#: `?bucket=` values and their width in seconds
BUCKETS = {"1s": 1, "10s": 10, "1m": 60}


def _report_json(broadcast_id: int) -> tuple[str, str]:
    """The report as JSON (and the broadcast's state), read with a session of its own (runs in a thread)."""
    from broadcaster.db import session_scope

    with session_scope() as session:
        report = reports.report(session, broadcast_id)
        return report.model_dump_json(), report.state


async def first_report(broadcast_id: int) -> tuple[str, str]:
    """The report now (404 when the broadcast does not exist), off the event loop."""
    return await anyio.to_thread.run_sync(_report_json, broadcast_id)


async def events(request: Request, broadcast_id: int, first: tuple[str, str]) -> AsyncIterator[ServerSentEvent]:
    """`report` events whenever the report changes (at most one a second); after a final state, an `end`."""
    data, state = first
    sent = 0
    while True:
        sent += 1
        yield ServerSentEvent(data=data, event="report", id=str(sent), retry=RETRY_MS)
        if state in FINAL_STATES:
            yield ServerSentEvent(data=f'{{"state": "{state}"}}', event="end", id=str(sent + 1))
            return
        previous = data
        while data == previous:
            await anyio.sleep(POLL_SECONDS)
            if await request.is_disconnected():
                return
            data, state = await anyio.to_thread.run_sync(_report_json, broadcast_id)


# --- timeline --------------------------------------------------------------------------------------------


class TimelinePoint(BaseModel):
    at: datetime = Field(description="Start of the bucket (UTC).")
    sent: int = Field(description="Deliveries accepted by the provider in this bucket (by `sent_at`).")
    failed: int = Field(description="Deliveries that failed, went undelivered or bounced in this bucket.")


class TimelineOut(BaseModel):
    broadcast_id: int
    bucket: str = Field(description="Bucket width: 1s, 10s or 1m.")
    bucket_seconds: int
    points: list[TimelinePoint] = Field(description="Buckets with at least one event, oldest first.")


def _bucket(session: Session, column: Any, width: int) -> Any:
    """SQL for the start of `column`'s bucket, in seconds since the epoch."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.floor(func.extract("epoch", column) / width), BigInteger) * width
    # SQLite stores naive UTC text; strftime('%s') reads it as UTC
    return (cast(func.strftime("%s", column), Integer) // width) * width


def timeline(session: Session, broadcast_id: int, bucket: str) -> TimelineOut:
    """Sent and failed deliveries per time bucket, counted in the database."""
    reports.get_broadcast(session, broadcast_id)
    width = BUCKETS[bucket]
    points: dict[int, dict[str, int]] = {}
    sent_at = _bucket(session, Delivery.sent_at, width).label("b")
    for start, n in session.execute(
        select(sent_at, func.count())
        .where(Delivery.broadcast_id == broadcast_id, Delivery.sent_at.is_not(None))
        .group_by(sent_at)
    ):
        points.setdefault(int(start), {"sent": 0, "failed": 0})["sent"] = int(n)
    failed_at = _bucket(session, Delivery.updated_at, width).label("b")
    for start, n in session.execute(
        select(failed_at, func.count())
        .where(Delivery.broadcast_id == broadcast_id, Delivery.status.in_(reports.FAILED))
        .group_by(failed_at)
    ):
        points.setdefault(int(start), {"sent": 0, "failed": 0})["failed"] = int(n)
    return TimelineOut(
        broadcast_id=broadcast_id,
        bucket=bucket,
        bucket_seconds=width,
        points=[TimelinePoint(at=datetime.fromtimestamp(k, UTC), **points[k]) for k in sorted(points)],
    )
