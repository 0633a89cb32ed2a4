"""What a preview shows: per channel and locale, the exact text and how it was made to fit."""

from __future__ import annotations

from pydantic import BaseModel, Field

from broadcaster.delivery.eta import EtaOut


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
