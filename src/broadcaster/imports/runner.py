"""The import job runner: claims a queued job with a lease, streams its file and upserts it in batches.

It runs beside the delivery worker (`broadcaster worker`, or the in-process worker of `broadcaster serve`),
as its own asyncio task doing the work in a thread, so neither the event loop nor delivery waits for an
import. Jobs survive restarts: each batch commits its upserts together with the job's progress and renews
the lease; a job left `running` by a runner that died is taken over when its lease runs out (at once when
the dead runner was a process on this host), and resumes after its last committed batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import secrets
import signal
import socket
import threading
import time
from datetime import timedelta
from typing import Any, ClassVar, cast

from sqlalchemy import CursorResult, Engine, Table, delete, func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from broadcaster.db import get_engine
from broadcaster.imports import parsing, service
from broadcaster.imports.parsing import CsvProblem, Row
from broadcaster.models import utcnow
from broadcaster.models.imports import ImportChunk, ImportJob
from broadcaster.settings import Settings, get_settings

log = logging.getLogger(__name__)

#: a running job's lease; renewed by every batch (a batch takes well under a second)
LEASE = timedelta(seconds=60)
#: an upload not finished after this long was cut off (its process stopped): the job is failed
UPLOAD_ABANDONED = timedelta(hours=1)
#: runs of one job that ended in an unexpected error before the job is failed
MAX_ATTEMPTS = 3
#: rows parsed between two voluntary releases of the GIL (~1 ms of work): in `broadcaster serve` the import
#: thread shares the interpreter with the event loop, which otherwise waits up to the 5 ms switch interval
#: for every step of every request while an import runs (banner p50 0.3 -> 5.4 ms in bench/public_under_load.py)
YIELD_EVERY = 16

_T = cast(Table, ImportJob.__table__)
_CHUNKS = cast(Table, ImportChunk.__table__)
_HOST = socket.gethostname()[:30]
_RUNNERS: set[ImportRunner] = set()


class LostLease(Exception):
    """Another runner took the job over (this one was presumed dead)."""


def owner_id(kind: str = "r") -> str:
    return f"{_HOST}:{os.getpid()}:{kind}{secrets.token_hex(3)}"


def _owner_dead(claimed_by: str | None) -> bool:
    """The job's runner was a process on this host that no longer exists."""
    host, _, rest = (claimed_by or "").partition(":")
    pid = rest.partition(":")[0]
    if host != _HOST or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def claim(engine: Engine, me: str, job_id: int | None = None) -> int | None:
    """Take the oldest queued job (or one whose runner died), or `job_id` only; its id or None.

    A compare-and-set on what was read, so two runners never both take a job, on either backend."""
    now = utcnow()
    stmt = select(_T.c.id, _T.c.state, _T.c.claimed_by, _T.c.lease_expires_at).where(
        _T.c.state.in_(("queued", "running"))
    )
    stmt = stmt.where(_T.c.id == job_id) if job_id is not None else stmt.order_by(_T.c.id).limit(20)
    with engine.connect() as conn:
        candidates = conn.execute(stmt).all()
    for c in candidates:
        expired = c.lease_expires_at is None or c.lease_expires_at < now
        if c.state == "running" and not (expired or _owner_dead(c.claimed_by)):
            continue
        owner = _T.c.claimed_by.is_(None) if c.claimed_by is None else _T.c.claimed_by == c.claimed_by
        with engine.begin() as conn:
            taken = conn.execute(
                update(_T)
                .where(_T.c.id == c.id, _T.c.state == c.state, owner)
                .values(
                    state="running",
                    claimed_by=me,
                    lease_expires_at=now + LEASE,
                    attempts=_T.c.attempts + 1,
                    started_at=func.coalesce(_T.c.started_at, now),
                    updated_at=now,
                )
            ).rowcount
        if taken == 1:
            if c.state == "running":
                log.warning("import %s: taking over from %s (its runner stopped)", c.id, c.claimed_by)
            return int(c.id)
    return None


