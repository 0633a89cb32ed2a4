"""Request and response schemas for incidents and updates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from broadcaster.areas.schemas import AreaSpec
from broadcaster.delivery.eta import EtaOut
from broadcaster.domain import IncidentStatus, Input, Severity, UpdateKind, normalize_locale, validate_slug
from broadcaster.pagination import MAX_ID
from broadcaster.responses.schemas import QuestionIn, QuestionOut
from broadcaster.services.schemas import ServiceState

MAX_BODY = 10_000
MAX_SUMMARY = 320


class Link(Input):
    title: str = Field(..., min_length=1, max_length=200)
    url: AnyHttpUrl


class Translation(Input):
    body: str = Field(..., min_length=1, max_length=MAX_BODY)
    summary: str = Field("", max_length=MAX_SUMMARY)


class Audience(Input):
    """Who receives a broadcast, on top of the category's subscribers."""

    categories: list[str] | None = None
    tags: list[str] | None = None
    locales: list[str] | None = None

    @field_validator("locales")
    @classmethod
    def _locales(cls, value: list[str] | None) -> list[str] | None:
        return [normalize_locale(v) for v in value] if value is not None else None


def _validate_translations(value: dict[str, Translation]) -> dict[str, Translation]:
    out: dict[str, Translation] = {}
    for key, tr in value.items():
        try:
            out[normalize_locale(key)] = tr
        except ValueError as exc:
            raise ValueError(f"translation key: {exc}") from exc
    return out


