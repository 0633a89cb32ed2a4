"""Request and response schemas of the channels API (adapters, checks, previews)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from broadcaster.delivery.eta import EtaOut
from broadcaster.domain import Severity
from broadcaster.incidents.schemas import UpdateIn
from broadcaster.pagination import MAX_ID


class AdapterOut(BaseModel):
    name: str
    kind: str
    configured: bool
    priority: int
    limits: dict[str, Any]
    config: dict[str, Any] = Field(default_factory=dict, description="Current configuration, secrets masked.")


class CheckOut(BaseModel):
    name: str
    ok: bool
    detail: str


class RenderOut(BaseModel):
    """Exactly what a channel would send for one locale, and how it was made to fit."""

    locale: str
    text: str
    subject: str | None = None
    html: str | None = None
    encoding: str | None = None
    segments: int | None = None
    length: int
    max_length: int | None = None
    used_summary: bool = False
    truncated: bool = False
    actions: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


class ChannelPreview(RenderOut):
    channel: str = Field(description="The name the routing map or the update used (a kind or an adapter).")
    adapter: str | None = Field(description="The adapter that would send (the primary one of its kind).")
    kind: str
    configured: bool
    failover: list[str] = Field(default_factory=list)
    recipients: int = 0
    eta: EtaOut | None = Field(None, description="Time to reach every recipient at the configured rate.")
    translations: dict[str, RenderOut] = Field(default_factory=dict, description="The same, per translation.")


class PreviewOut(BaseModel):
    update_id: int | None
    incident_id: int | None
    category: str
    severity: str
    test: bool
    channels: list[ChannelPreview]
    warnings: list[str] = Field(default_factory=list)
    etag: str | None = Field(
        None,
        description="Content ETag of a stored update (also the ETag header): approve it with `If-Match: <etag>`. "
        "None for an unsaved draft.",
    )


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
