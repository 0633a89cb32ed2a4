"""Entry points the core calls into the delivery engine."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from broadcaster.delivery import audience, planner
from broadcaster.domain import Priority
from broadcaster.models import Update, utcnow
from broadcaster.models.delivery import Broadcast, Delivery
from broadcaster.settings import get_settings

#: PostgreSQL NOTIFY channel that wakes idle workers
NOTIFY_CHANNEL = "broadcaster_work"


def notify_workers(session: Session) -> None:
    """Wake workers listening on PostgreSQL (delivered when the transaction commits); no-op on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:c, '')"), {"c": NOTIFY_CHANNEL})


def hold_until(test: bool) -> datetime | None:
    """When a broadcast published now may start: SEND_HOLD_SECONDS from now for a live send; None (at once) for a
    test send or without a hold."""
    seconds = get_settings().send_hold_seconds
    if test or seconds <= 0:
        return None
    return utcnow() + timedelta(seconds=seconds)


def start_broadcast(session: Session, update: Update) -> int | None:
    """Create the broadcast for a just-published update (in the caller's transaction); its id or None.

    Only the broadcast row is written here (state `planning`); a worker fans it out, not before its send hold
    (`not_before`: SEND_HOLD_SECONDS after now for a live send, none for a test send) is over. A correction or
    cancel goes to everyone the original broadcast reached; a cancel also stops the original (at once).
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
        not_before=hold_until(bool(update.test)),
    )
    session.add(broadcast)
    session.flush()
    notify_workers(session)
    return broadcast.id


def queue_system(
    session: Session, channel: str, addresses: Iterable[str], message: dict[str, Any], priority: int
) -> int | None:
    """Queue one `message` (`text`, and `subject` for e-mail) to each address on `channel`, in the caller's
    transaction: a `system` broadcast with its delivery rows (staff notices and escalation summaries, not
    subscribers), sent once the transaction commits and durable like any delivery (a worker restart delays it,
    never drops it; retried like any delivery). The broadcast id, or None without addresses."""
    to = list(dict.fromkeys(a for a in addresses if a))
    if not to:
        return None
    broadcast = Broadcast(
        kind="system",
        state="sending",
        priority=priority,
        channels=[channel],
        total=len(to),
        planned_at=utcnow(),
        message=message,
    )
    session.add(broadcast)
    session.flush()
    stamp = utcnow()
    rows = [
        {
            "broadcast_id": broadcast.id,
            "channel": channel,
            "address": address,
            "subscriber_id": None,
            "locale": "en",
            "priority": priority,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": stamp,
            "created_at": stamp,
            "updated_at": stamp,
        }
        for address in to
    ]
    session.execute(insert(Delivery), rows)
    notify_workers(session)
    return broadcast.id


def queue_mail(session: Session, addresses: Iterable[str], subject: str, text: str) -> int | None:
    """Queue one e-mail to each address (staff notices) at the `major` lane (`queue_system`)."""
    to = (a.strip().lower() for a in addresses if a and a.strip())
    return queue_system(session, "email", to, {"subject": subject, "text": text}, int(Priority.major))
