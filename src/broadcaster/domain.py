"""Domain vocabulary: severities, statuses, update kinds, channel kinds, locale and phone validation."""

from __future__ import annotations

import re
from enum import IntEnum, StrEnum
from typing import Any

import phonenumbers
from pydantic import BaseModel, ConfigDict, field_validator


class Severity(StrEnum):
    info = "info"
    minor = "minor"
    major = "major"
    critical = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


class Priority(IntEnum):
    """Delivery lanes, most urgent first: workers claim and take rate tokens in this order."""

    critical = 0
    major = 1  # also system messages (subscription confirmations)
    normal = 2
    test = 3

    @classmethod
    def for_send(cls, severity: str | None, *, test: bool = False) -> Priority:
        """The lane of a broadcast: test sends never delay real ones; critical, then major, then the rest."""
        if test:
            return cls.test
        if severity == Severity.critical.value:
            return cls.critical
        if severity == Severity.major.value:
            return cls.major
        return cls.normal


class IncidentStatus(StrEnum):
    investigating = "investigating"
    identified = "identified"
    monitoring = "monitoring"
    resolved = "resolved"


class UpdateKind(StrEnum):
    normal = "normal"
    correction = "correction"
    cancel = "cancel"


class UpdateState(StrEnum):
    draft = "draft"
    pending_approval = "pending_approval"
    published = "published"


class ChannelKind(StrEnum):
    sms = "sms"
    voice = "voice"
    email = "email"
    social = "social"
    webhook = "webhook"
    banner = "banner"


#: kinds that send to subscribers' addresses; the others send once per broadcast (pseudo-recipients)
SUBSCRIBER_KINDS = frozenset({ChannelKind.sms, ChannelKind.voice, ChannelKind.email})


_LOCALE = re.compile(r"^(?P<lang>[A-Za-z]{2,3})(?:[-_](?P<script>[A-Za-z]{4}))?(?:[-_](?P<region>[A-Za-z]{2}|\d{3}))?$")


def normalize_locale(value: str) -> str:
    """Canonical BCP 47 form of a simple tag (`pt_br` -> `pt-BR`); ValueError when it is not one."""
    m = _LOCALE.match(value.strip())
    if not m:
        raise ValueError(f"{value!r} is not a locale tag like 'en', 'fr-CA' or 'zh-Hant-TW'")
    out = m["lang"].lower()
    if m["script"]:
        out += "-" + m["script"].title()
    if m["region"]:
        out += "-" + m["region"].upper()
    return out


_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def validate_slug(value: str) -> str:
    if not _SLUG.match(value):
        raise ValueError("must be lowercase letters, digits and dashes, starting with a letter or digit")
    return value


def has_nul(value: object) -> bool:
    """True when a NUL character is in `value` or, for containers, in any key or item (recursively)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple | set):
        return any(has_nul(v) for v in value)
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    return False


class Input(BaseModel):
    """Base of request bodies: unknown fields are rejected, and so are NUL characters in any text
    (PostgreSQL cannot store them; rejecting them everywhere keeps both backends alike)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if has_nul(value):
            raise ValueError("must not contain NUL characters")
        return value


def normalize_phone(value: str) -> str:
    """E.164 form of a phone number given with its country code (`+15551234567`); ValueError otherwise."""
    raw = value.strip()
    if not raw.startswith("+"):
        raise ValueError("must be in E.164 form with a country code, e.g. +15551234567")
    try:
        parsed = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"is not a phone number ({exc})") from exc
    if not phonenumbers.is_possible_number(parsed):
        raise ValueError("is not a possible phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
