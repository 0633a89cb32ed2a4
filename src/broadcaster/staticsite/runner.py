"""The static publisher: runs beside every delivery worker (like the import runner) and writes the public pages
to the static target whenever the public content version moved past what the target holds.

Durable without a job queue: the wanted state is `public_state.version`, the achieved one is
`static_publish_state.published_version`, both in the database. A runner takes a lease on the target row (one
writer at a time across processes), renders and writes, then records the version; a failure is recorded with
its error and retried with exponential backoff (capped at STATIC_RETRY_MAX_SECONDS); a runner that dies leaves
a lease that expires. Publishing an update never waits for any of it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from datetime import timedelta
from typing import Any, ClassVar

from sqlalchemy import Engine, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from broadcaster.db import get_engine
from broadcaster.imports.runner import owner_id
from broadcaster.models import utcnow
from broadcaster.models.integrations import StaticPublishState
from broadcaster.public.queries import current_version
from broadcaster.settings import Settings, get_settings
from broadcaster.staticsite import files as site_files
from broadcaster.staticsite.targets import Target, make_target

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=120)


def _ensure_row(engine: Engine, target: str) -> None:
    insert: Any = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
    with engine.begin() as conn:
        conn.execute(
            insert(StaticPublishState)
            .values(target=target, published_version=0, files=0, attempts=0)
            .on_conflict_do_nothing(index_elements=[StaticPublishState.target])
        )


def _backoff(attempts: int, cap: float) -> float:
    return min(cap, 2.0 ** max(0, attempts - 1)) * random.uniform(0.5, 1.0)


class StaticPublisher:
    """`run()` until `stop()`; `run_once()` publishes at most once (True when it tried)."""

    #: its door (broadcaster/doors.py; tests/core/test_doors.py)
    door: ClassVar[str] = "static.publish"

    def __init__(
        self, settings: Settings | None = None, *, engine: Engine | None = None, target: Target | None = None
    ) -> None:
        self.settings = settings or get_settings()
        self.engine = engine or get_engine()
        self.target = target if target is not None else make_target(self.settings)
        self.id = owner_id("s")
        self.poll = max(0.05, min(1.0, self.settings.worker_poll_seconds))
        self._stop = threading.Event()
        self.published = 0

    def _claim(self) -> tuple[int, int] | None:
        """(content version, attempts so far) when there is something to publish and this runner took the lease."""
        assert self.target is not None
        now = utcnow()
        with Session(self.engine) as session:
            version = current_version(session)
            state = session.get(StaticPublishState, self.target.name)
        if state is None:
            _ensure_row(self.engine, self.target.name)
            return self._claim()
        if state.published_version >= version and state.attempts == 0:
            return None
        if state.next_attempt_at is not None and state.next_attempt_at > now:
            return None
        t = StaticPublishState
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(t)
                .where(t.target == self.target.name, or_(t.claimed_by.is_(None), t.lease_expires_at < now))
                .values(claimed_by=self.id, lease_expires_at=now + LEASE)
            ).rowcount
        return (version, state.attempts) if taken == 1 else None

    def _finish(self, **values: Any) -> None:
        assert self.target is not None
        t = StaticPublishState
        with self.engine.begin() as conn:
            conn.execute(
                update(t)
                .where(t.target == self.target.name, t.claimed_by == self.id)
                .values(claimed_by=None, lease_expires_at=None, **values)
            )

    def run_once(self) -> bool:
        if self.target is None:
            return False
        claimed = self._claim()
        if claimed is None:
            return False
        version, attempts = claimed
        try:
            with Session(self.engine) as session:
                version = current_version(session)  # what the rendered content is at least as new as
                files = site_files.build(session)
            written = self.target.write(files)
        except Exception as exc:
            attempts += 1
            delay = _backoff(attempts, self.settings.static_retry_max_seconds)
            error = f"{type(exc).__name__}: {str(exc)[:500]}"
            log.warning(
                "static publishing to %s failed (attempt %d, next in %.0fs): %s",
                self.target.name,
                attempts,
                delay,
                error,
            )
            self._finish(
                attempts=attempts,
                last_error=error,
                last_error_at=utcnow(),
                next_attempt_at=utcnow() + timedelta(seconds=delay),
            )
            return True
        self._finish(
            published_version=version,
            published_at=utcnow(),
            files=len(files),
            attempts=0,
            last_error=None,
            next_attempt_at=None,
        )
        self.published += 1
        log.info(
            "static publishing: version %d to %s (%d files, %d written)", version, self.target.name, len(files), written
        )
        return True

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                worked = await asyncio.to_thread(self.run_once)
            except Exception:
                log.exception("static publishing: looking for work failed")
                worked = False
            if not worked:
                await asyncio.sleep(self.poll)

    def stop(self) -> None:
        self._stop.set()


def status(session: Session, settings: Settings | None = None) -> dict[str, Any] | None:
    """The static target's state for /readyz and the API (None when static publishing is off)."""
    settings = settings or get_settings()
    raw = settings.static_target.strip()
    if not raw:
        return None
    name = make_target_name(raw)
    state = session.get(StaticPublishState, name)
    version = current_version(session)
    published = state.published_version if state else 0
    return {
        "target": name,
        "public_url": settings.static_public_url or None,
        "content_version": version,
        "published_version": published,
        "up_to_date": published >= version,
        "failing": bool(state and state.attempts),
        "attempts": state.attempts if state else 0,
        "last_error": state.last_error if state else None,
        "last_error_at": state.last_error_at.isoformat() if state and state.last_error_at else None,
        "next_attempt_at": state.next_attempt_at.isoformat() if state and state.next_attempt_at else None,
        "published_at": state.published_at.isoformat() if state and state.published_at else None,
        "files": state.files if state else 0,
    }


def make_target_name(raw: str) -> str:
    """The target's name as its row is keyed (see DirectoryTarget.name / S3Target.name)."""
    if raw.startswith("s3://"):
        bucket, _, prefix = raw[5:].partition("/")
        prefix = prefix.strip("/")
        return f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
    from pathlib import Path

    return str(Path(raw))
