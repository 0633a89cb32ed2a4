"""Content for a delivery: the rendered message of its broadcast, and the values personal to each recipient."""

from __future__ import annotations

from sqlalchemy.orm import Session

from broadcaster import hooks
from broadcaster.channels.base import Adapter, Message
from broadcaster.models import Update
from broadcaster.models.delivery import Broadcast
from broadcaster.rendering import render_update


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
    rendered = render_update(session, update, adapter.name, locale)
    message: Message = rendered.message
    return message


def recipient_variables(adapter: Adapter, subscriber_id: int | None, message: Message | None = None) -> dict[str, str]:
    """Per-recipient values the features contribute (`hooks.recipient_variables`): the signed one-click unsubscribe
    link for email (RFC 8058), and when the message asks a question, the signed answer links (email buttons, the
    voice <Gather> action)."""
    if subscriber_id is None:
        return {}
    out: dict[str, str] = {}
    for contribute in hooks.recipient_variables.functions():
        out.update(contribute(adapter, subscriber_id, message))
    return out
