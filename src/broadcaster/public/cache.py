"""The per-process public cache: banner variants as pre-rendered bytes, swapped atomically on change.

`invalidate()` only bumps a generation number (cheap, thread-safe under the GIL); the next request
reloads the snapshot once (one DB read, in a thread) and renders each (kind, site, languages) variant
lazily. Requests in flight keep the state object they started with, so nothing stale is ever stored
into the new state.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import anyio.to_thread
import orjson

from broadcaster.domain import normalize_locale
from broadcaster.public import banner_bytes
from broadcaster.public.negotiation import etag_matches, parse_accept_language, variant_key
from broadcaster.public.snapshot import Snapshot

log = logging.getLogger(__name__)

T = TypeVar("T")

#: path -> banner kind served by the fast path (and by the documented fallback routes)
BANNER_PATHS: dict[str, str] = {"/v1/banner": "json", "/v1/banner.html": "html", "/v1/banner.js": "js"}
_SITE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_MAX_RESOLVED = 4096
_RETRY_AFTER_FAILURE = 1.0

Result = tuple[int, list[tuple[bytes, bytes]], bytes]

PREFLIGHT: Result = (
    204,
    [
        (b"access-control-allow-origin", b"*"),
        (b"access-control-allow-methods", b"GET, HEAD, OPTIONS"),
        (b"access-control-allow-headers", b"Accept-Language, If-None-Match, Cache-Control"),
        (b"access-control-max-age", b"86400"),
    ],
    b"",
)


def error_result(status: int, code: str, detail: str, field_name: str | None = None) -> Result:
    body = orjson.dumps({"error": code, "detail": detail, "field": field_name})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"access-control-allow-origin", b"*"),
        (b"cache-control", b"no-store"),
    ]
    return status, headers, body


class QueryError(ValueError):
    def __init__(self, field_name: str, detail: str) -> None:
        super().__init__(detail)
        self.field_name = field_name


def parse_query(query: bytes) -> tuple[str, str | None]:
    """(site, lang) from `?site=...&lang=...`; QueryError naming the bad parameter."""
    site, lang = "", None
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if name == "site" and value:
            if not _SITE.match(value):
                raise QueryError("site", "site must be lowercase letters, digits and dashes (at most 63).")
            site = value
        elif name == "lang" and value:
            try:
                lang = normalize_locale(value)
            except ValueError as exc:
                raise QueryError("lang", str(exc)) from exc
    return site, lang


@dataclass(slots=True)
class _State:
    generation: int
    snapshot: Snapshot | None
    variants: dict[tuple[Any, ...], banner_bytes.Entry] = field(default_factory=dict)
    #: (kind, raw query, raw Accept-Language) -> entry: the hot path's single lookup
    resolved: dict[tuple[Any, ...], banner_bytes.Entry] = field(default_factory=dict)


class Unavailable(Exception):
    """No snapshot could be loaded (database down at start)."""


class PublicCache:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything (app start; tests switch databases)."""
        self.generation = 1
        self.known_version = -1
        self._state = _State(0, None)
        self._lock = asyncio.Lock()
        self._retry_at = 0.0
        self._js: banner_bytes.Entry | None = None
        self._memo: dict[Any, Any] = {}
        self._memo_generation = -1

    # --- invalidation ---------------------------------------------------------------------------------
    def invalidate(self, version: int | None = None) -> bool:
        """Mark the content stale. With a version, only when it is newer than any seen; True if it was."""
        if version is not None:
            if version <= self.known_version:
                return False
            self.known_version = version
        self.generation += 1
        return True

    # --- snapshot ------------------------------------------------------------------------------------
    async def state(self) -> _State:
        st = self._state
        if st.generation == self.generation and st.snapshot is not None:
            return st
        if st.snapshot is not None and time.monotonic() < self._retry_at:
            return st  # the last reload failed a moment ago: keep serving what we have
        async with self._lock:
            st = self._state
            if st.generation == self.generation and st.snapshot is not None:
                return st
            generation = self.generation
            try:
                snap = await anyio.to_thread.run_sync(_load_snapshot)
            except Exception as exc:
                log.exception("public: loading the banner snapshot failed")
                self._retry_at = time.monotonic() + _RETRY_AFTER_FAILURE
                if st.snapshot is None:
                    raise Unavailable from exc
                return st
            self.known_version = max(self.known_version, snap.version)
            self._state = _State(generation, snap)
            return self._state

    # --- banner responses ----------------------------------------------------------------------------
    def js_entry(self) -> banner_bytes.Entry:
        if self._js is None:
            self._js = banner_bytes.make_entry(banner_bytes.banner_js(), banner_bytes.JS, vary=False)
        return self._js

    async def respond(
        self,
        kind: str,
        method: str,
        query: bytes,
        accept_language: bytes | None,
        if_none_match: bytes | None,
    ) -> Result:
        """Status, headers and body for a banner request (shared by the fast path and the routes)."""
        if method == "OPTIONS":
            return PREFLIGHT
        if kind == "js":
            entry = self.js_entry()
        else:
            st = self._state
            entry_or_none = (
                st.resolved.get((kind, query, accept_language)) if st.generation == self.generation else None
            )
            if entry_or_none is None:
                try:
                    entry_or_none = await self._resolve(kind, query, accept_language)
                except QueryError as exc:
                    return error_result(400, "bad_request", str(exc), exc.field_name)
                except Unavailable:
                    return error_result(503, "unavailable", "The banner is temporarily unavailable.")
            entry = entry_or_none
        if if_none_match is not None and etag_matches(if_none_match, entry.etag):
            return 304, entry.headers_304, b""
        return 200, entry.headers, b"" if method == "HEAD" else entry.body

    async def _resolve(self, kind: str, query: bytes, accept_language: bytes | None) -> banner_bytes.Entry:
        site, lang = parse_query(query) if query else ("", None)
        st = await self.state()
        snap = st.snapshot
        assert snap is not None
        if lang is not None:
            prefs: tuple[str, ...] = (lang,)
        elif accept_language:
            prefs = parse_accept_language(accept_language.decode("latin-1"))
        else:
            prefs = ()
        key = (kind, site if site in snap.sites else "", variant_key(prefs, snap.locales, snap.languages))
        entry = st.variants.get(key)
        if entry is None:
            items = snap.for_site(site)
            if kind == "html":
                entry = banner_bytes.make_entry(
                    banner_bytes.banner_html(items, key[2]), banner_bytes.HTML, csp=banner_bytes.banner_csp()
                )
            else:
                entry = banner_bytes.make_entry(banner_bytes.banner_json(items, key[2]), banner_bytes.JSON)
            st.variants[key] = entry
        if len(st.resolved) >= _MAX_RESOLVED:
            st.resolved.clear()
        st.resolved[(kind, query, accept_language)] = entry
        return entry

    # --- other public pages ----------------------------------------------------------------------------
    def memo(self, key: Any, build: Callable[[], T]) -> T:
        """`build()` once per content generation (feeds, status pages); safe from worker threads."""
        generation = self.generation
        store = self._memo
        if self._memo_generation != generation:
            store = {}
            self._memo, self._memo_generation = store, generation
        if key in store:
            return store[key]
        value = build()
        if len(store) < 1024:
            store[key] = value
        return value


def _load_snapshot() -> Snapshot:
    from broadcaster.db import get_sessionmaker
    from broadcaster.public import snapshot

    with get_sessionmaker()() as session:
        return snapshot.load(session)


_CACHE = PublicCache()


def get_cache() -> PublicCache:
    """This process's cache (one per process; every uvicorn worker has its own)."""
    return _CACHE
