"""Provider receipts: Twilio status callbacks and SendGrid Event Webhook events update delivery status.

Signatures are checked with the providers' own SDK helpers (`twilio.request_validator.RequestValidator`,
`sendgrid.helpers.eventwebhook.EventWebhook`) before anything is read into the database.
A status never moves backwards (a late `sent` does not undo `delivered`).

SendGrid signs each POST when it sends it, timestamp included: a signed batch whose timestamp is more than
`SENDGRID_TIMESTAMP_TOLERANCE` (5 minutes) from now is refused (a captured request replayed later). SendGrid
retries a batch it got no 2xx for, so each event is stored once per `sg_event_id` (a unique index on
`delivery_events (provider, provider_event_id)`, inserted with ON CONFLICT DO NOTHING, so concurrent
retries cannot both apply it), and only a newly stored event changes a delivery or a subscriber.
"""

from __future__ import annotations

import binascii
import hashlib
import logging
import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster.errors import Forbidden
from broadcaster.models import utcnow
from broadcaster.models.delivery import Delivery, DeliveryEvent
from broadcaster.pagination import MAX_ID
from broadcaster.settings import Settings

log = logging.getLogger(__name__)

#: how far along a delivery is; failures are final and outrank everything but `opened`
RANK = {
    "pending": 0,
    "sending": 1,
    "sent": 2,
    "delivered": 3,
    "undelivered": 4,
    "bounced": 4,
    "failed": 4,
    "opened": 5,
}

TWILIO_STATUS = {
    "queued": None,
    "accepted": None,
    "sending": None,
    "sent": "sent",
    "delivered": "delivered",
    "read": "opened",
    "undelivered": "undelivered",
    "failed": "failed",
    # voice calls
    "initiated": None,
    "ringing": None,
    "in-progress": "sent",
    "completed": "delivered",
    "busy": "undelivered",
    "no-answer": "undelivered",
    "canceled": "failed",
}

SENDGRID_STATUS = {
    "processed": None,
    "deferred": None,
    "delivered": "delivered",
    "open": "opened",
    "click": "opened",
    "bounce": "bounced",
    "dropped": "failed",
    "blocked": "bounced",
    "spamreport": None,
    "unsubscribe": None,
    "group_unsubscribe": None,
}


def twilio_signature_ok(settings: Settings, url: str, params: Mapping[str, Any], signature: str | None) -> bool:
    """True when `X-Twilio-Signature` matches (`url` is the public URL Twilio called)."""
    token = settings.twilio_auth_token
    if not signature or token is None or not token.get_secret_value():
        return False
    from twilio.request_validator import RequestValidator

    return bool(RequestValidator(token.get_secret_value()).validate(url, dict(params), signature))


#: seconds a signed Event Webhook timestamp may be off from now, either way
SENDGRID_TIMESTAMP_TOLERANCE = 300
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


def sendgrid_signature_ok(
    settings: Settings, raw: bytes, signature: str | None, timestamp: str | None, *, now: float | None = None
) -> bool:
    """True when the Event Webhook ECDSA signature over timestamp + raw body verifies. A request whose
    signature verifies but whose timestamp is more than 5 minutes off raises `Forbidden` naming the header."""
    key = settings.sendgrid_event_public_key
    if not key or not signature or not timestamp:
        return False
    from sendgrid.helpers.eventwebhook import EventWebhook

    try:
        hook = EventWebhook()
        public_key = hook.convert_public_key_to_ecdsa(key)
        verified = bool(hook.verify_signature(raw.decode("utf-8"), signature, timestamp, public_key))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        log.info("SendGrid signature rejected: %s", type(exc).__name__)
        return False
    except Exception as exc:  # the ecdsa library raises its own errors on malformed input
        log.info("SendGrid signature rejected: %s", type(exc).__name__)
        return False
    if verified and not _fresh(timestamp, time.time() if now is None else now):
        raise Forbidden(
            f"The Event Webhook timestamp is more than {SENDGRID_TIMESTAMP_TOLERANCE} seconds from now; a signed "
            "request is accepted only when it is fresh (a replayed request is refused).",
            field=TIMESTAMP_HEADER,
        )
    return verified


def _fresh(timestamp: str, now: float) -> bool:
    try:
        sent = int(timestamp.strip())
    except ValueError:
        return False
    return abs(now - sent) <= SENDGRID_TIMESTAMP_TOLERANCE


