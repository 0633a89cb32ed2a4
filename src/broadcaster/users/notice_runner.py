"""The approval-notice runner: beside every delivery worker, it tells the people who can approve of each new
approval request (on the channels they opted in to) and escalates critical requests nobody approved in time
(users/notices.py). Any number may run; each person is told once per request and round."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import ClassVar

from broadcaster.settings import Settings, get_settings
from broadcaster.users import notices

log = logging.getLogger(__name__)


class ApprovalNoticeRunner:
    """Runs `notices.run_tick` every APPROVAL_NOTIFY_POLL_SECONDS."""

    #: staff notices go to the people who approve, never to the public: not a door (broadcaster/doors.py)
    door: ClassVar[str] = "none: tells staff who can approve of approval requests (never the public)"

    def __init__(self, settings: Settings | None = None, poll: float | None = None) -> None:
        self.settings = settings or get_settings()
        self.poll = poll if poll is not None else self.settings.approval_notify_poll_seconds
        self._stop = threading.Event()

    def run_once(self) -> dict[str, int]:
        return notices.run_tick(self.settings)

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await asyncio.to_thread(self.run_once)
            except Exception:
                log.exception("approval notices: a tick failed; retrying")
            await asyncio.to_thread(self._stop.wait, self.poll)

    def stop(self) -> None:
        self._stop.set()
