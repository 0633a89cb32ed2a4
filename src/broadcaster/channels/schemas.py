"""Response schemas of the channels API (adapters, checks)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


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
