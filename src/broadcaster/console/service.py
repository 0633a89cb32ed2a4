"""View data for the console's pages: read-only queries shaped for the templates (writes go through /v1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster.domain import ChannelKind, IncidentStatus, Severity, UpdateKind, UpdateState
from broadcaster.errors import NotFound
from broadcaster.incidents.schemas import ChangeRequestOut
from broadcaster.models import AuditEntry, Category, Incident, Update, User, utcnow
from broadcaster.models.changes import ChangeRequest
from broadcaster.models.delivery import Broadcast, update_broadcasts
from broadcaster.sessions import ConsoleUser
from broadcaster.settings import Settings


@dataclass(frozen=True)
class NavItem:
    key: str
    href: str
    label: str
    #: the role that may open the page (admin may open every page); None: anyone signed in; a tuple: any of them
    role: str | tuple[str, ...] | None


#: the console's screens in navigation order, each with the role that opens it
NAV: tuple[NavItem, ...] = (
    NavItem("incidents", "/console/", "Incidents", None),
    NavItem("compose", "/console/compose", "Compose", "editor"),
    NavItem("approvals", "/console/approvals", "Approvals", "approver"),
    NavItem("subscribers", "/console/subscribers", "Subscribers", "editor"),
    NavItem("services", "/console/services", "Services", "editor"),
    #: editors see what is planned; approvers schedule, move and cancel (the API needs the publish scope)
    NavItem("maintenance", "/console/maintenance", "Maintenance", ("editor", "approver")),
    NavItem("areas", "/console/areas", "Areas", "editor"),
    NavItem("channels", "/console/channels", "Channels", None),
    #: approvers open it to review and approve proposed versions; only admins edit the map there
    NavItem("routing", "/console/routing", "Routing map", "approver"),
    NavItem("audit", "/console/audit", "Audit log", "admin"),
)
_BY_KEY = {item.key: item for item in NAV}


def may_open(user: ConsoleUser, key: str) -> bool:
    """Whether the person's roles open the page `key` (the API enforces the same with scopes)."""
    role = _BY_KEY[key].role
    if isinstance(role, tuple):
        return any(user.has_role(r) for r in role)
    return role is None or user.has_role(role)


def nav_for(user: ConsoleUser) -> list[NavItem]:
    """The navigation shows only the pages the person may open."""
    return [item for item in NAV if may_open(user, item.key)]


def actor_names(session: Session, actors: set[str | None]) -> dict[str, str]:
    """`user:<id>` -> the person's name (or email); keys and other actors are shown as recorded."""
    ids = {int(a.split(":", 1)[1]) for a in actors if a and a.startswith("user:") and a[5:].isdigit()}
    names: dict[str, str] = {}
    if ids:
        for user in session.scalars(select(User).where(User.id.in_(ids))):
            names[f"user:{user.id}"] = user.name or user.email
    return {a: names.get(a, a) for a in actors if a}


# --- incidents -----------------------------------------------------------------------------------------


def incident_list(session: Session, *, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Incidents, newest first, each with its latest update's state and summary."""
    stmt = select(Incident).order_by(Incident.id.desc()).limit(limit)
    if status == "active":
        stmt = stmt.where(Incident.status != IncidentStatus.resolved.value)
    elif status in {s.value for s in IncidentStatus}:
        stmt = stmt.where(Incident.status == status)
    rows = []
    for incident in session.scalars(stmt).unique():
        latest = incident.updates[-1] if incident.updates else None
        rows.append(
            {
                "incident": incident,
                "latest": latest,
                "pending": sum(1 for u in incident.updates if u.state == UpdateState.pending_approval.value),
            }
        )
    return rows


def get_incident(session: Session, incident_id: int) -> Incident:
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"Incident {incident_id} does not exist.", field="incident_id")
    return incident


