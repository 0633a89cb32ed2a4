"""What a preview shows: per channel and locale, the exact text and how it was made to fit, and what else an
approval binds (`Binding`: the audience, the areas, the question and its escalation)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from broadcaster.delivery.eta import EtaOut
from broadcaster.domain import Input


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


class EscalationStepOut(BaseModel):
    after: str = Field(description="The delay after the previous step (the first: after publication), e.g. `10 min`.")
    channel: str = Field(description="The channel of the re-send, or `secondary` (the person's other address).")


class SummaryGroupOut(BaseModel):
    """Who gets the threshold summary (the names and contact details of the people who have not answered)."""

    emails: list[str] = Field(default_factory=list)
    phones: list[str] = Field(default_factory=list)
    tag: str | None = Field(None, description="Subscribers carrying this tag when the summary is sent (bound by name).")
    tag_members: int | None = Field(
        None, description="How many subscribers carry the tag now (shown, not bound: people joining void nothing)."
    )


class ThresholdOut(BaseModel):
    percent: float
    after: str
    group: SummaryGroupOut


class EscalationOut(BaseModel):
    """The escalation that runs for the question once the update is published."""

    source: Literal["question", "category", "published"] = Field(
        description="The question's own rules, its category's in the routing map (taken at publication), or the "
        "snapshot taken when the update was published (what runs)."
    )
    steps: list[EscalationStepOut] = Field(default_factory=list)
    threshold: ThresholdOut | None = None
    respect_quiet_hours: bool = True
    rules: dict[str, Any] = Field(description="The rules as stored (docs/escalation.md).")


class QuestionBinding(BaseModel):
    text: str
    options: list[str] = Field(description="`key = label` per option.")
    escalation: EscalationOut | None = Field(None, description="None: nobody is re-asked and no summary is sent.")


class AreaBinding(BaseModel):
    slug: str | None = Field(description="The named area; None for the update's own polygon or circle.")
    name: str
    geometry_version: str | None = Field(
        description="A hash of the geometry the approval covers (any change to it voids the approval); None when "
        "the named area no longer exists."
    )


class Binding(BaseModel):
    """What an approval binds besides the rendered text: who the update reaches and what its question sets off.
    All of it is in the content ETag; a change to any of it returns a pending update to draft."""

    categories: list[str] = Field(description="The categories whose subscribers it reaches.")
    tags: list[str] = Field(default_factory=list, description="Only subscribers carrying one of these tags.")
    locales: list[str] = Field(default_factory=list, description="Only subscribers with one of these languages.")
    test_group_only: bool = False
    reach: str = Field(description="The category's reach (routing map): category, services or either.")
    services: list[str] = Field(
        default_factory=list, description="The incident's affected services that exist (their followers are reached)."
    )
    areas: list[AreaBinding] = Field(default_factory=list, description="Only subscribers inside these areas.")
    question: QuestionBinding | None = None

    def bound(self) -> dict[str, Any]:
        """Everything the content ETag hashes (what is only shown, like a tag's member count, left out)."""
        data = self.model_dump(mode="json")
        threshold = ((data.get("question") or {}).get("escalation") or {}).get("threshold")
        if threshold:
            threshold["group"].pop("tag_members", None)
        return data


class PreviewOut(BaseModel):
    update_id: int | None
    incident_id: int | None
    category: str
    severity: str
    test: bool
    channels: list[ChannelPreview]
    warnings: list[str] = Field(default_factory=list)
    binding: Binding | None = Field(
        None, description="What approving also binds: the audience, services, areas, the question and its escalation."
    )
    etag: str | None = Field(
        None,
        description="Content ETag of a stored update (also the ETag header): approve it with `If-Match: <etag>`. "
        "None for an unsaved draft.",
    )


class RejectIn(Input):
    """Turn a request down, saying why (a pending update, a change request, a window's schedule, a routing-map
    version): the requester sees the comment on what they asked for."""

    comment: str = Field(..., min_length=1, max_length=2000, description="Why it is rejected (1-2000 characters).")

    @field_validator("comment")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("comment must not be blank")
        return value.strip()
