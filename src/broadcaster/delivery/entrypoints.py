"""Entry points the core calls into the delivery engine."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from broadcaster.delivery import audience, planner
from broadcaster.domain import Priority
from broadcaster.models import Update
from broadcaster.models.delivery import Broadcast

#: PostgreSQL NOTIFY channel that wakes idle workers
NOTIFY_CHANNEL = "broadcaster_work"


def notify_workers(session: Session) -> None:
    """Wake workers listening on PostgreSQL (delivered when the transaction commits); no-op on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:c, '')"), {"c": NOTIFY_CHANNEL})


def start_broadcast(session: Session, update: Update) -> int | None:
    """Create the broadcast for a just-published update (in the caller's transaction); its id or None.

    Only the broadcast row is written here (state `planning`); a worker fans it out. A correction or
    cancel goes to everyone the original broadcast reached; a cancel also stops the original.
    """
    original = audience.original_broadcast_id(session, update)
    if original is not None and update.kind == "cancel":
        planner.cancel(session, original)
    channels = audience.resolved_channels(session, update)
    if original is None and not channels:
        return None
    broadcast = Broadcast(
        update_id=update.id,
        priority=int(Priority.for_send(update.incident.severity, test=bool(update.test))),
        channels=channels,
        test=bool(update.test),
        corrects_broadcast_id=original,
        state="planning",
    )
    session.add(broadcast)
    session.flush()
    notify_workers(session)
    return broadcast.id
