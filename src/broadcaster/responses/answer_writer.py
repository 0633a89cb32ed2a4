"""One writer thread per API process that applies inbound SMS answers in batches (PostgreSQL).

The inbound webhook (`responses/inbound_fastpath.py`) puts each answer on a queue and awaits its reply. The
writer takes every answer waiting (up to `max_batch`), applies them in one transaction with
`sms_answers.apply_sms_answers` (five statements for the batch) and, only after the commit, hands each request
its reply: nothing is answered 200 before it is stored, so a crash loses nothing (Twilio retries an answer that
got no 200, and the MessageSid makes the retry a no-op). No timer: answers arriving while a batch commits form
the next one, so an idle service answers at once and a busy one shares round trips and commits.

- A second message from the same number (or the same MessageSid) waits for the next batch, so one person's
  answers are applied in arrival order.
- A deadlock or serialization failure retries the batch; any other error applies the batch's answers one by
  one, so one bad answer fails only its own request (the webhook then hands it to the FastAPI route).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections import deque
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError

from broadcaster.responses.sms_answers import SmsAnswer, apply_sms_answers

log = logging.getLogger(__name__)

#: PostgreSQL SQLSTATEs after which the same batch may simply run again
_RETRYABLE = {"40P01", "40001"}
_ATTEMPTS = 3


@dataclass(slots=True)
class _Job:
    answer: SmsAnswer
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[str | None]


def _hand_over(job: _Job, reply: str | None, error: BaseException | None) -> None:
    # a closed loop (the app stopped): the answer is stored, nobody waits for its reply
    with contextlib.suppress(RuntimeError):
        job.loop.call_soon_threadsafe(_settle, job.future, reply, error)


def _settle(future: asyncio.Future[str | None], reply: str | None, error: BaseException | None) -> None:
    if future.done():  # the request went away meanwhile; its answer is stored all the same
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(reply)


class SmsAnswerWriter:
    """`await writer.submit(answer)` -> the SMS reply, once the answer is committed."""

    def __init__(self, max_batch: int = 200) -> None:
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._carried: deque[_Job] = deque()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        #: batches applied and answers in them (read by tests and the bench)
        self.batches = 0
        self.answers = 0

    async def submit(self, answer: SmsAnswer) -> str | None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str | None] = loop.create_future()
        self._start()
        self._queue.put(_Job(answer, loop, future))
        # shielded: a client that disconnects does not cancel the write, only its wait for the reply
        return await asyncio.shield(future)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="sms-answer-writer", daemon=True)
                self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Apply what is queued, then stop the thread (a later submit starts a new one)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while True:
            batch, stop = self._next_batch()
            stopping = stopping or stop
            if batch:
                self._apply(batch)
            if stopping and not self._carried:
                return

    def _next_batch(self) -> tuple[list[_Job], bool]:
        """Carried answers first, then whatever waits (blocking only when there is nothing at all)."""
        candidates: list[_Job] = list(self._carried)
        self._carried.clear()
        stop = False
        if not candidates:
            first = self._queue.get()
            if first is None:
                return [], True
            candidates.append(first)
        while len(candidates) < self.max_batch:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                stop = True
                break
            candidates.append(job)
        batch: list[_Job] = []
        senders: set[str] = set()
        sids: set[str] = set()
        for job in candidates:
            sender, sid = job.answer.sender, job.answer.sid
            if sender in senders or (sid is not None and sid in sids):
                self._carried.append(job)  # after the batch holding the same person's earlier message
                continue
            batch.append(job)
            senders.add(sender)
            if sid is not None:
                sids.add(sid)
        return batch, stop

    def _apply(self, batch: list[_Job]) -> None:
        from broadcaster.db import session_scope

        for attempt in range(1, _ATTEMPTS + 1):
            try:
                with session_scope() as session:
                    replies = apply_sms_answers(session, [job.answer for job in batch])
            except DBAPIError as exc:
                if getattr(exc.orig, "sqlstate", None) in _RETRYABLE and attempt < _ATTEMPTS:
                    log.info("SMS answer batch of %d: %s; running it again", len(batch), type(exc.orig).__name__)
                    continue
                log.warning("SMS answer batch of %d failed; applying its answers one by one", len(batch))
                break
            except Exception:
                log.warning("SMS answer batch of %d failed; applying its answers one by one", len(batch), exc_info=True)
                break
            self.batches += 1
            self.answers += len(batch)
            for job, reply in zip(batch, replies, strict=True):
                _hand_over(job, reply, None)
            return
        for job in batch:
            try:
                with session_scope() as session:
                    reply = apply_sms_answers(session, [job.answer])[0]
            except Exception as exc:  # the request's own failure: the webhook hands it to the route
                _hand_over(job, None, exc)
            else:
                self.answers += 1
                _hand_over(job, reply, None)