def incident_view(session: Session, incident_id: int) -> dict[str, Any]:
    """An incident's timeline: every update with its broadcasts, why a pending approval was cancelled, and the
    change requests waiting for a second person (each with its diff and content ETag)."""
    incident = get_incident(session, incident_id)
    ids = [u.id for u in incident.updates]
    broadcasts: dict[int, list[Broadcast]] = {}
    notes: dict[int, AuditEntry] = {}
    if ids:
        for b in session.scalars(select(Broadcast).where(Broadcast.update_id.in_(ids)).order_by(Broadcast.id)):
            broadcasts.setdefault(b.update_id or 0, []).append(b)
        for entry in session.scalars(
            select(AuditEntry)
            .where(
                AuditEntry.action == "update.approval_cancelled",
                AuditEntry.target_type == "update",
                AuditEntry.target_id.in_([str(i) for i in ids]),
            )
            .order_by(AuditEntry.id)
        ):
            notes[int(entry.target_id)] = entry  # the latest one wins
    actors = {
        a
        for u in incident.updates
        for a in (u.created_by, u.published_by, u.approved_by, getattr(u, "rejected_by", None))
    }
    actors |= {n.actor for n in notes.values()}
    changes = [ChangeRequestOut.build(r, incident) for r in incident.change_requests if r.state == "pending"]
    # the latest change request turned down (rejected, or voided by another change) while none waits
    closed = [r for r in incident.change_requests if r.state in ("rejected", "voided")]
    turned_down = ChangeRequestOut.build(closed[-1], incident) if closed and not changes else None
    actors |= {c.requested_by for c in changes} | ({turned_down.decided_by} if turned_down else set())
    # published corrections and retractions of each update (the original is marked, its text struck through)
    corrected_by: dict[int, list[tuple[int, str]]] = {}
    for u in incident.updates:
        if u.corrects_id is not None and u.state == UpdateState.published.value and not u.test:
            corrected_by.setdefault(u.corrects_id, []).append((u.id, u.kind))
    entries = [
        {
            "u": u,
            "corrected_by": corrected_by.get(u.id, []),
            "broadcasts": broadcasts.get(u.id, []),
            # a note shows only while the update is still a draft (publishing again supersedes it)
            "approval_cancelled": notes.get(u.id) if u.state == UpdateState.draft.value else None,
        }
        for u in reversed(incident.updates)
    ]
    from broadcaster.users import notices

    pending = [u.id for u in incident.updates if u.state == UpdateState.pending_approval.value]
    requests = {r.update.id: notices.describe(session, r) for r in notices.pending_requests(session, pending)}
    return {
        "incident": incident,
        "entries": entries,
        "changes": changes,
        "turned_down": turned_down,
        "approval_requests": requests,
        "names": actor_names(session, actors),
    }


def pending_changes(session: Session) -> list[tuple[Incident, ChangeRequest]]:
    """Change requests waiting for a second person, oldest first, with their incidents (the approvals page)."""
    stmt = (
        select(Incident, ChangeRequest)
        .join(ChangeRequest, ChangeRequest.incident_id == Incident.id)
        .where(ChangeRequest.state == "pending")
        .order_by(ChangeRequest.id)
    )
    return [(incident, row) for incident, row in session.execute(stmt).unique()]


# --- compose -------------------------------------------------------------------------------------------


def routing_channels(session: Session) -> dict[str, dict[str, list[str]]]:
    """category slug -> severity -> channel names (what the compose form pre-fills)."""
    return {c.slug: dict(c.channels or {}) for c in session.scalars(select(Category).order_by(Category.position))}


def channel_choices(settings: Settings) -> list[dict[str, Any]]:
    """Channel names the form offers: every kind, then each configured adapter by name (to pick one)."""
    from broadcaster.channels.registry import adapters_by_kind

    by_kind = adapters_by_kind(settings)
    out: list[dict[str, Any]] = []
    for kind in ChannelKind:
        adapters = by_kind.get(kind, [])
        out.append({"name": kind.value, "label": kind.value, "configured": bool(adapters), "kind": kind.value})
    for kind in ChannelKind:
        adapters = by_kind.get(kind, [])
        if len(adapters) > 1 or (adapters and adapters[0].name != kind.value):
            for adapter in adapters:
                if adapter.name not in {c["name"] for c in out}:
                    out.append({"name": adapter.name, "label": adapter.name, "configured": True, "kind": kind.value})
    return out


