"""The web banner adapter: publishing makes the update the active banner.

The banner surfaces read published updates from the database themselves, so "sending" only records
that the update reached the banner channel; it needs no credentials and is always configured.
"""

from __future__ import annotations

from collections.abc import Sequence

from broadcaster.channels.base import Adapter, Limits, Message, Recipient, SendResult
from broadcaster.domain import ChannelKind
from broadcaster.settings import Settings


class Banner(Adapter):
    name = "banner"
    kind = ChannelKind.banner
    limits = Limits(max_length=200, batch_size=1, rate_per_second=None)

    def __init__(self, settings: Settings) -> None:
        self.limits = Limits(max_length=settings.banner_text_max_chars, batch_size=1)

    @classmethod
    def from_settings(cls, settings: Settings) -> Banner:
        return cls(settings)

    async def send(self, message: Message, recipients: Sequence[Recipient]) -> list[SendResult]:
        ref = f"banner:{message.update_id}" if message.update_id is not None else "banner"
        return [SendResult.success(r.delivery_id, ref) for r in recipients]
