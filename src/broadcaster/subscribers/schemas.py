"""API shapes of subscribers: the admin API's and the public subscribe form's."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

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