#: each kind of channel in the words of the people it reaches (providers are only detail)
AUDIENCE_LABELS: dict[str, str] = {
    ChannelKind.sms.value: "Text message",
    ChannelKind.voice.value: "Voice call",
    ChannelKind.email.value: "E-mail",
    ChannelKind.social.value: "Social media",
    ChannelKind.banner.value: "Website banner and status page",
    ChannelKind.webhook.value: "Webhooks",
}
#: the order the compose form lists them in
AUDIENCE_ORDER = ("sms", "voice", "email", "social", "banner", "webhook")


def channel_groups(settings: Settings) -> list[dict[str, Any]]:
    """The compose form's channel picker: one choice per kind in the audience's words, each with its providers
    (configured ones in sending order: the first sends, the others take over when it fails) as detail."""
    from broadcaster.channels.registry import adapter_classes, adapters_by_kind

    by_kind = adapters_by_kind(settings)
    classes = adapter_classes()
    out = []
    for kind in sorted(ChannelKind, key=lambda k: AUDIENCE_ORDER.index(k.value)):
        configured = [a.name for a in by_kind.get(kind, [])]
        installed = sorted(n for n, c in classes.items() if c.kind is kind and not n.startswith("memory"))
        out.append(
            {
                "kind": kind.value,
                "label": AUDIENCE_LABELS[kind.value],
                "configured": bool(configured),
                "providers": configured,
                "installed": installed,
            }
        )
    return out


def channel_kinds() -> dict[str, str]:
    """Every channel name the routing map may use (a kind or an adapter) -> its kind."""
    from broadcaster.channels.registry import kind_of, known_channel_names

    return {name: kind.value for name in sorted(known_channel_names()) if (kind := kind_of(name)) is not None}


def compose_context(
    session: Session,
    settings: Settings,
    *,
    incident_id: int | None,
    update_id: int | None,
    corrects: int | None,
    kind: str | None,
) -> dict[str, Any]:
    """What the compose form starts with: a new incident, a new update, a draft to edit, or a correction or
    retraction pre-filled with the original's text (kind correction/cancel naming it in `corrects`)."""
    from broadcaster.public.palette import PALETTE

    incident: Incident | None = None
    fixed_channels: list[str] | None = None
    draft: dict[str, Any] = {"kind": UpdateKind.normal.value, "corrects": None}
    editing: Update | None = None
    if update_id is not None:
        editing = session.get(Update, update_id)
        if editing is None:
            raise NotFound(f"Update {update_id} does not exist.", field="update_id")
        incident = editing.incident
        draft = _update_fields(editing) | {"kind": editing.kind, "corrects": editing.corrects_id}
    elif corrects is not None:
        original = session.get(Update, corrects)
        if original is None or original.state != UpdateState.published.value:
            raise NotFound(f"Published update {corrects} does not exist.", field="corrects")
        incident = original.incident
        draft = _update_fields(original) | {
            "kind": UpdateKind.cancel.value if kind == UpdateKind.cancel.value else UpdateKind.correction.value,
            "corrects": original.id,
            # a correction goes to the original's audience on the original's channels (the server decides)
            "channels": None,
            "status": None,
        }
        sent = session.scalar(update_broadcasts(original.id).where(Broadcast.test.is_(False)).limit(1))
        fixed_channels = list(sent.channels) if sent is not None else (original.channels or None)
        if draft["kind"] == UpdateKind.cancel.value:
            draft["body"] = f"Please disregard our previous message: {original.body}"[:10_000]
            draft["summary"] = ("Please disregard our previous message." + " " + original.summary).strip()[:320]
    elif incident_id is not None:
        incident = get_incident(session, incident_id)
    return {
        "incident": incident,
        "editing": editing,
        "draft": draft,
        "categories": list(session.scalars(select(Category).order_by(Category.position, Category.slug))),
        "severities": [s.value for s in Severity],
        "statuses": [s.value for s in IncidentStatus],
        "config": {
            "incident_id": incident.id if incident else None,
            "title": incident.title if incident else None,
            "update_id": editing.id if editing else None,
            "category": incident.category.slug if incident else None,
            "severity": incident.severity if incident else None,
            "draft": draft,
            #: a correction's channels: the original broadcast's (the server uses them; shown, not editable)
            "fixed_channels": fixed_channels,
            "routing": routing_channels(session),
            "choices": channel_choices(settings),
            "groups": channel_groups(settings),
            "kinds": channel_kinds(),
            "approval_severity": settings.approval_severity,
            "approval_audience_threshold": settings.approval_audience_threshold,
            "severities": [s.value for s in Severity],
            "palette": PALETTE,
            "org_name": settings.org_name,
        },
    }


