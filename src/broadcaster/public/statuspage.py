"""The status page's services (components with a 90-day bar) and the Statuspage-style JSON (components, summary
and scheduled maintenances).

`components.json` and `summary.json` are shaped like Atlassian Statuspage's `/api/v2/components.json` and
`/api/v2/summary.json` so status-page consumers can read them (docs/services.md has the mapping).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from broadcaster.domain import IncidentStatus
from broadcaster.maintenance.service import maintenance_incident_ids, public_windows
from broadcaster.models import Incident
from broadcaster.models.maintenance import MaintenanceWindow
from broadcaster.models.services import Service
from broadcaster.public import queries
from broadcaster.services import service
from broadcaster.services.schemas import severity_rank
from broadcaster.settings import get_settings

#: days in the status page's history bar
BAR_DAYS = 90

#: how a state reads on the status page (None: a day before the service existed)
LABELS: dict[str | None, str] = {
    "operational": "Operational",
    "maintenance": "Under maintenance",
    "degraded": "Degraded performance",
    "partial_outage": "Partial outage",
    "major_outage": "Major outage",
    None: "No data",
}

#: Broadcaster state -> Statuspage component status
STATUSPAGE_STATUS = {
    "operational": "operational",
    "maintenance": "under_maintenance",
    "degraded": "degraded_performance",
    "partial_outage": "partial_outage",
    "major_outage": "major_outage",
}

#: worst component state -> Statuspage page indicator and description
INDICATOR = {
    "operational": ("none", "All Systems Operational"),
    "maintenance": ("maintenance", "Service Under Maintenance"),
    "degraded": ("minor", "Minor Service Outage"),
    "partial_outage": ("major", "Partial System Outage"),
    "major_outage": ("critical", "Major System Outage"),
}

#: Broadcaster severity -> Statuspage incident impact
IMPACT = {"info": "none", "minor": "minor", "major": "major", "critical": "critical"}


def bar_view(days: list[tuple[date, str | None]]) -> list[dict[str, Any]]:
    """One cell per day with its CSS class and accessible text."""
    return [
        {
            "date": d.isoformat(),
            "state": s or "none",
            "text": f"{d.strftime('%b %-d, %Y')}: {LABELS[s]}",
        }
        for d, s in days
    ]


def components_view(session: Session, *, days: int = BAR_DAYS) -> list[dict[str, Any]]:
    """Public services grouped for the status page: [{name, components: [...]}], ungrouped first."""
    services = service.list_services(session, public_only=True)
    end = service.today()
    changes = service.changes_since(session, [s.id for s in services], service.window_start(days, end))
    groups: dict[str, list[dict[str, Any]]] = {}
    for svc in services:
        per_day = service.daily_worst(svc, changes[svc.id], days=days, end=end)
        groups.setdefault(svc.group, []).append(
            {
                "slug": svc.slug,
                "name": svc.name,
                "description": svc.description,
                "state": svc.state,
                "label": LABELS[svc.state],
                "bar": bar_view(per_day),
                "first": per_day[0][0].isoformat(),
                "last": per_day[-1][0].isoformat(),
            }
        )
    ordered = sorted(groups.items(), key=lambda kv: (kv[0] != "", kv[0].casefold()))
    return [{"name": name, "components": items} for name, items in ordered]


# --- Statuspage-style JSON ---------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _page() -> dict[str, Any]:
    settings = get_settings()
    return {
        "id": "broadcaster",
        "name": settings.org_name,
        "url": settings.public_url.rstrip("/") + "/status",
        "time_zone": "Etc/UTC",
        "updated_at": None,
    }


def _group_id(name: str) -> str:
    return "group:" + name


def _components(services: list[Service]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    groups: dict[str, list[Service]] = {}
    for svc in services:
        if svc.group:
            groups.setdefault(svc.group, []).append(svc)
        out.append(
            {
                "id": svc.slug,
                "name": svc.name,
                "status": STATUSPAGE_STATUS[svc.state],
                "description": svc.description or None,
                "position": svc.position,
                "group": False,
                "group_id": _group_id(svc.group) if svc.group else None,
                "group_name": svc.group or None,
                "created_at": _iso(svc.created_at),
                "updated_at": _iso(max(svc.updated_at, svc.state_changed_at)),
                "only_show_if_degraded": False,
                "showcase": True,
            }
        )
    for name, members in groups.items():
        worst = max((m.state for m in members), key=severity_rank)
        out.append(
            {
                "id": _group_id(name),
                "name": name,
                "status": STATUSPAGE_STATUS[worst],
                "description": None,
                "position": min(m.position for m in members),
                "group": True,
                "group_id": None,
                "group_name": None,
                "components": [m.slug for m in members],
                "created_at": _iso(min(m.created_at for m in members)),
                "updated_at": _iso(max(max(m.updated_at, m.state_changed_at) for m in members)),
                "only_show_if_degraded": False,
                "showcase": True,
            }
        )
    return out


def _dump(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def _updated_at(components: list[dict[str, Any]]) -> str | None:
    return max((c["updated_at"] for c in components if c["updated_at"]), default=None)


def components_json(session: Session) -> bytes:
    """`/api/v2/components.json` in spirit: the page and its public components (groups included)."""
    components = _components(service.list_services(session, public_only=True))
    page = _page() | {"updated_at": _updated_at(components)}
    return _dump({"page": page, "components": components})


def _incident(incident: Incident) -> dict[str, Any]:
    published = queries.published(incident)
    return {
        "id": str(incident.id),
        "name": incident.title,
        "status": incident.status,
        "impact": IMPACT.get(incident.severity, "none"),
        "created_at": _iso(incident.started_at),
        "updated_at": _iso(max((u.published_at or u.created_at for u in published), default=incident.updated_at)),
        "resolved_at": _iso(incident.resolved_at),
        "shortlink": f"{get_settings().public_url.rstrip('/')}/status/incidents/{incident.id}",
        "components": list(incident.affected_services or []),
        "incident_updates": [
            {
                "id": str(u.id),
                "status": u.status or incident.status,
                "body": u.body,
                "created_at": _iso(u.published_at or u.created_at),
            }
            for u in reversed(published)
        ],
    }


def summary_json(session: Session) -> bytes:
    """`/api/v2/summary.json` in spirit: page, overall status, components and unresolved incidents."""
    services = service.list_services(session, public_only=True)
    components = _components(services)
    worst = max((s.state for s in services), key=severity_rank, default="operational")

    in_maintenance = maintenance_incident_ids(session)  # listed under scheduled_maintenances instead
    incidents = [_incident(i) for i in queries.active_incidents(session) if i.id not in in_maintenance]
    indicator, description = INDICATOR[worst]
    if incidents and indicator in ("none", "maintenance"):
        rank = max(("none", "minor", "major", "critical").index(i["impact"]) for i in incidents)
        if rank:
            indicator, description = ("none", "minor", "major", "critical")[rank], "Active incident"
    page = _page() | {"updated_at": _updated_at(components)}
    return _dump(
        {
            "page": page,
            "status": {"indicator": indicator, "description": description},
            "components": components,
            "incidents": [i for i in incidents if i["status"] != IncidentStatus.resolved.value],
            "scheduled_maintenances": statuspage_maintenances(session),
        }
    )


def statuspage_maintenances(session: Session) -> list[dict[str, Any]]:
    """Planned and running windows shaped like Statuspage's `scheduled_maintenances` (summary.json)."""
    base = get_settings().public_url.rstrip("/")
    out: list[dict[str, Any]] = []
    for view in public_windows(session):
        window = session.get(MaintenanceWindow, view["id"])
        incident = session.get(Incident, view["incident_id"]) if view["incident_id"] else None
        published = queries.published(incident) if incident is not None and incident.public else []
        out.append(
            {
                "id": str(view["id"]),
                "name": view["title"],
                "status": view["state"],
                "impact": "maintenance",
                "scheduled_for": _iso(view["starts_at"]),
                "scheduled_until": _iso(view["ends_at"]),
                "created_at": _iso(window.created_at if window else None),
                "updated_at": _iso(window.updated_at if window else None),
                "shortlink": f"{base}/status/incidents/{incident.id}" if published and incident else f"{base}/status",
                "components": [s["slug"] for s in view["services"]],
                "incident_updates": [
                    {"id": str(u.id), "body": u.body, "created_at": _iso(u.published_at or u.created_at)}
                    for u in reversed(published)
                ],
            }
        )
    return out
