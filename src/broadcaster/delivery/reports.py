"""Broadcast reports: counts per channel and status, progress, send rate, the per-recipient log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from broadcaster.channels.base import is_url, mask_url
from broadcaster.csvsafe import safe_cell
from broadcaster.delivery.schemas import BroadcastOut, BroadcastReport, DeliveryOut
from broadcaster.errors import NotFound
from broadcaster.models import utcnow
from broadcaster.models.delivery import Broadcast, Delivery

FINAL = {"sent", "delivered", "opened", "failed", "undelivered", "bounced", "cancelled", "suppressed"}
RATE_WINDOW = 60


def get_broadcast(session: Session, broadcast_id: int) -> Broadcast:
    row = session.get(Broadcast, broadcast_id)
    if row is None:
        raise NotFound(f"Broadcast {broadcast_id} does not exist.", field="broadcast_id")
    return row


def out(row: Broadcast) -> BroadcastOut:
    return BroadcastOut.model_validate(row, from_attributes=True)


def report(session: Session, broadcast_id: int) -> BroadcastReport:
    row = get_broadcast(session, broadcast_id)
    counts: dict[str, dict[str, int]] = {}
    for channel, status, n in session.execute(
        select(Delivery.channel, Delivery.status, func.count())
        .where(Delivery.broadcast_id == broadcast_id)
        .group_by(Delivery.channel, Delivery.status)
    ):
        counts.setdefault(channel, {})[status] = int(n)
    finished = sum(n for per in counts.values() for status, n in per.items() if status in FINAL)
    since = utcnow() - timedelta(seconds=RATE_WINDOW)
    recent = session.scalar(
        select(func.count()).where(Delivery.broadcast_id == broadcast_id, Delivery.sent_at >= since)
    )
    total = row.total
    progress = 1.0 if row.state in ("done", "cancelled") else (finished / total if total else 0.0)
    return BroadcastReport(
        **out(row).model_dump(),
        counts=counts,
        finished=finished,
        progress=round(progress, 4),
        rate_per_second=round(int(recent or 0) / RATE_WINDOW, 2),
    )


def deliveries_query(broadcast_id: int, channel: str | None, status: str | None, address: str | None) -> Select:
    stmt = select(Delivery).where(Delivery.broadcast_id == broadcast_id)
    if channel:
        stmt = stmt.where(Delivery.channel == channel)
    if status:
        stmt = stmt.where(Delivery.status == status)
    if address:
        stmt = stmt.where(Delivery.address == address)
    return stmt


CSV_FIELDS = (
    "id",
    "channel",
    "address",
    "subscriber_id",
    "locale",
    "status",
    "attempts",
    "provider",
    "provider_message_id",
    "error_code",
    "error_reason",
    "created_at",
    "sent_at",
)


def csv_rows(
    broadcast_id: int, channel: str | None, status: str | None, address: str | None, chunk: int = 5000
) -> Iterator[str]:
    """The delivery log as CSV lines, read in keyset chunks with a session of its own (streamed)."""
    import csv
    import io

    from broadcaster.db import get_sessionmaker

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_FIELDS)
    yield buf.getvalue()
    last = 0
    while True:
        with get_sessionmaker()() as session:
            rows = list(
                session.scalars(
                    deliveries_query(broadcast_id, channel, status, address)
                    .where(Delivery.id > last)
                    .order_by(Delivery.id)
                    .limit(chunk)
                )
            )
        if not rows:
            return
        buf.seek(0)
        buf.truncate()
        for r in rows:
            values = shown(r)
            writer.writerow([safe_cell(values[f]) for f in CSV_FIELDS])
        last = rows[-1].id
        yield buf.getvalue()


def shown(row: Delivery) -> dict[str, Any]:
    """A delivery as the API shows it: a webhook URL (a secret: its token is in the URL) masked as
    `/v1/channels` masks it, wherever it appears in the row (the address, an error quoting it)."""
    values = {name: getattr(row, name) for name in DeliveryOut.model_fields}
    address = row.address
    if is_url(address):
        masked = mask_url(address)
        values["address"] = masked
        for name in ("error_reason", "provider_message_id"):
            if isinstance(values[name], str):
                values[name] = values[name].replace(address, masked)
    return values


def delivery_out(row: Delivery) -> DeliveryOut:
    return DeliveryOut.model_validate(shown(row))