def _update_fields(update: Update) -> dict[str, Any]:
    return {
        "body": update.body,
        "summary": update.summary,
        "locale": update.locale,
        "translations": dict(update.translations or {}),
        "links": list(update.links or []),
        "channels": list(update.channels) if update.channels is not None else None,
        "audience": dict(update.audience) if update.audience else None,
        "status": update.status,
        "test": update.test,
        "area": dict(update.area) if update.area else None,
        "question": _question_fields(update),
    }


def _question_fields(update: Update) -> dict[str, Any] | None:
    """The update's question as the compose form fills it in (its text and answers), or None."""
    q = update.question
    if q is None:
        return None
    options = [{"label": o["label"], "needs_help": bool(o.get("needs_help"))} for o in q.options]
    return {"text": q.text, "options": options}


# --- approvals -----------------------------------------------------------------------------------------


def pending_updates(session: Session) -> tuple[list[Update], dict[str, str]]:
    """Updates waiting for a second person, oldest first, and the requesters' names."""
    rows = list(
        session.scalars(select(Update).where(Update.state == UpdateState.pending_approval.value).order_by(Update.id))
    )
    return rows, actor_names(session, {u.published_by for u in rows} | {u.created_by for u in rows})


# --- broadcasts, channels, subscribers -----------------------------------------------------------------


#: people listed on the responses page (needs-help first); the CSV export has everyone
PEOPLE_SHOWN = 100
UNRECOGNISED_SHOWN = 20


def broadcast_view(session: Session, broadcast_id: int) -> dict[str, Any]:
    from broadcaster.delivery.reports import report

    rep = report(session, broadcast_id)
    update = session.get(Update, rep.update_id) if rep.update_id else None
    #: seconds of the send hold left (None: not held): the page counts down from it
    hold_left = None
    if rep.state == "planning" and rep.not_before is not None:
        hold_left = max(0.0, (rep.not_before - utcnow()).total_seconds())
    return {"report": rep, "update": update, "incident": update.incident if update else None, "hold_left": hold_left}


def responses_view(session: Session, update_id: int) -> dict[str, Any]:
    """An update's question for the response team: tallies per answer, channel and segment, the people who
    need help first (with contact details), the others who answered, and replies that chose no option."""
    from broadcaster.responses import service as responses

    tally = responses.responses(session, update_id, limit=PEOPLE_SHOWN, with_segments=True)  # 404 without one
    # free text saying "not safe" or "ayuda" goes with the people who need help, not at the bottom
    needs_a_person, unrecognised = responses.free_text_replies(session, update_id, limit=UNRECOGNISED_SHOWN)
    update = session.get(Update, update_id)
    assert update is not None  # responses() checked it exists
    return {
        "tally": tally,
        "update": update,
        "incident": update.incident,
        "unrecognised": unrecognised,
        "needs_a_person": needs_a_person,
    }


def channels_view(session: Session, settings: Settings) -> list[dict[str, Any]]:
    """Every adapter with the last connection check run from the API or console (from the audit log)."""
    from broadcaster.channels.service import list_adapters

    adapters = list_adapters(settings)
    last: dict[str, AuditEntry] = {}
    for entry in session.scalars(
        select(AuditEntry)
        .where(AuditEntry.action == "channel.check", AuditEntry.target_id.in_([a.name for a in adapters]))
        .order_by(AuditEntry.id)
    ):
        last[entry.target_id] = entry
    return [{"adapter": a, "last_check": last.get(a.name)} for a in adapters]


def subscriber_view(session: Session, subscriber_id: int) -> dict[str, Any]:
    from broadcaster.models.delivery import Delivery
    from broadcaster.subscribers import service as subscribers

    row = subscribers.get(session, subscriber_id)
    recent = list(
        session.scalars(
            select(Delivery).where(Delivery.subscriber_id == subscriber_id).order_by(Delivery.id.desc()).limit(20)
        )
    )
    return {"subscriber": subscribers.out(session, row), "deliveries": recent}


