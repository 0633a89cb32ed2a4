"""Service (component) operations and state changes. Services take a session and never commit.

Every state change goes through `set_state`: it records a `ServiceStateChange` (with the incident, update or
maintenance window that caused it) and bumps the public version so the status page and its JSON refresh.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster import clock
from broadcaster.crud import get_by_slug
from broadcaster.domain import IncidentStatus, UpdateKind
from broadcaster.errors import Conflict, Unprocessable
from broadcaster.invalidation import content_changed
from broadcaster.models import Incident, Update, utcnow
from broadcaster.models.services import SERVICE_STATES, Service, ServiceStateChange
from broadcaster.publishing import approval
from broadcaster.services.schemas import ServiceIn, ServicePatch, severity_rank

#: the longest history window `history` serves
MAX_HISTORY_DAYS = 366


def list_services(session: Session, *, public_only: bool = False) -> list[Service]:
    """Services by position then slug (the status page groups them in this order)."""
    stmt = select(Service).order_by(Service.position, Service.slug)
    if public_only:
        stmt = stmt.where(Service.public.is_(True))
    return list(session.scalars(stmt))


def get_service(session: Session, slug: str, *, field: str = "slug") -> Service:
    """The service `slug`: 404 when it is the addressed resource (`field="slug"`), else 422 naming `field`."""
    return get_by_slug(session, Service, slug, noun="service", field=field)


def check_slugs(session: Session, slugs: Iterable[str], *, field: str, always: bool = False) -> None:
    """422 naming `field` when a slug names no service.

    Incidents may name arbitrary affected services until the first service is defined (`always=False`):
    from then on they must be known slugs. An update's `service_states` always need known services.
    """
    wanted = list(dict.fromkeys(slugs))
    if not wanted:
        return
    known = set(session.scalars(select(Service.slug).where(Service.slug.in_(wanted))))
    if len(known) == len(wanted):
        return
    if not always and not known and session.scalar(select(Service.id).limit(1)) is None:
        return
    unknown = [s for s in wanted if s not in known]
    raise Unprocessable(
        f"Unknown service(s): {', '.join(repr(s) for s in unknown)}; define them with POST /v1/services first.",
        field=field,
        code="unknown_service",
    )


def _affecting(slug: str) -> Callable[[Update], bool]:
    """A test: whether an update's incident names the service `slug` among its affected services."""
    return lambda update: slug in (update.incident.affected_services or [])


def create_service(session: Session, data: ServiceIn, actor: str) -> Service:
    """Create a service; pending updates of incidents that already named it (their audience grows by its
    followers) return to draft."""
    if session.scalar(select(Service.id).where(Service.slug == data.slug)) is not None:
        raise Conflict(f"Service {data.slug!r} already exists.", field="slug", code="duplicate")
    watched = approval.watch(session, _affecting(data.slug))
    now = utcnow()
    svc = Service(
        slug=data.slug,
        name=data.name,
        description=data.description,
        group=data.group,
        position=data.position,
        public=data.public,
        state=data.state.value,
        state_changed_at=now,
        created_at=now,
    )
    session.add(svc)
    session.flush()
    session.add(ServiceStateChange(service_id=svc.id, state=svc.state, previous=None, at=now, actor=actor))
    content_changed(session)
    session.flush()
    watched.void(session, actor, cause=f"service {data.slug} created")
    return svc


def update_service(session: Session, slug: str, patch: ServicePatch) -> Service:
    svc = get_service(session, slug)
    for key, value in patch.model_dump(exclude_unset=True).items():
        if value is not None:
            setattr(svc, key, value)
    svc.updated_at = utcnow()
    content_changed(session)
    session.flush()
    return svc


def _open_incidents(session: Session, *, excluding: int | None = None) -> list[Incident]:
    stmt = select(Incident).where(Incident.status != IncidentStatus.resolved.value)
    if excluding is not None:
        stmt = stmt.where(Incident.id != excluding)
    return list(session.scalars(stmt))


def delete_service(session: Session, slug: str, actor: str) -> None:
    """Delete a service and its history; refused while an open incident affects it. Pending updates of incidents
    naming it (their audience loses its followers) return to draft."""
    svc = get_service(session, slug)
    using = [i.id for i in _open_incidents(session) if slug in (i.affected_services or [])]
    if using:
        raise Conflict(
            f"Service {slug!r} is affected by open incident(s) {', '.join(map(str, using))}; resolve them first.",
            field="slug",
        )
    watched = approval.watch(session, _affecting(slug))
    session.delete(svc)
    content_changed(session)
    session.flush()
    watched.void(session, actor, cause=f"service {slug} deleted")


def set_state(
    session: Session,
    service: Service | str,
    state: str,
    *,
    actor: str,
    incident_id: int | None = None,
    update_id: int | None = None,
    maintenance_id: int | None = None,
) -> ServiceStateChange | None:
    """Set a service's state (a `Service` or its slug) and record why; None when it already had that state."""
    if state not in SERVICE_STATES:
        raise Unprocessable(f"Unknown state {state!r}; one of {', '.join(SERVICE_STATES)}.", field="state")
    svc = get_service(session, service, field="service") if isinstance(service, str) else service
    if svc.state == state:
        return None
    now = utcnow()
    change = ServiceStateChange(
        service_id=svc.id,
        state=state,
        previous=svc.state,
        at=now,
        incident_id=incident_id,
        update_id=update_id,
        maintenance_id=maintenance_id,
        actor=actor[:120],
    )
    svc.state = state
    svc.state_changed_at = now
    session.add(change)
    content_changed(session)
    session.flush()
    return change


