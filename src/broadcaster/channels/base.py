"""The one adapter contract every channel implements (built-ins and third parties alike).

An adapter is constructed from settings (`from_settings` returns None when it is not configured, so the
embedded default never crashes), declares its limits, sends one rendered message to a batch of
recipients and returns exactly one `SendResult` per recipient, classifying failures as transient
(retry later) or permanent (record and stop).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from broadcaster.domain import SUBSCRIBER_KINDS, ChannelKind
from broadcaster.masking import is_url, mask, mask_url

if TYPE_CHECKING:
    from broadcaster.settings import Settings

__all__ = ["is_url", "mask", "mask_url"]  # part of the adapter contract: adapters mask what they show


#: placeholder left in e-mail bodies when no per-recipient variables are given; an e-mail adapter
#: substitutes each recipient's own unsubscribe URL (SendGrid: `substitutions`)
UNSUBSCRIBE_PLACEHOLDER = "-unsubscribe_url-"


class ErrorClass(StrEnum):
    transient = "transient"
    permanent = "permanent"


@dataclass(frozen=True)
class Limits:
    """What the provider accepts: message length (in the channel's own unit), batch size, sends/s."""

    max_length: int | None = None
    batch_size: int = 1
    rate_per_second: float | None = None


@dataclass(frozen=True)
class Recipient:
    """One addressee of a batch; `delivery_id` ties the result back to its delivery row."""

    delivery_id: str
    address: str
    locale: str | None = None
    idempotency_key: str | None = None
    variables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Message:
    """Rendered content for one channel and locale. Fields a channel does not use stay empty."""

    text: str
    locale: str = "en"
    subject: str | None = None
    html: str | None = None
    update_id: int | None = None
    incident_id: int | None = None
    severity: str | None = None
    test: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProviderError:
    """A failed send: transient errors are retried (honouring `retry_after`), permanent ones are not."""

    error_class: ErrorClass
    code: str
    reason: str
    retry_after: float | None = None
    status: int | None = None

    @property
    def transient(self) -> bool:
        return self.error_class is ErrorClass.transient


#: error codes after which the provider may have accepted the request (the answer was lost)
UNKNOWN_OUTCOME_CODES = frozenset({"timeout"})


class LookupStatus(StrEnum):
    """What a provider says about an earlier request whose answer was lost."""

    found = "found"  # the provider has the message: do not send again
    not_found = "not_found"  # the provider has no such message: safe to send again
    unknown = "unknown"  # cannot tell (no lookup API, or the lookup failed): a resend may duplicate


@dataclass(frozen=True)
class LookupResult:
    status: LookupStatus
    provider_message_id: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class SendResult:
    delivery_id: str
    ok: bool
    provider_message_id: str | None = None
    error: ProviderError | None = None

    @property
    def outcome_unknown(self) -> bool:
        """The request may have reached the provider (a timeout after sending): resending could duplicate."""
        return self.error is not None and self.error.code in UNKNOWN_OUTCOME_CODES

    @classmethod
    def success(cls, delivery_id: str, provider_message_id: str | None) -> SendResult:
        return cls(delivery_id, True, provider_message_id)

    @classmethod
    def failure(cls, delivery_id: str, error: ProviderError) -> SendResult:
        return cls(delivery_id, False, None, error)


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str


class Adapter(abc.ABC):
    """Base class of every channel adapter."""

    #: registry name, e.g. "twilio-sms"; equals the entry-point name
    name: ClassVar[str]
    kind: ClassVar[ChannelKind]
    #: class default; adapters whose limits come from settings set it per instance
    limits: Limits = Limits()
    #: config fields this adapter reads from settings (secrets are masked by `describe`)
    config_fields: ClassVar[tuple[str, ...]] = ()
    secret_fields: ClassVar[tuple[str, ...]] = ()
    #: failover order among adapters of the same kind (lower first)
    priority: ClassVar[int] = 100
    #: how `limits.max_length` is counted: "chars", "sms_segments" (max_length = segments),
    #: "x_weighted" (X's weighted length, URLs 23), "mastodon" (characters, URLs 23) or "bluesky"
    #: (graphemes, URLs in full, at most 3,000 UTF-8 bytes)
    length_unit: ClassVar[str] = "chars"

    @classmethod
    @abc.abstractmethod
    def from_settings(cls, settings: Settings) -> Adapter | None:
        """Build from settings, or None when this adapter is not configured."""

    @abc.abstractmethod
    async def send(self, message: Message, recipients: Sequence[Recipient]) -> list[SendResult]:
        """Send `message` to every recipient; one result per recipient, never raises for provider errors."""

    def rate_cost(self, message: Message, recipients: int) -> float:
        """Units of `limits.rate_per_second` that sending `message` to `recipients` uses. SMS counts segments,
        as carriers and Twilio's sender throughput do: a 3-segment text costs 3 per recipient."""
        if self.kind is ChannelKind.sms:
            from broadcaster.text.sms import analyze

            return float(recipients * max(1, analyze(message.text).segments))
        return float(recipients)

    async def lookup(self, message: Message, recipient: Recipient, since: datetime) -> LookupResult:
        """After a timed-out send (`SendResult.outcome_unknown`): did the provider accept `message` for
        `recipient` at or after `since`? Providers without idempotency keys (Twilio Messages and Calls)
        implement this so the worker never blindly resends; the default cannot tell."""
        return LookupResult(LookupStatus.unknown, detail="this adapter cannot look up earlier sends")

    def broadcast_addresses(self) -> list[str] | None:
        """Pseudo-recipients for channels without subscribers (social, webhook, banner): one per broadcast
        (the adapter name, or each webhook URL). None means the channel sends to subscribers' addresses."""
        return None if self.kind in SUBSCRIBER_KINDS else [self.name]

    async def check(self) -> CheckResult:
        """A cheap connection/credentials check (default: configured means ok)."""
        return CheckResult(True, "configured")

    async def aclose(self) -> None:
        """Release connections."""

    def config(self) -> dict[str, Any]:
        """Current config values (secrets included; use `describe` for display)."""
        return {}

    def describe(self) -> dict[str, Any]:
        """What this adapter is and how it is configured, secrets masked."""
        cfg = self.config()
        shown = {k: (mask(v) if k in self.secret_fields else v) for k, v in cfg.items()}
        return {
            "name": self.name,
            "kind": self.kind.value,
            "limits": {
                "max_length": self.limits.max_length,
                "batch_size": self.limits.batch_size,
                "rate_per_second": self.limits.rate_per_second,
            },
            "config": shown,
        }

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()['config']}>"