def subscriber_list(session: Session, q: str | None, limit: int = 50) -> list[Any]:
    from broadcaster.subscribers import service as subscribers

    rows = subscribers.list_subscribers(
        session, q=q or None, category=None, tag=None, locale=None, test_group=None, limit=limit, cursor=None
    )
    return subscribers.outs(session, rows[:limit])


@dataclass(frozen=True)
class MapProposal:
    """A proposed routing-map version as the routing page shows it: why it loosens safety, its diff against the
    applied version, and the ETag that approving it sends (the ETag of exactly this diff)."""

    number: int
    proposed_by: str
    proposer: str
    proposed_at: Any
    reasons: list[str]
    against: int | None
    diff_text: str
    etag: str


def map_proposals(session: Session) -> list[MapProposal]:
    """Routing-map versions waiting for a second person (newest first)."""
    from broadcaster.publishing.approvers import actor_label
    from broadcaster.routing import mapdiff, versions

    applied = versions.current(session)
    against = applied.number if applied else None
    base = versions.document_of(session, against)
    return [
        MapProposal(
            number=row.number,
            proposed_by=row.proposed_by,
            proposer=actor_label(session, row.proposed_by),
            proposed_at=row.proposed_at,
            reasons=list(row.reasons or []),
            against=against,
            diff_text=mapdiff.render(mapdiff.diff_maps(base, row.document)),
            etag=versions.etag(row),
        )
        for row in versions.pending(session)
    ]


# --- services, maintenance, areas (issue 21) ------------------------------------------------------------


def services_view(session: Session) -> list[dict[str, Any]]:
    """Every service (public or not) with its state and the status page's 90-day bar (same data and cells)."""
    from broadcaster.public.statuspage import BAR_DAYS, LABELS, bar_view
    from broadcaster.services import service as services

    rows = services.list_services(session)
    end = services.today()
    changes = services.changes_since(session, [s.id for s in rows], services.window_start(BAR_DAYS, end))
    return [
        {
            "s": svc,
            "label": LABELS[svc.state],
            "bar": bar_view(services.daily_worst(svc, changes[svc.id], days=BAR_DAYS, end=end)),
        }
        for svc in rows
    ]


#: areas drawn and counted on one page load (an import of every postcode can hold thousands)
AREAS_SHOWN = 100


def areas_view(session: Session) -> tuple[list[dict[str, Any]], int]:
    """Named areas (the first AREAS_SHOWN by slug), each with its outline (inline SVG data from the stored
    polygons, like the status page's: no map tiles) and how many subscribers it holds; and the total."""
    from sqlalchemy import func

    from broadcaster.areas import service as areas
    from broadcaster.models.areas import Area
    from broadcaster.public.area_outline import Shape, outline, polygons

    total = int(session.scalar(select(func.count()).select_from(Area)) or 0)
    rows = []
    for area in areas.list_areas(session)[:AREAS_SHOWN]:
        rows.append(
            {
                "area": area,
                "outline": outline((Shape(area.name, polygons(area.geometry)),)),
                "count": areas.count_subscribers(session, area.slug),
            }
        )
    return rows, total


#: maintenance windows listed (newest first)
WINDOWS_SHOWN = 50
#: how each notice reads in the console
NOTICE_KINDS = {
    "created": "When planned",
    "reminder": "Reminder",
    "started": "At the start",
    "completed": "At the end",
    "moved": "Moved",
    "cancelled": "Cancelled",
}


def maintenance_view(session: Session) -> dict[str, Any]:
    """Maintenance windows (newest first) with their notices and the approval of their schedule, and what the
    plan form offers (services, categories)."""
    from broadcaster.maintenance import service as maintenance
    from broadcaster.services import service as services

    windows = [maintenance.to_out(session, w) for w in maintenance.list_windows(session, limit=WINDOWS_SHOWN)]
    actors = {w.created_by for w in windows} | {w.approval.requested_by for w in windows}
    actors |= {w.approval.decided_by for w in windows}
    svcs = services.list_services(session)
    return {
        "windows": windows,
        "services": svcs,
        "service_names": {s.slug: s.name for s in svcs},
        "categories": list(session.scalars(select(Category).order_by(Category.position, Category.slug))),
        "names": actor_names(session, actors),
        "notice_kinds": NOTICE_KINDS,
    }
