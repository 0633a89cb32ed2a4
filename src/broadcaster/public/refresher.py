"""Start/stop the banner cache refresher (LISTEN/NOTIFY on PostgreSQL, polling on SQLite)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import anyio.to_thread
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from broadcaster.db import normalize_url
from broadcaster.invalidation import CHANNEL
from broadcaster.public.cache import get_cache
from broadcaster.settings import get_settings

log = logging.getLogger(__name__)

#: on PostgreSQL the version row is also re-read this often, in case a notification was lost
PG_SAFETY_POLL_SECONDS = 30.0


async def start_public(app: FastAPI) -> None:
    """Prime caches and start listening for changes."""
    cache = get_cache()
    cache.reset()
    settings = get_settings()
    watcher = _listen_postgres if not settings.is_sqlite else _poll_version
    app.state.public_watcher = asyncio.create_task(_prime_then(watcher), name="broadcaster-public-watcher")


async def _prime_then(watcher: Callable[[], Awaitable[None]]) -> None:
    """Load the banner snapshot before the first request needs it, then watch for changes."""
    try:
        await get_cache().state()
    except Exception:
        log.warning("public: could not prime the banner cache (it loads on the first request)", exc_info=True)
    await watcher()


async def stop_public(app: FastAPI) -> None:
    """Stop listening."""
    task: asyncio.Task[None] | None = getattr(app.state, "public_watcher", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        app.state.public_watcher = None


def _read_version() -> int:
    from broadcaster.db import get_sessionmaker
    from broadcaster.public.queries import current_version

    with get_sessionmaker()() as session:
        return current_version(session)


async def _check_version() -> None:
    version = await anyio.to_thread.run_sync(_read_version)
    if get_cache().invalidate(version):
        log.debug("public: content version %s, cache invalidated", version)


async def _poll_version() -> None:
    """SQLite: every BANNER_CHECK_SECONDS compare the version row with what this process has seen."""
    interval = max(get_settings().banner_check_seconds, 0.05)
    while True:
        try:
            await _check_version()
        except Exception:
            log.warning("public: checking the content version failed", exc_info=True)
        await asyncio.sleep(interval)


def _conninfo() -> str:
    url = make_url(normalize_url(get_settings().database_url)).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


async def _listen_postgres() -> None:
    """PostgreSQL: LISTEN on a dedicated connection; each NOTIFY carries the new version."""
    import psycopg

    backoff = 0.5
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(_conninfo(), autocommit=True) as conn:
                await conn.execute(f"LISTEN {CHANNEL}")
                backoff = 0.5
                await _check_version()  # whatever changed while we were not listening
                while True:
                    async for note in conn.notifies(timeout=PG_SAFETY_POLL_SECONDS):
                        try:
                            get_cache().invalidate(int(note.payload))
                        except ValueError:
                            get_cache().invalidate()
                    await _check_version()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("public: LISTEN connection failed; retrying in %.1fs", backoff, exc_info=True)
            get_cache().invalidate()  # we may have missed notifications
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