def _find(session: Session, delivery_id: Any, provider_message_id: str | None, address: str | None) -> Delivery | None:
    if delivery_id is not None:
        try:
            key = int(delivery_id)
        except (TypeError, ValueError, OverflowError):
            key = 0
        # an id past the column's range matches nothing (binding it is an OverflowError on SQLite)
        row = session.get(Delivery, key) if 1 <= key <= MAX_ID else None
        if row is not None:
            return row
    if provider_message_id:
        stmt = select(Delivery).where(Delivery.provider_message_id == provider_message_id)
        if address:
            stmt = stmt.where(Delivery.address == address)
        return session.scalars(stmt.limit(1)).first()
    return None


def _advance(row: Delivery, status: str, code: str | None = None, reason: str | None = None) -> bool:
    if RANK.get(status, 0) <= RANK.get(row.status, 0) and status != row.status:
        return False
    if row.status in ("cancelled", "suppressed"):
        return False
    row.status = status
    if code:
        row.error_code = code[:64]
    if reason:
        row.error_reason = reason[:1000]
    row.updated_at = utcnow()
    return True


def apply_twilio(session: Session, params: Mapping[str, Any], delivery_id: str | None) -> DeliveryEvent:
    sid = params.get("MessageSid") or params.get("CallSid") or params.get("SmsSid")
    raw_status = str(params.get("MessageStatus") or params.get("CallStatus") or params.get("SmsStatus") or "")
    row = _find(session, delivery_id, sid, None)
    event = DeliveryEvent(
        delivery_id=row.id if row else None,
        provider="twilio",
        provider_message_id=sid[:128] if sid else None,  # the column's size (Twilio's SIDs have 34 characters)
        event=raw_status[:32] or "unknown",
        payload=dict(params),
    )
    session.add(event)
    status = TWILIO_STATUS.get(raw_status)
    if row is not None and status:
        code = params.get("ErrorCode")
        reason = params.get("ErrorMessage") or (f"Twilio error {code}" if code else None)
        _advance(row, status, str(code) if code else None, reason if status in ("failed", "undelivered") else None)
    return event


def event_key(raw_id: object) -> str | None:
    """The stored form of a provider's event id (`sg_event_id`): as is up to the column's 128 characters,
    else its SHA-256 (never cut: two long ids sharing a prefix must stay distinct)."""
    if raw_id is None or isinstance(raw_id, dict | list) or raw_id == "":
        return None
    text = str(raw_id)
    return text if len(text) <= 128 else "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _store_once(session: Session, values: dict[str, Any]) -> bool:
    """Insert a receipt unless one with the same (provider, provider_event_id) is stored; True if inserted."""
    dialect = session.get_bind().dialect.name
    if values.get("provider_event_id") is None or dialect not in ("postgresql", "sqlite"):
        session.add(DeliveryEvent(**values))
        return True
    from sqlalchemy.dialects import postgresql, sqlite

    upsert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        upsert(DeliveryEvent)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["provider", "provider_event_id"])
        .returning(DeliveryEvent.id)
    )
    return session.execute(stmt).first() is not None


def apply_sendgrid(session: Session, events: list[Any]) -> int:
    """Apply a batch of Event Webhook events, each `sg_event_id` once ever; how many matched a delivery."""
    matched = 0
    for ev in events:
        if not isinstance(ev, dict):
            continue
        name = str(ev.get("event", ""))
        mid = str(ev.get("sg_message_id") or "").split(".")[0] or None
        email = ev.get("email")  # signed, but any JSON: only a string can match an address
        row = _find(session, ev.get("delivery_id"), mid, email if isinstance(email, str) else None)
        stored = _store_once(
            session,
            {
                "delivery_id": row.id if row else None,
                "provider": "sendgrid",
                "provider_message_id": mid[:128] if mid else None,
                "provider_event_id": event_key(ev.get("sg_event_id")),
                "event": name[:32] or "unknown",
                "payload": ev,
                "at": utcnow(),
            },
        )
        if not stored:  # a retried or replayed event: already applied
            continue
        status = SENDGRID_STATUS.get(name)
        if row is None:
            continue
        matched += 1
        if status:
            reason = ev.get("reason") or ev.get("response")
            _advance(row, status, str(ev.get("status") or name), str(reason) if reason else None)
        if name in ("unsubscribe", "group_unsubscribe", "spamreport") and row.subscriber_id is not None:
            from broadcaster.models.delivery import Subscriber

            sub = session.get(Subscriber, row.subscriber_id)
            if sub is not None:
                sub.email_opted_out = True
    return matched
