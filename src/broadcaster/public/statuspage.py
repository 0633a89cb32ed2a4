"""The status page's services (components with a 90-day bar) and the Statuspage-compatible public API.

`/api/v2/summary.json`, `status.json`, `components.json`, `incidents.json`, `incidents/unresolved.json`,
`scheduled-maintenances.json`, `scheduled-maintenances/upcoming.json` and `scheduled-maintenances/active.json` have
the field names, types and nesting of Atlassian Statuspage's public API v2, so its clients, widgets and aggregators
read Broadcaster as they read a Statuspage page. Only public content: public services, public incidents, published
non-test updates. docs/public.md has the mapping of Broadcaster's states onto Statuspage's enums.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from broadcaster.domain import IncidentStatus, UpdateKind, UpdateState
from broadcaster.maintenance.service import maintenance_incident_ids
from broadcaster.models import Incident, Update
from broadcaster.models.maintenance import MaintenanceNotice, MaintenanceWindow
from broadcaster.models.services import Service, ServiceStateChange
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


# --- the Statuspage-compatible public API (Atlassian Statuspage public API v2) ----------------------------------
# Every enum value below is one of the values Statuspage documents; docs/public.md has the same tables.

#: Broadcaster service state -> Statuspage component `status`
STATUSPAGE_STATUS = {
    "operational": "operational",
    "maintenance": "under_maintenance",
    "degraded": "degraded_performance",
    "partial_outage": "partial_outage",
    "major_outage": "major_outage",
}

#: Statuspage page `status.indicator`, best first, and its `description`
INDICATORS = ("none", "minor", "major", "critical")
DESCRIPTIONS = {
    "none": "All Systems Operational",
    "minor": "Minor Service Outage",
    "major": "Partial System Outage",
    "critical": "Major Service Outage",
}
#: worst public service state -> indicator (maintenance is planned work, not an outage: `none`, described as such)
STATE_INDICATOR = {
    "operational": "none",
    "maintenance": "none",
    "degraded": "minor",
    "partial_outage": "major",
    "major_outage": "critical",
}
MAINTENANCE_DESCRIPTION = "Service Under Maintenance"

#: Broadcaster incident severity -> Statuspage incident `impact`
IMPACT = {"info": "none", "minor": "minor", "major": "major", "critical": "critical"}

#: maintenance window state -> Statuspage scheduled maintenance `status` (cancelled windows are left out)
MAINTENANCE_STATUS = {"scheduled": "scheduled", "in_progress": "in_progress", "completed": "completed"}
#: maintenance notice kind -> the `status` of the incident update it published
NOTICE_STATUS = {
    "created": "scheduled",
    "reminder": "scheduled",
    "moved": "scheduled",
    "started": "in_progress",
    "completed": "completed",
    "cancelled": "completed",
}

#: how many incidents / maintenances the "all" lists hold (Statuspage: the 50 most recent)
LIST_LIMIT = 50
#: the page id (Statuspage ids are opaque strings; one Broadcaster is one page)
PAGE_ID = "broadcaster"
_EPOCH = "1970-01-01T00:00:00Z"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _dump(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def _group_id(name: str) -> str:
    return "group:" + name


def _set(*values: datetime | None) -> list[datetime]:
    return [v for v in values if v is not None]


def _last_public_change(session: Session, services: list[Service]) -> datetime | None:
    """The latest change the public can see: a public service edited or changing state, a published (non-test)
    update of a public incident, a public incident resolved, a window planned, started or ended. Only content:
    internal edits (approvals, drafts, hidden services) leave it, and so the documents' bytes, alone."""
    found = _set(*(max(s.updated_at, s.state_changed_at) for s in services))
    found += _set(
        session.scalar(
            select(func.max(Update.published_at))
            .join(Incident, Update.incident_id == Incident.id)
            .where(Incident.public.is_(True), Update.state == UpdateState.published.value, Update.test.is_(False))
        ),
        session.scalar(select(func.max(Incident.resolved_at)).where(Incident.public.is_(True))),
    )
    shown = MaintenanceWindow.state.in_(tuple(MAINTENANCE_STATUS))
    for column in (MaintenanceWindow.created_at, MaintenanceWindow.started_at, MaintenanceWindow.ended_at):
        found += _set(session.scalar(select(func.max(column)).where(shown)))
    return max(found, default=None)