def _validate_channels(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    from broadcaster.channels.registry import known_channel_names

    known = known_channel_names()
    for name in value:
        if name not in known:
            raise ValueError(f"unknown channel {name!r}; known: {', '.join(sorted(known))}")
    return list(dict.fromkeys(value))


def _validate_service_states(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Keys are service slugs (existence is checked against the services list when the update is saved)."""
    if value is not None:
        for slug in value:
            try:
                validate_slug(slug)
            except ValueError as exc:
                raise ValueError(f"service {slug!r}: {exc}") from exc
    return value


class UpdateIn(Input):
    """A new timeline entry. `kind` correction/cancel must name the published update it corrects."""

    body: str = Field(..., min_length=1, max_length=MAX_BODY)
    summary: str = Field("", max_length=MAX_SUMMARY, description="Short text for SMS, social and the banner.")
    locale: str = "en"
    translations: dict[str, Translation] = Field(default_factory=dict)
    links: list[Link] = Field(default_factory=list, max_length=10)
    kind: UpdateKind = UpdateKind.normal
    corrects: int | None = Field(
        None, ge=1, le=MAX_ID, validate_default=True, description="Id of the published update this corrects or cancels."
    )
    status: IncidentStatus | None = Field(None, description="Move the incident to this status when published.")
    channels: list[str] | None = Field(None, description="Override the routing map's channels for this update.")
    audience: Audience | None = None
    test: bool = Field(False, description="Test send: only the test group receives it, visibly marked.")
    area: AreaSpec | None = Field(
        None, description="Aim at the subscribers inside named areas, a GeoJSON polygon and/or a circle."
    )
    question: QuestionIn | None = Field(
        None, description='A question with 2-5 answers, e.g. "Are you safe?" (see docs/responses.md).'
    )
    service_states: dict[str, ServiceState] | None = Field(
        None, max_length=100, description="Service states to set when published, e.g. {'water': 'major_outage'}."
    )

    _locale = field_validator("locale")(normalize_locale)
    _translations = field_validator("translations")(_validate_translations)
    _channels = field_validator("channels")(_validate_channels)
    _service_states = field_validator("service_states")(_validate_service_states)

    @field_validator("corrects")
    @classmethod
    def _correction_target(cls, value: int | None, info: ValidationInfo) -> int | None:
        kind = info.data.get("kind")
        if kind is None:  # `kind` itself was invalid; that error is reported
            return value
        if kind is not UpdateKind.normal and value is None:
            raise ValueError(f"an update of kind {kind.value!r} must name the update it corrects in 'corrects'")
        if kind is UpdateKind.normal and value is not None:
            raise ValueError("'corrects' is only allowed with kind 'correction' or 'cancel'")
        return value


class UpdatePatch(Input):
    """Edit a draft."""

    body: str | None = Field(None, min_length=1, max_length=MAX_BODY)
    summary: str | None = Field(None, max_length=MAX_SUMMARY)
    locale: str | None = None
    translations: dict[str, Translation] | None = None
    links: list[Link] | None = Field(None, max_length=10)
    status: IncidentStatus | None = None
    channels: list[str] | None = None
    audience: Audience | None = None
    test: bool | None = None
    area: AreaSpec | None = Field(None, description="Set or replace the area; null removes it.")
    question: QuestionIn | None = Field(None, description="Set or replace the question; null removes it.")
    service_states: dict[str, ServiceState] | None = Field(None, max_length=100)

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str | None) -> str | None:
        return normalize_locale(value) if value is not None else None

    @field_validator("translations")
    @classmethod
    def _translations(cls, value: dict[str, Translation] | None) -> dict[str, Translation] | None:
        return _validate_translations(value) if value is not None else None

    _channels = field_validator("channels")(_validate_channels)
    _service_states = field_validator("service_states")(_validate_service_states)


class RejectionOut(BaseModel):
    """The last rejection of the update's approval request."""

    by: str = Field(description="Who rejected it (`user:<id>` or `key:<name>`).")
    at: datetime
    comment: str


class UpdateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    incident_id: int
    kind: str
    corrects_id: int | None
    state: str
    status: str | None
    body: str
    summary: str
    locale: str
    translations: dict[str, dict[str, str]]
    links: list[dict[str, str]]
    channels: list[str] | None
    audience: dict[str, Any] | None
    test: bool
    area: dict[str, Any] | None = None
    question: QuestionOut | None = None
    service_states: dict[str, str] | None = None
    created_by: str
    created_at: datetime
    published_at: datetime | None
    published_by: str | None
    approved_by: str | None
    rejection: RejectionOut | None = Field(
        None, description="The last rejection of an approval request (kept until the next one), or null."
    )


class IncidentIn(Input):
    title: str = Field(..., min_length=1, max_length=300)
    category: str = Field(..., description="Category slug from the routing map.")
    severity: Severity
    status: IncidentStatus = IncidentStatus.investigating
    affected_services: list[str] = Field(default_factory=list, max_length=100)
    sites: list[str] = Field(default_factory=list, description="Banner sites; empty means every site.")
    public: bool = True
    update: UpdateIn | None = Field(
        None,
        description="Optional first update, created as a draft in the same transaction: when it is invalid, "
        "neither is written.",
    )

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("title must not be blank")
        return value

    @field_validator("sites")
    @classmethod
    def _sites(cls, value: list[str]) -> list[str]:
        return [validate_slug(v) for v in value]


class IncidentPatch(Input):
    title: str | None = Field(None, min_length=1, max_length=300)
    category: str | None = None
    severity: Severity | None = None
    status: IncidentStatus | None = None
    affected_services: list[str] | None = Field(None, max_length=100)
    sites: list[str] | None = None
    public: bool | None = None

    @field_validator("sites")
    @classmethod
    def _sites(cls, value: list[str] | None) -> list[str] | None:
        return [validate_slug(v) for v in value] if value is not None else None


class FieldChange(BaseModel):
    """One line of a change request's diff."""

    field: str
    #: the value when the change was requested (what the approver sees now, while it is pending)
    before: Any
    #: the requested value
    after: Any


class ChangeRequestOut(BaseModel):
    """A requested change to a live incident's public fields (door `incident.edit`)."""

    id: int
    incident_id: int
    state: str = Field(..., description="pending, applied, rejected, superseded (a newer request) or voided.")
    changes: dict[str, Any] = Field(..., description="The requested value of each field that changes.")
    diff: list[FieldChange]
    base: dict[str, Any] = Field(..., description="The incident's public fields when the change was requested.")
    reason: str = Field(..., description="Why a second person must approve it.")
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    comment: str | None = Field(..., description="The rejection comment, or why it was superseded or voided.")
    etag: str | None = Field(
        None,
        description="While pending: the content ETag of this diff against the incident now (approve with it "
        "in If-Match).",
    )

    @classmethod
    def build(cls, row: Any, incident: Any) -> ChangeRequestOut:
        from broadcaster.publishing.changes import FIELDS, content_etag

        changes = dict(row.changes)
        return cls(
            id=row.id,
            incident_id=row.incident_id,
            state=row.state,
            changes=changes,
            diff=[FieldChange(field=n, before=row.base.get(n), after=changes[n]) for n in FIELDS if n in changes],
            base=dict(row.base),
            reason=row.reason,
            requested_by=row.requested_by,
            requested_at=row.requested_at,
            decided_by=row.decided_by,
            decided_at=row.decided_at,
            comment=row.comment,
            etag=content_etag(row, incident) if row.state == "pending" else None,
        )


class IncidentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    category: str
    severity: str
    status: str
    affected_services: list[str]
    sites: list[str]
    public: bool
    started_at: datetime
    resolved_at: datetime | None
    created_at: datetime
    updated_at: datetime
    updates: list[UpdateOut] | None = None
    change_requests: list[ChangeRequestOut] | None = Field(
        None, description="With the incident's updates: its pending change requests (waiting for a second person)."
    )

    @classmethod
    def build(cls, incident: Any, *, with_updates: bool = False) -> IncidentOut:
        return cls(
            id=incident.id,
            title=incident.title,
            category=incident.category.slug,
            severity=incident.severity,
            status=incident.status,
            affected_services=incident.affected_services,
            sites=incident.sites,
            public=incident.public,
            started_at=incident.started_at,
            resolved_at=incident.resolved_at,
            created_at=incident.created_at,
            updated_at=incident.updated_at,
            updates=[UpdateOut.model_validate(u) for u in incident.updates] if with_updates else None,
            change_requests=(
                [ChangeRequestOut.build(r, incident) for r in incident.change_requests if r.state == "pending"]
                if with_updates
                else None
            ),
        )


class PublishOut(BaseModel):
    update: UpdateOut
    broadcast_id: int | None = None
    approval_required: bool = False
    eta: list[EtaOut] = Field(
        default_factory=list,
        description="Per channel: how long reaching everyone takes at the configured rates (audience sizes are "
        "the database planner's estimate on PostgreSQL; GET /v1/broadcasts/{id} has exact figures).",
    )


class AlertIn(Input):
    """The ops-script shortcut: category + message; the routing map decides the channels."""

    category: str
    message: str = Field(..., min_length=1, max_length=MAX_BODY)
    title: str | None = Field(None, max_length=300)
    summary: str = Field("", max_length=MAX_SUMMARY)
    severity: Severity = Severity.major
    locale: str = "en"
    translations: dict[str, Translation] = Field(default_factory=dict)
    links: list[Link] = Field(default_factory=list, max_length=10)
    affected_services: list[str] = Field(default_factory=list, max_length=100)
    channels: list[str] | None = None
    test: bool = False

    _locale = field_validator("locale")(normalize_locale)
    _translations = field_validator("translations")(_validate_translations)
    _channels = field_validator("channels")(_validate_channels)

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("message must not be blank")
        return value


class AlertOut(BaseModel):
    incident: IncidentOut
    update: UpdateOut
    broadcast_id: int | None = None
    channels: list[str]
    #: the alert reaches APPROVAL_SEVERITY or the audience threshold: it waits for a second person (answer 202)
    approval_required: bool = False


class DraftPreviewIn(BaseModel):
    """An unsaved update: for an existing incident, or for a category and severity (a new incident)."""

    model_config = ConfigDict(extra="forbid")

    incident_id: int | None = Field(None, ge=1, le=MAX_ID)
    category: str | None = None
    severity: Severity | None = None
    title: str = Field("Draft incident", min_length=1, max_length=300)
    update: UpdateIn

    @model_validator(mode="after")
    def _target(self) -> DraftPreviewIn:
        if self.incident_id is None and (self.category is None or self.severity is None):
            raise ValueError("give incident_id, or category and severity")
        return self
