"""The server-rendered status page: current incidents with their timeline, history, routing map."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from broadcaster.domain import IncidentStatus, UpdateKind
from broadcaster.models import Incident, Update
from broadcaster.public import area_outline, queries
from broadcaster.public.snapshot import routes
from broadcaster.public.statuspage import components_view
from broadcaster.public.templating import env
from broadcaster.settings import get_settings
from broadcaster.subscribers import memberships


@dataclass
class TimelineEntry:
    id: int
    kind: str
    status: str | None
    summary: str
    body: str
    locale: str
    published_at: datetime
    corrects_id: int | None
    corrected_by: list[tuple[int, str]]


def timeline(incident: Incident) -> list[TimelineEntry]:
    """Published (non-test) updates, newest first; corrections and retractions cross-linked."""
    rows = queries.published(incident)
    by_target: dict[int, list[tuple[int, str]]] = {}
    for u in rows:
        if u.corrects_id is not None:
            by_target.setdefault(u.corrects_id, []).append((u.id, u.kind))
    return [
        TimelineEntry(
            id=u.id,
            kind=u.kind,
            status=u.status,
            summary=u.summary,
            body=u.body,
            locale=u.locale,
            published_at=_when(u),
            corrects_id=u.corrects_id,
            corrected_by=by_target.get(u.id, []),
        )
        for u in reversed(rows)
    ]


def _when(update: Update) -> datetime:
    return update.published_at or update.created_at


def _incident_view(session: Session, incident: Incident) -> dict[str, Any]:
    entries = timeline(incident)
    area = area_outline.incident_area(session, incident, queries.published(incident))
    return {
        "id": incident.id,
        "title": incident.title,
        "severity": incident.severity,
        "status": incident.status,
        "retracted": bool(entries) and entries[0].kind == UpdateKind.cancel.value,
        "resolved": incident.status == IncidentStatus.resolved.value,
        "category": incident.category.name,
        "routes": routes(incident.category),
        "started_at": incident.started_at,
        "resolved_at": incident.resolved_at,
        "updated_at": entries[0].published_at if entries else incident.updated_at,
        "timeline": entries,
        #: the latest area an update targeted: its name and an inline SVG outline (see area_outline)
        "area": area_outline.view(area),
    }


def _common(session: Session) -> dict[str, Any]:
    settings = get_settings()
    return {
        "org_name": settings.org_name,
        "locales": settings.supported_locales,
        "default_locale": settings.default_locale,
        "categories": [
            {"slug": c.slug, "name": c.name, "description": c.description, "routes": routes(c)}
            for c in queries.categories(session)
        ],
    }


def status_page(session: Session) -> bytes:
    ctx = _common(session)
    #: the subscribe form's "services to follow" (public services; none: the fieldset is left out)
    ctx["follow_services"] = [{"slug": s.slug, "name": s.name} for s in memberships.public_services(session)]
    from broadcaster.maintenance.service import maintenance_incident_ids, public_windows

    #: planned and running maintenance has its own section (a running window's banner still shows)
    ctx["maintenance"] = public_windows(session)
    in_maintenance = maintenance_incident_ids(session)
    ctx["incidents"] = [
        _incident_view(session, i) for i in queries.active_incidents(session) if i.id not in in_maintenance
    ]
    ctx["recent"] = [_incident_view(session, i) for i in queries.past_incidents(session, limit=5)]
    ctx["component_groups"] = components_view(session)
    return env().get_template("status.html").render(**ctx).encode()


def history_page(session: Session) -> bytes:
    ctx = _common(session)
    ctx["incidents"] = [_incident_view(session, i) for i in queries.past_incidents(session, limit=100)]
    return env().get_template("history.html").render(**ctx).encode()


def incident_page(session: Session, incident_id: int) -> bytes | None:
    incident = queries.public_incident(session, incident_id)
    if incident is None:
        return None
    ctx = _common(session)
    ctx["incident"] = _incident_view(session, incident)
    return env().get_template("incident.html").render(**ctx).encode()
