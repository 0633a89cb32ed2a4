"""Content for a delivery: the rendering package's output, or a plain fallback while it is absent."""

from __future__ import annotations

import importlib
from typing import Any

from sqlalchemy.orm import Session

from broadcaster.channels.base import Adapter, Message
from broadcaster.domain import ChannelKind
from broadcaster.models import Update
from broadcaster.models.delivery import Broadcast


def _fallback(update: Update, locale: str) -> Message:
    tr = (update.translations or {}).get(locale) or {}
    body = tr.get("body") or update.body
    summary = tr.get("summary") or update.summary
    incident = update.incident
    return Message(
        text=summary or body,
        locale=locale,
        subject=incident.title,
        html=None,
        update_id=update.id,
        incident_id=incident.id,
        severity=incident.severity,
        test=bool(update.test),
    )


def message_for(session: Session, broadcast: Broadcast, adapter: Adapter, locale: str) -> Message:
    """The rendered message of `broadcast` for `adapter` in `locale`."""
    if broadcast.kind == "system":
        msg = broadcast.message or {}
        return Message(
            text=str(msg.get("text", "")),
            subject=msg.get("subject"),
            html=msg.get("html"),
            locale=locale,
        )
    update = session.get(Update, broadcast.update_id)
    assert update is not None
    try:
        rendering: Any = importlib.import_module("broadcaster.rendering")
        render_update = rendering.render_update
    except (ImportError, AttributeError):
        return _fallback(update, locale)
    rendered = render_update(session, update, adapter.name, locale)
    message: Message = rendered.message
    return message


def recipient_variables(adapter: Adapter, subscriber_id: int | None, message: Message | None = None) -> dict[str, str]:
    """Per-recipient values: the signed one-click unsubscribe link for email (RFC 8058), and when the message
    asks a question, the signed answer links (email buttons, the voice <Gather> action)."""
    if subscriber_id is None:
        return {}
    out: dict[str, str] = {}
    question = message.data.get("question") if message is not None else None
    if question:
        from broadcaster.responses.links import recipient_variables as answer_variables

        out.update(answer_variables(question, adapter.kind.value, subscriber_id))
    if adapter.kind is ChannelKind.email:
        from broadcaster.subscribers.tokens import unsubscribe_url

        out["unsubscribe_url"] = unsubscribe_url(subscriber_id)
    return out
