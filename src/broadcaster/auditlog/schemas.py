"""Response schemas of the audit log API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AuditOut(BaseModel):
    """One audit entry: who did what to which target, when, and the target before and after."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str = Field(description="`user:<id>` for a person (console or their own key), `key:<name>`, `cli:<user>`.")
    action: str = Field(description="What happened, e.g. `update.publish`, `category.update`, `key.revoke`.")
    target_type: str = Field(description="e.g. `incident`, `update`, `category`, `subscriber`, `api_key`.")
    target_id: str
    detail: dict[str, Any] = Field(description="Extra facts about the action (fields changed, comment, ...).")
    before: dict[str, Any] | None = Field(
        None, description="The target's state before the change (secrets masked); null when not recorded or new."
    )
    after: dict[str, Any] | None = Field(
        None, description="The target's state after the change (secrets masked); null when not recorded or gone."
    )
