"""Sends deferred alert updates when their flapping window ends; runs beside every delivery worker.

A change to an alert-driven incident that came inside `min_update_minutes` of its last public update is kept on
the group row (`pending`, `due_at`); this runner finds due groups and applies the last reported state, each in
its own transaction under the group's row lock (so a concurrent notification and the runner never both send).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import ClassVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from broadcaster.db import get_engine
from broadcaster.integrations import service
from broadcaster.models import utcnow

log = logging.getLogger(__name__)

POLL_SECONDS = 5.0


class AlertFlushRunner:
    #: its door (broadcaster/doors.py; tests/core/test_doors.py)
    door: ClassVar[str] = "alerts.rule"

    def __init__(self, *, engine: Engine | None = None, poll: float = POLL_SECONDS) -> None:
        self.engine = engine or get_engine()
        self.poll = poll
        self._stop = threading.Event()

    def run_once(self) -> int:
        """Flush every due group; how many sent something."""
        with Session(self.engine) as session:
            due = service.due_groups(session, utcnow())
        sent = 0
        for group_id in due:
            try:
                with Session(self.engine) as session, session.begin():
                    if service.flush_group(session, group_id) is not None:
                        sent += 1
            except Exception:
                log.exception("alerts: sending the deferred update of group %s failed; retrying later", group_id)
        return sent

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await asyncio.to_thread(self.run_once)
            except Exception:
                log.exception("alerts: looking for deferred updates failed")
            await asyncio.sleep(self.poll)

    def stop(self) -> None:
        self._stop.set()
