"""Schemas for categories and the routing map."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator

from broadcaster.alertrules.schemas import AlertRule, WebhookMapping
from broadcaster.domain import Input, Severity, normalize_phone, validate_slug
from broadcaster.responses.escalation import EscalationRules


def e164(value: str | None) -> str | None:
    """Validate and normalise a phone number to E.164."""
    return None if value is None else normalize_phone(value)


class ContactRoute(Input):
    """How customers should reach us for this need."""

    live_chat_url: AnyHttpUrl | None = None
    phone: str | None = Field(None, description="Phone number, E.164 (e.g. +15551234567).")
    sms: str | None = Field(None, description="SMS number, E.164.")
    email: EmailStr | None = None
    portal_url: AnyHttpUrl | None = None
    opening_hours: str | None = Field(None, max_length=200)
    note: str | None = Field(None, max_length=500)

    _phones = field_validator("phone", "sms")(e164)

    def as_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.model_dump(exclude_none=True).items()}


#: who an update of a category reaches (see delivery/audience.py `reach_branches`)
Reach = Literal["category", "services", "either"]
REACH_HELP = (
    "Who an update reaches: 'category' (the category's subscribers), 'services' (followers of the incident's "
    "affected services; the category's subscribers when it names none), or 'either' (both). Subscribers who "
    "chose nothing get every update."
)


class CategoryIn(Input):
    slug: str = Field(..., max_length=64, examples=["technical-issue"])
    name: str = Field(..., min_length=1, max_length=200)
    description: str = Field("", max_length=2000)
    contact: ContactRoute = Field(default_factory=ContactRoute)
    channels: dict[Severity, list[str]] = Field(
        default_factory=dict,
        description="Channels that fire by default per severity, e.g. {'critical': ['sms','voice','email']}.",
    )
    position: int = Field(0, ge=0, le=1_000_000, description="Sort order in lists (smallest first).")
    reach: Reach = Field("either", description=REACH_HELP)
    escalation: EscalationRules | None = Field(
        None, description="Default escalation rules of questions on this category's updates (docs/escalation.md)."
    )

    _slug = field_validator("slug")(validate_slug)

    @field_validator("channels")
    @classmethod
    def _known_channels(cls, value: dict[Severity, list[str]] | None) -> dict[Severity, list[str]] | None:
        from broadcaster.channels.registry import known_channel_names

        if value is None:  # a patch's explicit null: leave the channels as they are
            return None
        known = known_channel_names()
        for severity, names in value.items():
            for name in names:
                if name not in known:
                    raise ValueError(
                        f"unknown channel {name!r} for severity {severity.value!r}; known: {', '.join(sorted(known))}"
                    )
            if len(set(names)) != len(names):
                raise ValueError(f"duplicate channel for severity {severity.value!r}")
        return value


class CategoryPatch(Input):
    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    contact: ContactRoute | None = None
    channels: dict[Severity, list[str]] | None = None
    position: int | None = Field(None, ge=0, le=1_000_000)
    reach: Reach | None = Field(None, description=REACH_HELP)
    escalation: EscalationRules | None = Field(None, description="Escalation rules; null removes them.")

    _known = field_validator("channels")(CategoryIn._known_channels.__func__)  # type: ignore[attr-defined]


class CategoryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    slug: str
    name: str
    description: str
    contact: dict[str, str]
    channels: dict[str, list[str]]
    position: int
    reach: str
    escalation: dict[str, Any] | None = None
    created_at: datetime
    updated_at: datetime


class RoutingMap(Input):
    """The whole routing map: what `PUT /v1/routing-map` takes and the YAML crisis plan holds."""

    version: int = 1
    categories: list[CategoryIn]
    #: inbound alerts (Alertmanager, Grafana, generic webhooks) -> incidents; see docs/integrations.md
    alert_rules: list[AlertRule] = Field(default_factory=list)
    #: how each generic JSON webhook integration's body becomes labels/annotations for the alert rules
    webhook_mappings: list[WebhookMapping] = Field(default_factory=list)

    @model_validator(mode="after")
    def _rules_consistent(self) -> RoutingMap:
        from broadcaster.alertrules.rules import check_map_sections

        check_map_sections(self)
        return self

    @field_validator("categories")
    @classmethod
    def _unique(cls, value: list[CategoryIn]) -> list[CategoryIn]:
        seen: set[str] = set()
        for cat in value:
            if cat.slug in seen:
                raise ValueError(f"duplicate category slug {cat.slug!r}")
            seen.add(cat.slug)
        return value


# --- routing-map versions ------------------------------------------------------------------------------------


class FieldChangeOut(BaseModel):
    """One field of a category, rule or mapping: dotted path, before and after (null: not set)."""

    path: str
    before: Any = None
    after: Any = None


class ItemChangeOut(BaseModel):
    """A category, alert rule or webhook mapping added, removed or changed (`name` "(order)": the rules' order)."""

    section: str
    name: str
    change: Literal["added", "removed", "changed"]
    fields: list[FieldChangeOut]


class VersionOut(BaseModel):
    """One version of the routing map (docs/core.md, "Routing-map versions")."""

    number: int
    state: Literal["proposed", "applied", "rejected", "superseded"]
    proposed_by: str
    proposed_at: datetime
    source: str
    base_number: int | None = Field(None, description="The applied version it was compared with when recorded.")
    summary: str = Field(description="The diff against base_number, in one line.")
    loosens: bool = Field(description="It loosens safety: an admin proposed it and a second person must approve it.")
    reasons: list[str] = Field(description="Why it loosens safety.")
    approved_by: str | None = Field(None, description="The second person who approved it (null: applied at once).")
    applied_at: datetime | None = None
    rejected_by: str | None = None
    rejected_at: datetime | None = None
    comment: str | None = Field(None, description="Why it was rejected.")
    superseded_by: int | None = None
    etag: str | None = Field(None, description="While proposed: the ETag to approve it with (If-Match).")


class VersionDetailOut(VersionOut):
    """A version with its diff, and the whole map."""

    against: int | None = Field(
        description="The version the diff is against: the applied one for a proposal (?against= to choose)."
    )
    diff: list[ItemChangeOut]
    diff_text: str = Field(description="The diff as text: + added, - removed, ~ changed; `path: before -> after`.")
    map: dict[str, Any]