def fail_abandoned_uploads(engine: Engine) -> None:
    cutoff = utcnow() - UPLOAD_ABANDONED
    with engine.begin() as conn:
        ids = list(conn.scalars(select(_T.c.id).where(_T.c.state == "uploading", _T.c.updated_at < cutoff)))
        if ids:
            conn.execute(delete(_CHUNKS).where(_CHUNKS.c.job_id.in_(ids)))
            conn.execute(
                update(_T)
                .where(_T.c.id.in_(ids))
                .values(state="failed", error="the upload was interrupted", finished_at=utcnow())
            )


def _end(engine: Engine, job_id: int, me: str, state: str, error: str | None = None) -> None:
    """`queued` (released: another run resumes it), `done` or `failed` (the stored file is dropped)."""
    values: dict[str, object] = {"state": state, "claimed_by": None, "lease_expires_at": None, "updated_at": utcnow()}
    if state != "queued":
        values |= {"finished_at": utcnow(), "error": error}
    with engine.begin() as conn:
        ended = conn.execute(update(_T).where(_T.c.id == job_id, _T.c.claimed_by == me).values(**values)).rowcount
        if ended and state != "queued":
            conn.execute(delete(_CHUNKS).where(_CHUNKS.c.job_id == job_id))


def _commit(engine: Engine, job_id: int, me: str, batch: list[Row], reported: int) -> int:
    """Upsert one batch and advance the job's progress in one transaction; rows reported so far."""
    parse_errors = [list(r.errors) for r in batch]
    for attempt in range(8):
        for row, errors in zip(batch, parse_errors, strict=True):
            row.errors = list(errors)
        try:
            with Session(engine, expire_on_commit=False) as session, session.begin():
                now = utcnow()
                # the write comes first: it takes SQLite's write lock before anything is read, and checks the lease
                mine = cast(
                    CursorResult[Any],
                    session.execute(
                        update(ImportJob)
                        .where(ImportJob.id == job_id, ImportJob.claimed_by == me, ImportJob.state == "running")
                        .values(
                            rows_done=ImportJob.rows_done + len(batch), lease_expires_at=now + LEASE, updated_at=now
                        )
                    ),
                ).rowcount
                if mine != 1:
                    raise LostLease
                result = service.upsert(session, batch, service.known_categories(session))
                session.execute(
                    update(ImportJob)
                    .where(ImportJob.id == job_id)
                    .values(
                        created=ImportJob.created + result.created,
                        updated=ImportJob.updated + result.updated,
                        rejected=ImportJob.rejected + len(result.rejected),
                    )
                )
                service.record_errors(session, job_id, result.rejected, reported)
            return min(service.MAX_REPORTED_ROWS, reported + len(result.rejected))
        except IntegrityError:
            # another writer created one of these subscribers meanwhile (PostgreSQL): look them up again
            log.info("import %s: a concurrent write collided with a batch; retrying it", job_id)
        except OperationalError as exc:
            if "locked" not in str(exc) or attempt == 7:
                raise
            log.info("import %s: database busy; retrying the batch", job_id)
        time.sleep(min(2.0, 0.05 * 2**attempt))
    raise RuntimeError(f"import {job_id}: a batch kept colliding with concurrent writes")


def process(engine: Engine, job_id: int, me: str, stop: threading.Event, deadline: float | None = None) -> str:
    """Run a claimed job from its last committed batch until it ends (`done`/`failed`), `stop` is set or the
    monotonic `deadline` passes (`released`: queued again), or another runner took it (`lost`)."""
    settings = get_settings()
    with Session(engine) as session:
        job = session.get(ImportJob, job_id)
        assert job is not None
        skip, reported = job.rows_done, min(job.rejected, service.MAX_REPORTED_ROWS)
        attempts = job.attempts
    try:
        rows = parsing.records(engine, job_id)
        _, header = next(rows)
        batch: list[Row] = []
        seen = 0
        for number, cells in rows:
            seen += 1
            if seen <= skip:
                continue
            batch.append(parsing.parse_row(number, header, cells, settings.default_locale))
            if len(batch) % YIELD_EVERY == 0:
                time.sleep(0)  # let the event loop's thread have the GIL (see YIELD_EVERY)
            if len(batch) >= service.BATCH_ROWS:
                reported = _commit(engine, job_id, me, batch, reported)
                batch = []
                if stop.is_set() or (deadline is not None and time.monotonic() > deadline):
                    _end(engine, job_id, me, "queued")
                    return "released"
        if batch:
            _commit(engine, job_id, me, batch, reported)
        _end(engine, job_id, me, "done")
        return "done"
    except CsvProblem as exc:  # checked at upload, so only a file changed since
        _end(engine, job_id, me, "failed", exc.detail)
        return "failed"
    except LostLease:
        log.warning("import %s: another runner took the job over", job_id)
        return "lost"
    except Exception:
        log.exception("import %s failed (run %d of %d)", job_id, attempts, MAX_ATTEMPTS)
        if attempts >= MAX_ATTEMPTS:
            _end(engine, job_id, me, "failed", "internal error; see the server log")
            return "failed"
        _end(engine, job_id, me, "queued")
        return "released"