class _Page:
    """What every document of one request shares: the page object and the public services by slug."""

    def __init__(self, session: Session) -> None:
        self.session = session
        settings = get_settings()
        self.base = settings.public_url.rstrip("/")
        self.services = service.list_services(session, public_only=True)
        self.by_slug = {s.slug: s for s in self.services}
        latest = _last_public_change(session, self.services)
        self.page = {
            "id": PAGE_ID,
            "name": settings.org_name,
            "url": self.base + "/status",
            "time_zone": settings.site_timezone,
            # the last change of what these documents show, so every document says the same
            "updated_at": _iso(latest) or _EPOCH,
        }

    # --- components ----------------------------------------------------------------------------------------
    def component(self, svc: Service) -> dict[str, Any]:
        return {
            "id": svc.slug,
            "name": svc.name,
            "status": STATUSPAGE_STATUS[svc.state],
            "created_at": _iso(svc.created_at),
            "updated_at": _iso(max(svc.updated_at, svc.state_changed_at)),
            "position": svc.position,
            "description": svc.description or None,
            "showcase": True,
            "start_date": svc.created_at.date().isoformat(),
            "group_id": _group_id(svc.group) if svc.group else None,
            "page_id": PAGE_ID,
            "group": False,
            "only_show_if_degraded": False,
        }

    def components(self) -> list[dict[str, Any]]:
        """Every public service, then one entry per group (`group: true`, its members' ids, their worst status)."""
        out = [self.component(s) for s in self.services]
        groups: dict[str, list[Service]] = {}
        for svc in self.services:
            if svc.group:
                groups.setdefault(svc.group, []).append(svc)
        for name, members in groups.items():
            worst = max((m.state for m in members), key=severity_rank)
            out.append(
                {
                    "id": _group_id(name),
                    "name": name,
                    "status": STATUSPAGE_STATUS[worst],
                    "created_at": _iso(min(m.created_at for m in members)),
                    "updated_at": _iso(max(max(m.updated_at, m.state_changed_at) for m in members)),
                    "position": min(m.position for m in members),
                    "description": None,
                    "showcase": False,
                    "start_date": None,
                    "group_id": None,
                    "page_id": PAGE_ID,
                    "group": True,
                    "only_show_if_degraded": False,
                    "components": [m.slug for m in members],
                }
            )
        return out

    def components_of(self, slugs: list[str] | None) -> list[dict[str, Any]]:
        """Component objects of the public services among `slugs` (hidden or deleted ones left out)."""
        return [self.component(self.by_slug[s]) for s in dict.fromkeys(slugs or []) if s in self.by_slug]

    def _change(self, row: ServiceStateChange, by_id: dict[int, Service]) -> dict[str, Any] | None:
        svc = by_id.get(row.service_id)
        if svc is None or row.previous is None:
            return None
        return {
            "code": svc.slug,
            "name": svc.name,
            "old_status": STATUSPAGE_STATUS[row.previous],
            "new_status": STATUSPAGE_STATUS[row.state],
        }

    def affected(self, update_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
        """Per update, the public component changes its publishing made: Statuspage's `affected_components`."""
        out: dict[int, list[dict[str, Any]]] = {}
        if not update_ids:
            return out
        by_id = {s.id: s for s in self.services}
        stmt = (
            select(ServiceStateChange)
            .where(ServiceStateChange.update_id.in_(update_ids))
            .order_by(ServiceStateChange.at, ServiceStateChange.id)
        )
        for row in self.session.scalars(stmt):
            change = self._change(row, by_id)
            if change is not None and row.update_id is not None:
                out.setdefault(row.update_id, []).append(change)
        return out

    def window_changes(self, window_id: int) -> dict[str, list[dict[str, Any]]]:
        """A window's public component changes: `started` (into maintenance) and `completed` (back out)."""
        by_id = {s.id: s for s in self.services}
        stmt = (
            select(ServiceStateChange)
            .where(ServiceStateChange.maintenance_id == window_id)
            .order_by(ServiceStateChange.at, ServiceStateChange.id)
        )
        out: dict[str, list[dict[str, Any]]] = {}
        for row in self.session.scalars(stmt):
            change = self._change(row, by_id)
            if change is not None:
                out.setdefault("started" if row.state == "maintenance" else "completed", []).append(change)
        return out

    # --- incidents -----------------------------------------------------------------------------------------
    def incident_update(
        self, update: Update, incident_id: str, status: str, affected: dict[int, list[dict[str, Any]]]
    ) -> dict[str, Any]:
        when = _iso(update.published_at or update.created_at)
        return {
            "id": str(update.id),
            "status": status,
            "body": update.body,
            "incident_id": incident_id,
            "created_at": when,
            "updated_at": when,
            "display_at": when,
            "affected_components": affected.get(update.id),
            # false for an update that went to the public surfaces only (e.g. a notice sent on no channel)
            "deliver_notifications": update.channels != [],
            "custom_tweet": None,
            "tweet_id": None,
        }

    def incident(self, incident: Incident) -> dict[str, Any]:
        """A public incident: its published (non-test) updates newest first, each with the status it set.

        A retracted incident (its latest update a cancel) reads as `resolved`, resolved when it was retracted."""
        published = queries.published(incident)
        affected = self.affected([u.id for u in published])
        current = (
            IncidentStatus.investigating.value if any(u.status for u in published) else incident.status
        )  # before the first update that names one
        statuses: list[str] = []
        for u in published:
            current = u.status or current
            statuses.append(IncidentStatus.resolved.value if u.kind == UpdateKind.cancel.value else current)
        retracted = bool(published) and published[-1].kind == UpdateKind.cancel.value
        status = IncidentStatus.resolved.value if retracted else incident.status
        times = [u.published_at or u.created_at for u in published]
        resolved_at = incident.resolved_at or (times[-1] if retracted else None)
        monitoring = next((t for t, s in zip(times, statuses, strict=True) if s == "monitoring"), None)
        iid = str(incident.id)
        return {
            "id": iid,
            "name": incident.title,
            "status": status,
            "created_at": _iso(incident.created_at),
            "updated_at": _iso(max([*times, *([resolved_at] if resolved_at else [])], default=incident.updated_at)),
            "monitoring_at": _iso(monitoring),
            "resolved_at": _iso(resolved_at),
            "impact": IMPACT.get(incident.severity, "none"),
            "shortlink": f"{self.base}/status/incidents/{incident.id}",
            "started_at": _iso(incident.started_at),
            "page_id": PAGE_ID,
            "incident_updates": [
                self.incident_update(u, iid, s, affected)
                for u, s in reversed(list(zip(published, statuses, strict=True)))
            ],
            "components": self.components_of(incident.affected_services),
        }

    def unresolved(self) -> list[dict[str, Any]]:
        """Public incidents still investigating, identified or monitoring (maintenance has its own lists)."""
        in_maintenance = maintenance_incident_ids(self.session)
        return [self.incident(i) for i in queries.active_incidents(self.session) if i.id not in in_maintenance]

    def recent(self) -> list[dict[str, Any]]:
        """The 50 most recent public incidents with a published update, unresolved and resolved."""
        in_maintenance = maintenance_incident_ids(self.session)
        stmt = (
            select(Incident)
            .where(Incident.public.is_(True))
            .options(selectinload(Incident.updates))
            .order_by(Incident.started_at.desc(), Incident.id.desc())
        )
        out: list[dict[str, Any]] = []
        for incident in self.session.scalars(stmt):
            if incident.id in in_maintenance or not queries.published(incident):
                continue
            out.append(self.incident(incident))
            if len(out) == LIST_LIMIT:
                break
        return out

    # --- scheduled maintenances ----------------------------------------------------------------------------
    def maintenances(self, states: tuple[str, ...], *, limit: int | None = None) -> list[dict[str, Any]]:
        """Windows in `states` as Statuspage scheduled maintenances, soonest first (all: latest first)."""
        stmt = select(MaintenanceWindow).where(MaintenanceWindow.state.in_(states))
        if limit is None:
            stmt = stmt.order_by(MaintenanceWindow.starts_at, MaintenanceWindow.id)
        else:
            stmt = stmt.order_by(MaintenanceWindow.starts_at.desc(), MaintenanceWindow.id.desc()).limit(limit)
        windows = list(self.session.scalars(stmt))
        out: list[dict[str, Any]] = []
        for window in windows:
            incident = self.session.get(Incident, window.incident_id) if window.incident_id else None
            published = queries.published(incident) if incident is not None and incident.public else []
            kinds = dict(
                self.session.execute(
                    select(MaintenanceNotice.update_id, MaintenanceNotice.kind).where(
                        MaintenanceNotice.update_id.in_([u.id for u in published])
                    )
                ).all()
            )
            affected = self.affected([u.id for u in published])
            # the runner changes the services as the window starts and ends: shown on the notice saying so
            changes = self.window_changes(window.id)
            for update_id, kind in kinds.items():
                if kind in changes and update_id is not None:
                    affected[update_id] = affected.get(update_id, []) + changes.pop(kind)
            mid = str(window.incident_id) if window.incident_id else f"maintenance-{window.id}"
            current = "scheduled"
            updates = []
            for u in published:
                current = NOTICE_STATUS.get(kinds.get(u.id, ""), current)
                updates.append(self.incident_update(u, mid, current, affected))
            times = [u.published_at or u.created_at for u in published]
            out.append(
                {
                    "id": mid,
                    "name": window.title,
                    "status": MAINTENANCE_STATUS[window.state],
                    "created_at": _iso(window.created_at),
                    "updated_at": _iso(max([window.created_at, *_set(window.started_at, window.ended_at), *times])),
                    "monitoring_at": None,
                    "resolved_at": _iso(window.ended_at) if window.state == "completed" else None,
                    "impact": IMPACT.get(incident.severity, "none") if incident is not None else "none",
                    "shortlink": f"{self.base}/status/incidents/{incident.id}"
                    if published and incident
                    else f"{self.base}/status",
                    "started_at": _iso(window.started_at or window.starts_at),
                    "page_id": PAGE_ID,
                    "incident_updates": list(reversed(updates)),
                    "components": self.components_of(window.services),
                    "scheduled_for": _iso(window.starts_at),
                    "scheduled_until": _iso(window.ends_at),
                }
            )
        return out

    # --- page status ---------------------------------------------------------------------------------------
    def status(self, unresolved: list[dict[str, Any]]) -> dict[str, str]:
        """The page's `indicator` (none, minor, major, critical) and its `description`: the worse of the worst
        public service state and the worst impact among unresolved incidents."""
        worst = max((s.state for s in self.services), key=severity_rank, default="operational")
        rank = INDICATORS.index(STATE_INDICATOR[worst])
        rank = max([rank, *(INDICATORS.index(i["impact"]) for i in unresolved)])
        indicator = INDICATORS[rank]
        if indicator == "none" and worst == "maintenance":
            return {"indicator": "none", "description": MAINTENANCE_DESCRIPTION}
        return {"indicator": indicator, "description": DESCRIPTIONS[indicator]}


_SOON = ("scheduled", "in_progress")


def summary_json(session: Session) -> bytes:
    """`/api/v2/summary.json`: page, status, components, unresolved incidents, upcoming and running maintenance."""
    p = _Page(session)
    unresolved = p.unresolved()
    return _dump(
        {
            "page": p.page,
            "components": p.components(),
            "incidents": unresolved,
            "scheduled_maintenances": p.maintenances(_SOON),
            "status": p.status(unresolved),
        }
    )


def status_json(session: Session) -> bytes:
    """`/api/v2/status.json`: the page and its status rollup."""
    p = _Page(session)
    return _dump({"page": p.page, "status": p.status(p.unresolved())})


def components_json(session: Session) -> bytes:
    """`/api/v2/components.json`: the page and its public components (groups included)."""
    p = _Page(session)
    return _dump({"page": p.page, "components": p.components()})


def incidents_json(session: Session) -> bytes:
    """`/api/v2/incidents.json`: the 50 most recent public incidents."""
    p = _Page(session)
    return _dump({"page": p.page, "incidents": p.recent()})


def unresolved_json(session: Session) -> bytes:
    """`/api/v2/incidents/unresolved.json`: public incidents investigating, identified or monitoring."""
    p = _Page(session)
    return _dump({"page": p.page, "incidents": p.unresolved()})


#: which windows each scheduled-maintenances document lists
MAINTENANCE_LISTS = {
    "all": ("scheduled", "in_progress", "completed"),
    "upcoming": ("scheduled",),
    "active": ("in_progress",),
}


def maintenances_json(session: Session, which: str) -> bytes:
    """`/api/v2/scheduled-maintenances.json` (`all`: the 50 most recent), `/upcoming.json`, `/active.json`."""
    p = _Page(session)
    limit = LIST_LIMIT if which == "all" else None
    return _dump({"page": p.page, "scheduled_maintenances": p.maintenances(MAINTENANCE_LISTS[which], limit=limit)})
