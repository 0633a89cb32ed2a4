"""Provider receipts: Twilio status callbacks and SendGrid Event Webhook events update delivery status.

Signatures are checked with the providers' own SDK helpers (`twilio.request_validator.RequestValidator`,
`sendgrid.helpers.eventwebhook.EventWebhook`) before anything is read into the database.
A status never moves backwards (a late `sent` does not undo `delivered`).
"""

from __future__ import annotations

import binascii
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

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


def sendgrid_signature_ok(settings: Settings, raw: bytes, signature: str | None, timestamp: str | None) -> bool:
    """True when the Event Webhook ECDSA signature over timestamp + raw body verifies."""
    key = settings.sendgrid_event_public_key
    if not key or not signature or not timestamp:
        return False
    from sendgrid.helpers.eventwebhook import EventWebhook

    try:
        hook = EventWebhook()
        public_key = hook.convert_public_key_to_ecdsa(key)
        return bool(hook.verify_signature(raw.decode("utf-8"), signature, timestamp, public_key))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        log.info("SendGrid signature rejected: %s", type(exc).__name__)
        return False
    except Exception as exc:  # the ecdsa library raises its own errors on malformed input
        log.info("SendGrid signature rejected: %s", type(exc).__name__)
        return False


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


def apply_sendgrid(session: Session, events: list[Any]) -> int:
    """Apply a batch of Event Webhook events; how many matched a delivery."""
    matched = 0
    for ev in events:
        if not isinstance(ev, dict):
            continue
        name = str(ev.get("event", ""))
        mid = str(ev.get("sg_message_id") or "").split(".")[0] or None
        email = ev.get("email")  # signed, but any JSON: only a string can match an address
        row = _find(session, ev.get("delivery_id"), mid, email if isinstance(email, str) else None)
        session.add(
            DeliveryEvent(
                delivery_id=row.id if row else None,
                provider="sendgrid",
                provider_message_id=mid[:128] if mid else None,
                event=name[:32] or "unknown",
                payload=ev,
            )
        )
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