def run_inline(job_id: int, seconds: float) -> str:
    """`?wait=true`: the request's own thread runs its job for up to `seconds`, then leaves the rest (if any) to
    the runners; the outcome as `process` names it, or `queued` when a runner already has it."""
    engine, me = get_engine(), owner_id("w")
    if claim(engine, me, job_id) is None:
        return "queued"
    return process(engine, job_id, me, threading.Event(), time.monotonic() + seconds)


def _child(job_id: int, me: str) -> None:
    """Entry point of the process that runs one job for an isolated runner (settings from the environment)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    log.info("import %s: %s", job_id, process(get_engine(), job_id, me, stop))


class ImportRunner:
    """Runs import jobs one after another until `stop()`; started next to each delivery worker.

    `isolate=True` (how `broadcaster serve` and `broadcaster worker` run it) processes each job in a child
    process: parsing and upserting a big CSV holds Python's GIL for most of its run, and in the serve process
    that showed as the banner's p99 (72 ms while a 200k-row import ran, on a quiet box). The child runs under
    this runner's lease; stopping sends it SIGTERM, and it queues the job again after its current batch.
    """

    #: its door (broadcaster/doors.py; tests/core/test_doors.py)
    door: ClassVar[str] = "none: imports subscribers (who may receive, not what is sent)"

    def __init__(
        self, settings: Settings | None = None, *, engine: Engine | None = None, isolate: bool = False
    ) -> None:
        self.isolate = isolate
        self.settings = settings or get_settings()
        self.engine = engine or get_engine()
        self.id = owner_id()
        self.poll = max(0.05, self.settings.worker_poll_seconds)
        self._stop = threading.Event()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.jobs_run = 0

    def run_once(self) -> bool:
        """Run one job to its end (or until stopped); False when there was none."""
        fail_abandoned_uploads(self.engine)
        job_id = claim(self.engine, self.id)
        if job_id is None:
            return False
        if self.isolate:
            self._run_child(job_id)
        else:
            log.info("import %s: %s", job_id, process(self.engine, job_id, self.id, self._stop))
        self.jobs_run += 1
        return True

    def _run_child(self, job_id: int) -> None:
        child = multiprocessing.get_context("spawn").Process(
            target=_child, args=(job_id, self.id), name=f"import-{job_id}", daemon=True
        )
        child.start()
        while child.is_alive():
            if self._stop.is_set():
                child.terminate()  # SIGTERM: the child queues the job again after its batch
                child.join(30)
                if child.is_alive():
                    child.kill()
                break
            child.join(0.2)
        child.join()
        if child.exitcode not in (0, -signal.SIGTERM):
            log.warning("import %s: its process ended with code %s; it is queued again", job_id, child.exitcode)
            with contextlib.suppress(Exception):
                _end(self.engine, job_id, self.id, "queued")

    async def run(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        _RUNNERS.add(self)
        try:
            while not self._stop.is_set():
                try:
                    worked = await asyncio.to_thread(self.run_once)
                except Exception:
                    log.exception("import runner: looking for jobs failed")
                    worked = False
                if not worked and not self._stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.poll)
                    self._wake.clear()
        finally:
            _RUNNERS.discard(self)

    def wake(self) -> None:
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def stop(self) -> None:
        """Stop after the current batch; a job in progress is queued again (and resumed by the next run)."""
        self._stop.set()
        self.wake()


def wake_local_runners() -> None:
    """A job was queued: runners in this process look at once (others find it at their next poll)."""
    for runner in list(_RUNNERS):
        runner.wake()
