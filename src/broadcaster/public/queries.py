"""Database reads behind the public surfaces (only public incidents and published updates)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from broadcaster.domain import IncidentStatus, UpdateKind, UpdateState
from broadcaster.models import Category, Incident, Update
from broadcaster.models.public import PublicState


def current_version(session: Session) -> int:
    """The `public_state` version (0 before the first change)."""
    return int(session.scalar(select(PublicState.version).where(PublicState.id == 1)) or 0)


def published(incident: Incident, *, include_tests: bool = False) -> list[Update]:
    """The incident's published updates in timeline order (test sends left out unless asked)."""
    rows = [u for u in incident.updates if u.state == UpdateState.published.value and (include_tests or not u.test)]
    return sorted(rows, key=lambda u: (u.published_at or u.created_at, u.id))


def is_retracted(incident: Incident) -> bool:
    """The latest published update is a cancel: the incident was retracted."""
    rows = published(incident)
    return bool(rows) and rows[-1].kind == UpdateKind.cancel.value


def _public_incidents(session: Session) -> list[Incident]:
    stmt = (
        select(Incident)
        .where(Incident.public.is_(True))
        .options(selectinload(Incident.updates))
        .order_by(Incident.id.desc())
    )
    return [i for i in session.scalars(stmt) if published(i)]


def active_incidents(session: Session) -> list[Incident]:
    """Public, unresolved, not retracted incidents with at least one published (non-test) update.

    The incident of a maintenance window counts only while the window runs (its banner shows then, not when
    the window is merely planned)."""
    from broadcaster.models.maintenance import MaintenanceWindow

    not_running = select(MaintenanceWindow.incident_id).where(
        MaintenanceWindow.incident_id.is_not(None), MaintenanceWindow.state != "in_progress"
    )
    stmt = (
        select(Incident)
        .where(Incident.public.is_(True), Incident.status != IncidentStatus.resolved.value)
        .where(Incident.id.not_in(not_running))
        .options(selectinload(Incident.updates))
        .order_by(Incident.id.desc())
    )
    return [i for i in session.scalars(stmt) if published(i) and not is_retracted(i)]


def past_incidents(session: Session, limit: int = 50) -> list[Incident]:
    """Resolved or retracted public incidents, most recent first."""
    rows = [i for i in _public_incidents(session) if i.status == IncidentStatus.resolved.value or is_retracted(i)]
    return rows[:limit]


def public_incident(session: Session, incident_id: int) -> Incident | None:
    incident = session.get(Incident, incident_id, options=[selectinload(Incident.updates)])
    if incident is None or not incident.public or not published(incident):
        return None
    return incident


def public_updates(session: Session, *, include_tests: bool = False, limit: int = 50) -> list[Update]:
    """Latest published updates of public incidents, newest first (feeds), each with its incident and the
    incident's updates (a feed entry shows the corrections and retractions of its update)."""
    stmt = (
        select(Update)
        .join(Incident, Update.incident_id == Incident.id)
        .where(Update.state == UpdateState.published.value, Incident.public.is_(True))
        .options(selectinload(Update.incident).selectinload(Incident.updates))
        .order_by(Update.published_at.desc(), Update.id.desc())
        .limit(limit)
    )
    if not include_tests:
        stmt = stmt.where(Update.test.is_(False))
    return list(session.scalars(stmt))


def categories(session: Session) -> list[Category]:
    """The routing map in display order."""
    return list(session.scalars(select(Category).order_by(Category.position, Category.name)))
