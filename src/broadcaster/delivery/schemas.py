"""API shapes of the delivery engine: subscribers, broadcasts, deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from broadcaster.delivery.eta import EtaOut
from broadcaster.domain import Input, normalize_locale, normalize_phone

_TAG = r"^[a-z0-9][a-z0-9_-]{0,62}$"


def _slugs(values: list[str] | None, what: str) -> list[str] | None:
    if values is None:
        return None
    import re

    out = []
    for v in values:
        v = v.strip().lower()
        if not re.match(_TAG, v):
            raise ValueError(f"{what} {v!r} must be lowercase letters, digits, '-' or '_'")
        out.append(v)
    return sorted(set(out))


class _Fields(Input):
    """Subscriber fields (Input: unknown fields and NUL characters are refused, as PostgreSQL cannot store them)."""

    @field_validator("phone", check_fields=False)
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        return normalize_phone(v) if v else None

    @field_validator("locale", check_fields=False)
    @classmethod
    def _locale(cls, v: str | None) -> str | None:
        return normalize_locale(v) if v else v

    @field_validator("categories", check_fields=False)
    @classmethod
    def _categories(cls, v: list[str] | None) -> list[str] | None:
        return _slugs(v, "category")

    @field_validator("tags", check_fields=False)
    @classmethod
    def _tags(cls, v: list[str] | None) -> list[str] | None:
        return _slugs(v, "tag")

    @field_validator("services", check_fields=False)
    @classmethod
    def _services(cls, v: list[str] | None) -> list[str] | None:
        return _slugs(v, "service")

    @field_validator("areas", check_fields=False)
    @classmethod
    def _areas(cls, v: list[str] | None) -> list[str] | None:
        return _slugs(v, "area")

    @model_validator(mode="after")
    def _location(self) -> _Fields:
        lat, lon = getattr(self, "lat", None), getattr(self, "lon", None)
        sent = {"lat", "lon"} & self.model_fields_set
        if sent and (len(sent) == 1 or (lat is None) != (lon is None)):
            missing = "lon" if lat is not None or sent == {"lat"} else "lat"
            detail = InitErrorDetails(
                type=PydanticCustomError("location", "give lat and lon together (both null to clear the location)"),
                loc=(missing,),
                input=None,
            )
            raise ValidationError.from_exception_data("location", [detail])
        return self


class SubscriberIn(_Fields):
    """A subscriber created by an operator (API or CSV): email counts as confirmed unless told otherwise."""

    phone: str | None = Field(None, description="E.164, e.g. +15551234567")
    email: EmailStr | None = None
    name: str = Field("", max_length=200)
    locale: str = "en"
    categories: list[str] = Field(
        default_factory=list, max_length=100, description="Empty (and no services): every update reaches them."
    )
    tags: list[str] = Field(default_factory=list, max_length=100)
    services: list[str] = Field(
        default_factory=list, max_length=100, description="Service slugs followed: updates affecting them reach them."
    )
    email_confirmed: bool = True
    test_group: bool = False
    lat: float | None = Field(None, ge=-90, le=90, description="Location for area targeting (WGS 84 degrees).")
    lon: float | None = Field(None, ge=-180, le=180)
    areas: list[str] = Field(default_factory=list, max_length=100, description="Named areas (slugs) they are in.")

    @model_validator(mode="after")
    def _one_address(self) -> SubscriberIn:
        if not self.phone and not self.email:
            raise ValueError("a phone or an email is required")
        return self


class SubscriberPatch(_Fields):
    phone: str | None = None
    email: EmailStr | None = None
    name: str | None = Field(None, max_length=200)
    locale: str | None = None
    categories: list[str] | None = Field(None, max_length=100)
    tags: list[str] | None = Field(None, max_length=100)
    services: list[str] | None = Field(None, max_length=100)
    email_confirmed: bool | None = None
    email_opted_out: bool | None = None
    sms_opted_out: bool | None = None
    test_group: bool | None = None
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    areas: list[str] | None = Field(None, max_length=100)


class SubscriberOut(BaseModel):
    id: int
    phone: str | None
    email: str | None
    name: str
    locale: str
    categories: list[str]
    tags: list[str]
    services: list[str]
    all_categories: bool = Field(description="No category and no service chosen: every update reaches them.")
    email_confirmed: bool
    email_opted_out: bool
    sms_opted_out: bool
    test_group: bool
    lat: float | None = None
    lon: float | None = None
    areas: list[str] = Field(default_factory=list, description="Named areas (slugs) they are placed in.")
    source: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def build(cls, row: Any, choices: Any, areas: list[str] | None = None) -> SubscriberOut:
        """`row` a Subscriber, `choices` its `memberships.Choices` (category, tag and service slugs), `areas`
        its named-area slugs."""
        skip = ("categories", "tags", "services", "areas")
        data = {k: getattr(row, k) for k in cls.model_fields if k not in skip}
        return cls(
            **data, categories=choices.categories, tags=choices.tags, services=choices.services, areas=areas or []
        )


class SubscribeIn(_Fields):
    """Self-service subscription (public): email gets a confirmation link (double opt-in)."""

    model_config = ConfigDict(extra="ignore")

    phone: str | None = None
    email: EmailStr | None = None
    locale: str = "en"
    categories: list[str] = Field(default_factory=list, max_length=50)
    services: list[str] = Field(
        default_factory=list, max_length=50, description="Public services (components) to follow, by slug."
    )

    @model_validator(mode="after")
    def _one_address(self) -> SubscribeIn:
        if not self.phone and not self.email:
            raise ValueError("a phone or an email is required")
        return self


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