def _by_slug(session: Session, slugs: Iterable[str]) -> dict[str, Service]:
    """The services named in `slugs` that exist, in the order given."""
    wanted = list(dict.fromkeys(slugs))
    if not wanted:
        return {}
    found = {s.slug: s for s in session.scalars(select(Service).where(Service.slug.in_(wanted)))}
    return {slug: found[slug] for slug in wanted if slug in found}


def apply_published(session: Session, update: Update, incident: Incident, actor: str) -> list[ServiceStateChange]:
    """A published update changes the states it names; resolving (or retracting) returns the rest of the
    incident's affected services to operational (unless another open incident affects them, or they are in
    maintenance).

    Test sends change nothing; services deleted since the update was written are skipped.
    """
    if update.test:
        return []
    states: Mapping[str, str] = update.service_states or {}
    changes: list[ServiceStateChange] = []
    for slug, svc in _by_slug(session, states).items():
        change = set_state(session, svc, states[slug], actor=actor, incident_id=incident.id, update_id=update.id)
        if change is not None:
            changes.append(change)
    if incident.status == IncidentStatus.resolved.value or update.kind == UpdateKind.cancel.value:
        # resolved, or retracted (a cancel update: the incident was a mistake)
        changes += restore_after_resolution(session, incident, actor, update_id=update.id, skip=set(states))
    return changes


def restore_after_resolution(
    session: Session, incident: Incident, actor: str, *, update_id: int | None = None, skip: set[str] | None = None
) -> list[ServiceStateChange]:
    """Back to operational: the resolved incident's affected services that no other open incident affects."""
    slugs = [s for s in (incident.affected_services or []) if s not in (skip or set())]
    if not slugs:
        return []
    still = {s for i in _open_incidents(session, excluding=incident.id) for s in (i.affected_services or [])}
    changes: list[ServiceStateChange] = []
    for slug, svc in _by_slug(session, slugs).items():
        if slug in still or svc.state == "maintenance":
            continue
        change = set_state(session, svc, "operational", actor=actor, incident_id=incident.id, update_id=update_id)
        if change is not None:
            changes.append(change)
    return changes


# --- history -----------------------------------------------------------------------------------------------


def today() -> date:
    """Today in UTC, by the service's clock (tests move it)."""
    return clock.now().astimezone(UTC).date()


def window_start(days: int, end: date | None = None) -> datetime:
    """The first instant of a `days`-day window ending with day `end` (default today)."""
    return datetime.combine((end or today()) - timedelta(days=days - 1), time.min, UTC)


def changes_since(session: Session, service_ids: list[int], since: datetime) -> dict[int, list[ServiceStateChange]]:
    """Each service's state changes at or after `since`, oldest first."""
    out: dict[int, list[ServiceStateChange]] = {i: [] for i in service_ids}
    if not service_ids:
        return out
    stmt = (
        select(ServiceStateChange)
        .where(ServiceStateChange.service_id.in_(service_ids), ServiceStateChange.at >= since)
        .order_by(ServiceStateChange.service_id, ServiceStateChange.at, ServiceStateChange.id)
    )
    for row in session.scalars(stmt):
        out[row.service_id].append(row)
    return out


def daily_worst(
    service: Service, changes: list[ServiceStateChange], *, days: int, end: date | None = None
) -> list[tuple[date, str | None]]:
    """Per UTC day (oldest first, ending with `end`): the worst state the service was in that day.

    `changes` are the service's changes within the window, oldest first. The state at the window's start is
    the first change's `previous` (or, with no change in the window, the current state). Days before the
    service existed (its creation record, or `created_at`) have no data (None).
    """
    end = end or today()
    first_day = end - timedelta(days=days - 1)
    if changes and changes[0].previous is None:
        existed_from = changes[0].at
    else:
        existed_from = min([service.created_at, *(c.at for c in changes[:1])])
    state: str = (changes[0].previous or changes[0].state) if changes else service.state
    out: list[tuple[date, str | None]] = []
    i = 0
    for n in range(days):
        day = first_day + timedelta(days=n)
        day_start = datetime.combine(day, time.min, UTC)
        day_end = day_start + timedelta(days=1)
        if day_end <= existed_from:
            out.append((day, None))
            continue
        while i < len(changes) and changes[i].at <= day_start:  # a change at midnight belongs to this day only
            state = changes[i].state
            i += 1
        worst = state
        while i < len(changes) and changes[i].at < day_end:
            state = changes[i].state
            if severity_rank(state) > severity_rank(worst):
                worst = state
            i += 1
        out.append((day, worst))
    return out


def history(
    session: Session, service: Service, *, days: int = 90, end: date | None = None
) -> tuple[list[tuple[date, str | None]], list[ServiceStateChange]]:
    """The per-day worst state of one service over `days` days, and the changes within the window."""
    end = end or today()
    changes = changes_since(session, [service.id], window_start(days, end))[service.id]
    return daily_worst(service, changes, days=days, end=end), changes
