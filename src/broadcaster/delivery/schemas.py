"""API shapes of the delivery engine: broadcasts, their reports and deliveries."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from broadcaster.delivery.eta import EtaOut


class BroadcastOut(BaseModel):
    id: int
    update_id: int | None
    kind: str
    state: str
    channels: list[str]
    skipped: dict[str, str]
    test: bool
    corrects_broadcast_id: int | None
    total: int
    created_at: datetime
    planned_at: datetime | None
    finished_at: datetime | None
    cancelled_at: datetime | None
    not_before: datetime | None = Field(
        None,
        description="The send hold (SEND_HOLD_SECONDS): nothing reaches a provider before this instant; while the "
        "broadcast is still `planning`, `POST /v1/broadcasts/{id}/stop` cancels it. None: no hold.",
    )


class ChannelReport(BaseModel):
    """One channel of a broadcast: where every delivery stands, why failures failed, and how long the rest takes."""

    sent: int = Field(0, description="Accepted by the provider (delivered, opened and bounced ones excluded).")
    delivered: int = Field(0, description="Confirmed delivered (or opened) by a provider receipt.")
    failed: int = Field(0, description="Failed, undelivered or bounced.")
    failed_by_reason: dict[str, int] = Field(default_factory=dict, description="Failures per provider error code.")
    pending: int = Field(0, description="Waiting to be sent (or to be retried).")
    sending: int = Field(0, description="Claimed by a worker, in flight.")
    cancelled: int = 0
    suspected_duplicates: int = Field(
        0,
        description="Sent again after an attempt timed out and the provider could not say whether it had "
        "arrived: these recipients may have the message twice.",
    )
    eta: EtaOut | None = Field(None, description="Time to reach the rest at the configured rate.")


class BroadcastReport(BroadcastOut):
    counts: dict[str, dict[str, int]] = Field(description="Deliveries per channel and status.")
    channels_report: dict[str, ChannelReport] = Field(
        default_factory=dict, description="Per channel: sent, delivered, failed by reason, pending, ETA."
    )
    finished: int = Field(description="Deliveries in a final state.")
    progress: float = Field(description="finished / total, 0..1.")
    rate_per_second: float = Field(description="Sends per second over the last minute.")
    suspected_duplicates: int = Field(0, description="Sum of the channels' suspected duplicates.")


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    broadcast_id: int
    channel: str
    address: str = Field(description="Phone, e-mail or pseudo-address; a webhook URL is shown masked (it is a secret).")
    subscriber_id: int | None
    locale: str
    status: str
    attempts: int
    next_attempt_at: datetime
    provider: str | None
    provider_message_id: str | None
    error_code: str | None
    error_reason: str | None
    idempotency_key: str
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None


class CancelOut(BaseModel):
    id: int
    state: str
    cancelled: int


class StopOut(BaseModel):
    """A broadcast stopped during its send hold: nothing of it reached anyone."""

    id: int
    state: str
    sent: int = Field(0, description="Messages handed to a provider: always 0 (a stop succeeds only before any).")
