"""Reading the audit log: filters and keyset pages (newest first). Services take a session and never commit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from broadcaster.models import AuditEntry


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def query(filters: AuditFilter) -> Select[AuditEntry]:
    """The entries matching `filters`; `action` ending in `.*` matches a prefix (`update.*`)."""
    stmt = select(AuditEntry)
    if filters.actor is not None:
        stmt = stmt.where(AuditEntry.actor == filters.actor)
    if filters.action is not None:
        if filters.action.endswith(".*"):
            prefix = filters.action[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(AuditEntry.action.like(prefix + "%", escape="\\"))
        else:
            stmt = stmt.where(AuditEntry.action == filters.action)
    if filters.target_type is not None:
        stmt = stmt.where(AuditEntry.target_type == filters.target_type)
    if filters.target_id is not None:
        stmt = stmt.where(AuditEntry.target_id == filters.target_id)
    if filters.since is not None:
        stmt = stmt.where(AuditEntry.at >= filters.since)
    if filters.until is not None:
        stmt = stmt.where(AuditEntry.at < filters.until)
    return stmt


def list_entries(session: Session, filters: AuditFilter, *, limit: int, cursor: int | None) -> list[AuditEntry]:
    """Up to `limit + 1` entries older than `cursor` (the caller sees the extra one as "there is more")."""
    stmt = query(filters).order_by(AuditEntry.id.desc()).limit(limit + 1)
    if cursor is not None:
        stmt = stmt.where(AuditEntry.id < cursor)
    return list(session.scalars(stmt))
