"""Hooks: how a lower layer learns about a feature without importing it (docs/architecture.md).

The layers forbid an import from a lower layer to a higher one (`.importlinter`). Where rendering, the delivery
engine or publishing must act on a feature's data (the question an update asks, who is inside an area, the
background runners beside every worker), they call a hook declared here; the feature registers its function in
its package's `hooks.py`. Those modules are listed in the `broadcaster.hooks` entry-point group (pyproject.toml),
the way adapters are listed in `broadcaster.channels`, and the group is loaded once per process at the first use
of any hook: the API, `broadcaster worker`, the CLI, tests and benches all see the same wiring, and nobody has to
remember to call an install function. A third-party package adds to a hook the same way.

Every hook is declared below with the signature its functions have; `Hook.functions()` is what a caller
iterates (in the order of registration, entry points sorted by name).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, Engine
    from sqlalchemy.orm import Session

    from broadcaster.channels.base import Adapter, Message
    from broadcaster.models import Incident, Update
    from broadcaster.models.delivery import Broadcast
    from broadcaster.settings import Settings

log = logging.getLogger(__name__)

#: the entry-point group of the modules that register functions on these hooks
GROUP = "broadcaster.hooks"

T = TypeVar("T")

_lock = threading.RLock()
_loaded = False
_loading = False


def load() -> list[str]:
    """Import every module of the `broadcaster.hooks` entry-point group once (idempotent); their names."""
    global _loaded, _loading
    with _lock:
        if _loaded or _loading:
            return []
        _loading = True
        try:
            names = []
            for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
                ep.load()
                names.append(ep.name)
            if not names:
                raise RuntimeError(
                    f"no {GROUP!r} entry points are installed: the package metadata is stale; "
                    "reinstall it (`pip install -e .`, which `make run` and `make test` do)"
                )
            _loaded = True
            return names
        finally:
            _loading = False


class Hook(Generic[T]):
    """A named list of functions (or guards) a lower layer calls; features add theirs with `register`."""

    def __init__(self, name: str, doc: str) -> None:
        self.name = name
        self.__doc__ = doc
        self._functions: list[T] = []

    def register(self, fn: T) -> T:
        """Add `fn` (once; usable as a decorator)."""
        with _lock:
            if fn not in self._functions:
                self._functions.append(fn)
        return fn

    def functions(self) -> tuple[T, ...]:
        """The registered functions (the entry-point group is loaded first)."""
        if not _loaded:
            load()
        return tuple(self._functions)

    def __repr__(self) -> str:
        return f"<Hook {self.name}: {[getattr(f, '__qualname__', f) for f in self._functions]}>"


class Runner(Protocol):
    """A background loop started beside every delivery worker (in `serve` and in `broadcaster worker`); `door`
    names the door it goes through (broadcaster/doors.py), or says why it is none."""

    door: ClassVar[str]

    async def run(self) -> None: ...
    def stop(self) -> None: ...


@dataclass(frozen=True)
class Hold:
    """Recipients a send guard holds back right before the provider call: `everyone` (with its reason) or the
    subscribers in `people` (id -> reason). Held rows are recorded as cancelled with the reason, never sent."""

    everyone: str | None = None
    people: dict[int, str] = field(default_factory=dict)


# --- rendering -----------------------------------------------------------------------------------------------

message_question: Hook[Callable[[Session | None, Update, dict[str, Any]], dict[str, Any] | None]] = Hook(
    "message_question",
    """(session, update, labels) -> the question `update`'s messages ask, for the templates, or None.
    The dict has `id`, `text`, `state`, `response_url`, `options` (each `key`, `label`, `press`, `url`,
    `needs_help`), and how to answer in the labels' language: `reply` (a text) and `press` (a call).""",
)

# --- the delivery engine ---------------------------------------------------------------------------------

audience_filters: Hook[Callable[[Session | None, Update], ColumnElement[bool] | None]] = Hook(
    "audience_filters",
    """(session, update) -> a WHERE clause on `subscribers` narrowing the update's audience (an area), or None.""",
)

recipient_variables: Hook[Callable[[Adapter, int, Message | None], dict[str, str]]] = Hook(
    "recipient_variables",
    """(adapter, subscriber_id, message) -> per-recipient values the adapter puts into the message (a signed
    unsubscribe link, the signed links answering a question).""",
)

broadcast_planned: Hook[Callable[[Session, Broadcast], object]] = Hook(
    "broadcast_planned",
    """(session, broadcast) after an update's broadcast was fanned out (its deliveries written, same transaction).""",
)


@dataclass(frozen=True)
class SendGuard:
    """For the chunks of a broadcast of `kind`, right before the provider call: `hold(engine, update_id,
    subscriber_ids)` says who to hold back (a question's re-send drops the people who answered meanwhile)."""

    kind: str
    hold: Callable[[Engine, int, list[int]], Hold]


send_guards: Hook[SendGuard] = Hook(
    "send_guards",
    """SendGuard(kind, hold): consulted by the worker for every chunk of a broadcast of that kind.""",
)

runners: Hook[Callable[[Settings], Runner | None]] = Hook(
    "runners",
    """(settings) -> a background runner to start beside every delivery worker, or None (switched off).""",
)

# --- publishing ------------------------------------------------------------------------------------------

update_published: Hook[Callable[[Session, Update, Incident, str], object]] = Hook(
    "update_published",
    """(session, update, incident, actor) when an update is published (same transaction, before its broadcast).""",
)

content_binding: Hook[Callable[[Session, Update], dict[str, Any] | None]] = Hook(
    "content_binding",
    """(session, update) -> what a feature adds to what an approval of `update` binds besides its rendered text,
    by field of `publishing.schemas.Binding` (`question`: the question with its effective escalation and every
    summary recipient; `areas`: the named areas with their geometry versions), or None. The preview shows it and
    the content ETag hashes it, so a change to any of it voids a pending approval.""",
)

# --- incidents -------------------------------------------------------------------------------------------

incident_changed: Hook[Callable[[Session, Incident, list[str], str], object]] = Hook(
    "incident_changed",
    """(session, incident, fields, actor) after an edit changed the incident's content fields (same transaction,
    the incident locked): an approval bound to that content (a maintenance window's schedule) is voided.""",
)

public_content_committing: Hook[Callable[[Session, set[int]], object]] = Hook(
    "public_content_committing",
    """(session, incident_ids) just before a transaction that changed public content commits (same transaction;
    `incident_ids`: the incidents whose row or published updates it wrote): the public package writes the CAP
    messages the change emits (public/cap_log.py).""",
)

public_content_changed: Hook[Callable[[int], None]] = Hook(
    "public_content_changed",
    """(version) after a transaction that changed public content committed in this process (other processes learn
    it by NOTIFY or by polling the version row).""",
)


def guard_for(kind: str) -> SendGuard | None:
    """The send guard of broadcasts of `kind`, if a feature registered one."""
    return next((g for g in send_guards.functions() if g.kind == kind), None)


def first(hook: Hook[Callable[..., Any]], *args: Any) -> Any:
    """The first non-None result of the hook's functions called with `args` (None when all return None)."""
    for fn in hook.functions():
        result = fn(*args)
        if result is not None:
            return result
    return None
