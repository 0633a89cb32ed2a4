"""How subscribers plug into the delivery engine (broadcaster.hooks): every e-mail carries the person's signed
one-click unsubscribe link (RFC 8058)."""

from __future__ import annotations

from broadcaster import hooks
from broadcaster.channels.base import Adapter, Message
from broadcaster.domain import ChannelKind
from broadcaster.subscribers.tokens import unsubscribe_url


def unsubscribe_link(adapter: Adapter, subscriber_id: int, message: Message | None) -> dict[str, str]:
    return {"unsubscribe_url": unsubscribe_url(subscriber_id)} if adapter.kind is ChannelKind.email else {}


hooks.recipient_variables.register(unsubscribe_link)
