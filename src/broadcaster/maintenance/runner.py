"""Sends due maintenance notices; runs beside every delivery worker (like the alert flush runner).

Each notice is sent in its own transaction: lock the window (`FOR UPDATE SKIP LOCKED` on PostgreSQL: a window
another runner is serving is skipped this round), claim the notice (a conditional UPDATE from `pending`), check
that the window's schedule approval covers it (`schedule.authorize`: else it waits, recorded), publish its
update through the gate with that approval (the whole delivery pipeline) and mark it sent, commit. A crash
before the commit leaves the notice pending (nothing was published); after it, the notice is sent and never
looked at again: exactly once, with any number of runners, across restarts. A notice that fell due while no
worker ran goes out when one comes back (stale ones are skipped: see `service.send_notice`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from typing import ClassVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from broadcaster import clock
from broadcaster.db import get_engine
from broadcaster.maintenance import schedule, service

log = logging.getLogger(__name__)

POLL_SECONDS = 5.0


class MaintenanceRunner:
    #: its door (broadcaster/doors.py; tests/core/test_doors.py)
    door: ClassVar[str] = "maintenance.notice"

    def __init__(self, *, engine: Engine | None = None, poll: float = POLL_SECONDS) -> None:
        self.engine = engine or get_engine()
        self.poll = poll
        self.id = f"maint-{uuid.uuid4().hex[:12]}"
        self._stop = threading.Event()

    def run_once(self) -> dict[str, int]:
        """Send every due notice; counts of `sent`, `skipped` (stale) and `failed`, and of `waiting` (the window's
        schedule approval no longer covers it) when there are any."""
        counts = {"sent": 0, "skipped": 0, "failed": 0}
        with Session(self.engine) as session:
            due = service.due_notices(session, clock.now())
        for notice_id, window_id in due:
            try:
                with Session(self.engine) as session, session.begin():
                    outcome = service.send_notice(session, notice_id, window_id, self.id, schedule.authorize)
            except Exception as exc:
                counts["failed"] += 1
                log.exception("maintenance: notice %s of window %s failed; retrying later", notice_id, window_id)
                try:
                    with Session(self.engine) as session, session.begin():
                        service.record_failure(session, notice_id, f"{type(exc).__name__}: {exc}", clock.now())
                except Exception:
                    log.exception("maintenance: recording the failure of notice %s failed", notice_id)
                continue
            if outcome is not None:
                counts[outcome] = counts.get(outcome, 0) + 1
        return counts

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await asyncio.to_thread(self.run_once)
            except Exception:
                log.exception("maintenance: looking for due notices failed")
            await asyncio.sleep(self.poll)

    def stop(self) -> None:
        self._stop.set()
