"""Request and response schemas for services (components)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from broadcaster.domain import Input, validate_slug
from broadcaster.models.services import SERVICE_STATES


class ServiceState(StrEnum):
    """A component state, best first (the order of SERVICE_STATES)."""

    operational = "operational"
    maintenance = "maintenance"
    degraded = "degraded"
    partial_outage = "partial_outage"
    major_outage = "major_outage"


assert tuple(ServiceState) == SERVICE_STATES


def severity_rank(state: str | None) -> int:
    """How bad a state is (-1 for "no data"), for a day's worst state."""
    return SERVICE_STATES.index(state) if state in SERVICE_STATES else -1


class ServiceIn(Input):
    slug: str = Field(..., max_length=64, examples=["water-supply"])
    name: str = Field(..., min_length=1, max_length=200)
    description: str = Field("", max_length=2000)
    group: str = Field("", max_length=100, description="Heading the service is listed under on the status page.")
    position: int = Field(0, ge=0, le=1_000_000, description="Sort order within its group (smallest first).")
    public: bool = Field(True, description="Shown on the public status page and its JSON.")
    state: ServiceState = ServiceState.operational

    _slug = field_validator("slug")(validate_slug)


class ServicePatch(Input):
    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    group: str | None = Field(None, max_length=100)
    position: int | None = Field(None, ge=0, le=1_000_000)
    public: bool | None = None


class StateIn(Input):
    """A manual state change; the reason is kept in the audit log."""

    state: ServiceState
    reason: str = Field(..., min_length=1, max_length=2000, description="Why the state changes (audited).")

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("reason must not be blank")
        return value.strip()


class ServiceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    slug: str
    name: str
    description: str
    group: str
    position: int
    state: str
    public: bool
    state_changed_at: datetime
    created_at: datetime
    updated_at: datetime


class StateChangeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    state: str
    previous: str | None
    at: datetime
    incident_id: int | None
    update_id: int | None
    maintenance_id: int | None
    actor: str


class HistoryDay(BaseModel):
    date: date
    state: str | None = Field(description="The worst state of the UTC day, or null before the service existed.")


class HistoryOut(BaseModel):
    slug: str
    state: str
    days: list[HistoryDay] = Field(description="Oldest first, ending today (UTC).")
    changes: list[StateChangeOut] = Field(description="The state changes within the window, oldest first.")
