"""Broadcast reports: counts per channel and status, progress, send rate, the per-recipient log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from broadcaster.csvsafe import safe_cell
from broadcaster.delivery import eta
from broadcaster.delivery.eta import EtaOut
from broadcaster.delivery.schemas import BroadcastOut, BroadcastReport, ChannelReport, DeliveryOut
from broadcaster.errors import NotFound
from broadcaster.masking import is_url, mask_url
from broadcaster.models import utcnow
from broadcaster.models.delivery import Broadcast, Delivery

FAILED = ("failed", "undelivered", "bounced")
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
    per_channel = channel_reports(session, row, counts)
    return BroadcastReport(
        **out(row).model_dump(),
        counts=counts,
        channels_report=per_channel,
        finished=finished,
        progress=round(progress, 4),
        rate_per_second=round(int(recent or 0) / RATE_WINDOW, 2),
        suspected_duplicates=sum(c.suspected_duplicates for c in per_channel.values()),
    )


def channel_reports(session: Session, row: Broadcast, counts: dict[str, dict[str, int]]) -> dict[str, ChannelReport]:
    """Per channel: outcomes, failures by reason, suspected duplicates and the ETA of what is left."""
    failures: dict[str, dict[str, int]] = {}
    for channel, code, n in session.execute(
        select(Delivery.channel, Delivery.error_code, func.count())
        .where(Delivery.broadcast_id == row.id, Delivery.status.in_(FAILED))
        .group_by(Delivery.channel, Delivery.error_code)
    ):
        failures.setdefault(channel, {})[code or "unknown"] = int(n)
    suspects: dict[str, int] = {}
    for channel, n in session.execute(
        select(Delivery.channel, func.count())
        .where(Delivery.broadcast_id == row.id, Delivery.suspect_duplicate.is_(True))
        .group_by(Delivery.channel)
    ):
        suspects[channel] = int(n)
    result: dict[str, ChannelReport] = {}
    for channel, per in counts.items():
        left = per.get("pending", 0) + per.get("sending", 0)
        result[channel] = ChannelReport(
            sent=per.get("sent", 0),
            delivered=per.get("delivered", 0) + per.get("opened", 0),
            failed=sum(per.get(s, 0) for s in FAILED),
            failed_by_reason=failures.get(channel, {}),
            pending=per.get("pending", 0),
            sending=per.get("sending", 0),
            cancelled=per.get("cancelled", 0),
            suspected_duplicates=int(suspects.get(channel, 0)),
            eta=_eta(session, row, channel, left) if left else None,
        )
    return result


def _eta(session: Session, row: Broadcast, channel: str, left: int) -> EtaOut:
    from broadcaster.channels.registry import resolve_channel
    from broadcaster.delivery.content import message_for
    from broadcaster.settings import get_settings

    adapters = resolve_channel(channel, get_settings())
    adapter = adapters[0] if adapters else None
    message = None
    if adapter is not None:
        try:
            message = message_for(session, row, adapter, get_settings().default_locale)
        except Exception:  # an estimate never fails a report
            message = None
    # rows of this broadcast in flight are part of `left`; count only other broadcasts' rows ahead
    ahead = eta.queued_ahead(session, channel, row.priority, before_broadcast=row.id)
    return eta.estimate(channel, eta.label_of(channel, adapter), left, adapter, message, ahead)


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
