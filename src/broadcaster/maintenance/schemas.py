"""Request and response schemas of `/v1/maintenance`."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from broadcaster.domain import Input, validate_slug
from broadcaster.publishing.schemas import PreviewOut

#: a reminder can be asked for at most this many hours (30 days) before the start
MAX_HOURS_BEFORE = 720
#: reminders per window
MAX_REMINDERS = 5
MAX_MESSAGE = 5_000

#: a service slug (an error names its index: `services.1`)
Slug = Annotated[str, AfterValidator(validate_slug)]


class WindowState(StrEnum):
    scheduled = "scheduled"
    in_progress = "in_progress"
    completed = "completed"
    cancelled = "cancelled"


def _utc(value: datetime | None) -> datetime | None:
    """An instant in UTC; a naive one is taken as UTC."""
    if value is None:
        return None
    try:
        return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    except OverflowError as exc:
        raise ValueError("is out of range once converted to UTC") from exc


class NotifyIn(Input):
    """When subscribers are told. Every window is also shown on the status page, feeds and (while it runs) the
    banner whatever these say; they decide which moments also go out on the category's channels."""

    at_creation: bool = Field(True, description="Tell subscribers when the window is planned.")
    hours_before: list[int] = Field(
        default_factory=list,
        max_length=MAX_REMINDERS,
        description=f"Reminders, each N whole hours before the start (1-{MAX_HOURS_BEFORE}, distinct).",
    )
    at_start: bool = Field(True, description="Tell subscribers when it starts.")
    at_end: bool = Field(True, description="Tell subscribers when it ends.")

    @field_validator("hours_before")
    @classmethod
    def _hours(cls, value: list[int]) -> list[int]:
        for hours in value:
            if not 1 <= hours <= MAX_HOURS_BEFORE:
                raise ValueError(f"each entry must be a whole number of hours from 1 to {MAX_HOURS_BEFORE}")
        if len(set(value)) != len(value):
            raise ValueError("entries must be distinct")
        return sorted(value, reverse=True)


class MaintenanceIn(Input):
    """Plan a maintenance window."""

    title: str = Field(..., min_length=1, max_length=200)
    message: str = Field("", max_length=MAX_MESSAGE, description="What happens and what people should do.")
    services: list[Slug] = Field(..., min_length=1, max_length=100, description="Slugs of the affected services.")
    category: str = Field(
        ...,
        description="Routing-map category: its `info` channels send the notices; its `reach` rule decides "
        "whether followers of the services, the category's subscribers, or both are told.",
    )
    starts_at: datetime = Field(..., description="Start (ISO 8601; a time without offset is UTC).")
    ends_at: datetime = Field(..., description="End, after the start.")
    notify: NotifyIn = Field(default_factory=NotifyIn)

    _starts = field_validator("starts_at")(_utc)
    _ends = field_validator("ends_at")(_utc)

    @field_validator("services")
    @classmethod
    def _services(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class MaintenancePatch(Input):
    """Move a window (new start and/or end), or edit its title/message. Future notices are planned again, and
    subscribers who were already told get a "moved" notice."""

    title: str | None = Field(None, min_length=1, max_length=200)
    message: str | None = Field(None, max_length=MAX_MESSAGE)
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    _starts = field_validator("starts_at")(_utc)
    _ends = field_validator("ends_at")(_utc)


class NoticeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    revision: int
    kind: str
    minutes_before: int
    notify: bool = Field(description="False: shown on the public surfaces only, sent on no channel.")
    due_at: datetime
    state: str = Field(description="pending, sent, skipped (stale) or superseded (the window moved or ended).")
    reason: str
    waiting_reason: str = Field(
        "", description='Why a pending notice waits: the window\'s schedule approval does not cover it ("" if not).'
    )
    sent_at: datetime | None
    update_id: int | None
    attempts: int
    last_error: str


class ScheduleApprovalOut(BaseModel):
    """The approval of a window's schedule of notices (docs/maintenance.md, "Approval")."""

    state: Literal["pending", "approved", "rejected", "undecided"] = Field(
        description="pending: its notices wait for a second person; approved: by `decided_by`, or at once by the "
        "gate when `decided_by` is null; rejected; undecided: planned before schedule approvals (the runner has "
        "the gate decide before it sends anything)."
    )
    reason: str = Field(description="The gate's reason: why a second person is needed, or why it was approved at once.")
    etag: str | None = Field(description="The schedule ETag the request or approval is for.")
    requested_by: str | None = Field(description="Whose change this decision is about (they cannot approve it).")
    requested_at: datetime | None
    decided_by: str | None = Field(description="Who approved or rejected (null: the gate approved at once).")
    decided_at: datetime | None
    comment: str = Field(description="A rejection's comment.")
    voided: str = Field(description='Why the last approval stopped covering the unsent notices ("" if never).')


class MaintenanceOut(BaseModel):
    id: int
    title: str
    message: str
    services: list[str]
    category: str
    starts_at: datetime
    ends_at: datetime
    state: WindowState
    notify: dict[str, Any]
    revision: int
    incident_id: int | None
    started_at: datetime | None
    ended_at: datetime | None
    cancelled_at: datetime | None
    created_by: str
    created_at: datetime
    approval: ScheduleApprovalOut
    notices: list[NoticeOut] = Field(default_factory=list)


class NoticePreviewOut(BaseModel):
    """One notice not yet sent, exactly as it would go out at its due time."""

    notice_id: int
    kind: str
    due_at: datetime
    notify: bool = Field(description="False: shown on the public surfaces only, sent on no channel.")
    high_impact: str | None = Field(
        description="Why this notice alone would need a second person (APPROVAL_SEVERITY, the audience "
        "threshold), or null."
    )
    preview: PreviewOut = Field(description="Every channel's rendered text per locale, recipients and warnings.")


class SchedulePreviewOut(BaseModel):
    """What approving a window's schedule approves: every notice not yet sent, with its text and channels."""

    maintenance_id: int
    etag: str = Field(
        description="The schedule ETag (also the ETag header): a hash over every unsent notice's rendered text, "
        "channels, audience and time, the window and its incident's public fields. Approve with "
        "`If-Match: <etag>`."
    )
    incident: dict[str, Any] | None = Field(description="The public fields of the window's incident.")
    approval: ScheduleApprovalOut
    notices: list[NoticePreviewOut]
