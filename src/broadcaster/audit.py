"""Audit trail: every state change records who, what and when."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from broadcaster.models import AuditEntry


def record(session: Session, actor: str, action: str, target_type: str, target_id: object, **detail: Any) -> None:
    """Add an audit entry to the caller's transaction."""
    session.add(
        AuditEntry(actor=actor, action=action, target_type=target_type, target_id=str(target_id), detail=detail)
    )
