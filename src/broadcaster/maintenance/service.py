"""Maintenance windows: planning their notices, moving, cancelling, and sending one due notice.

Services take a session and never commit. Every decision of *when* reads `broadcaster.clock.now()` (tests move
it). A notice is sent by `send_notice` in the caller's transaction: it claims the notice row (a conditional
UPDATE from `pending`), asks whether the window's schedule approval covers it (`authorize`, from
maintenance/schedule.py), publishes the notice's update through `publishing.publish` with that approval
(fan-out, feeds, banner) and marks it sent; the caller commits, so the update and the mark are one transaction:
exactly once. Whoever writes a window locks its incident first, then the window (`lock_window`), the order
incident edits and publishing follow too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from broadcaster import audit, clock
from broadcaster.domain import IncidentStatus, Severity, UpdateKind
from broadcaster.errors import Conflict, NotFound, Unprocessable
from broadcaster.incidents import service as incidents
from broadcaster.incidents.schemas import IncidentIn, IncidentPatch, UpdateIn
from broadcaster.invalidation import content_changed
from broadcaster.maintenance.schemas import (
    MaintenanceIn,
    MaintenanceOut,
    MaintenancePatch,
    NoticeOut,
    ScheduleApprovalOut,
    WindowState,
)
from broadcaster.models import Category, Incident, utcnow
from broadcaster.models.maintenance import MaintenanceNotice, MaintenanceWindow
from broadcaster.models.services import Service
from broadcaster.publishing import approval, gate
from broadcaster.publishing import service as publishing
from broadcaster.services.schemas import ServiceState
from broadcaster.settings import get_settings

#: who publishes the notices (audit log, update.published_by)
ACTOR = "system:maintenance"
#: the summary of an update is at most this long (incidents.schemas.MAX_SUMMARY)
SUMMARY_CHARS = 320
#: `session.info` key: ids of windows whose change the caller decides on as a whole afterwards (an edit of
#: their incident made by the change itself does not void their schedule on its own)
CHANGING = "maintenance.changing"
#: the incident status a notice's update moves to
NOTICE_STATUS = {"completed": IncidentStatus.resolved, "cancelled": IncidentStatus.resolved}

#: right before a notice is sent: the Authority to publish it with when the window's schedule approval covers it,
#: or None when it waits (maintenance/schedule.py `authorize`, which the runner passes in)
Authorize = Callable[[Session, MaintenanceWindow, MaintenanceNotice], "gate.Authority | None"]


# --- reading -----------------------------------------------------------------------------------------------


def get_window(session: Session, window_id: int) -> MaintenanceWindow:
    window = session.get(MaintenanceWindow, window_id)
    if window is None:
        raise NotFound(f"Maintenance window {window_id} does not exist.", field="maintenance_id")
    return window


def notices(session: Session, window_id: int) -> list[MaintenanceNotice]:
    stmt = select(MaintenanceNotice).where(MaintenanceNotice.maintenance_id == window_id)
    return list(session.scalars(stmt.order_by(MaintenanceNotice.due_at, MaintenanceNotice.id)))


def list_windows(
    session: Session, *, state: WindowState | None = None, limit: int = 50, cursor: int | None = None
) -> list[MaintenanceWindow]:
    """Newest first (keyset on id); `limit + 1` rows so the caller knows there is more."""
    stmt: Select[MaintenanceWindow] = select(MaintenanceWindow).order_by(MaintenanceWindow.id.desc()).limit(limit + 1)
    if state is not None:
        stmt = stmt.where(MaintenanceWindow.state == state.value)
    if cursor is not None:
        stmt = stmt.where(MaintenanceWindow.id < cursor)
    return list(session.scalars(stmt))


def to_out(session: Session, window: MaintenanceWindow, *, with_notices: bool = True) -> MaintenanceOut:
    category = session.get(Category, window.category_id)
    return MaintenanceOut(
        id=window.id,
        title=window.title,
        message=window.message,
        services=list(window.services or []),
        category=category.slug if category else "",
        starts_at=window.starts_at,
        ends_at=window.ends_at,
        state=WindowState(window.state),
        notify=dict(window.notify or {}),
        revision=window.revision,
        incident_id=window.incident_id,
        started_at=window.started_at,
        ended_at=window.ended_at,
        cancelled_at=window.cancelled_at,
        created_by=window.created_by,
        created_at=window.created_at,
        approval=approval_out(window),
        notices=[NoticeOut.model_validate(n) for n in notices(session, window.id)] if with_notices else [],
    )


def approval_out(window: MaintenanceWindow) -> ScheduleApprovalOut:
    """The approval of the window's schedule, as the API shows it."""
    return ScheduleApprovalOut(
        state=window.approval_state or "undecided",
        reason=window.approval_reason,
        etag=window.approval_etag,
        requested_by=window.approval_requested_by,
        requested_at=window.approval_requested_at,
        decided_by=window.approval_decided_by,
        decided_at=window.approval_decided_at,
        comment=window.approval_comment,
        voided=window.approval_voided,
    )


def snapshot(window: MaintenanceWindow) -> dict[str, Any]:
    """What the audit log keeps of a window."""
    return {
        "title": window.title,
        "services": list(window.services or []),
        "starts_at": window.starts_at,
        "ends_at": window.ends_at,
        "state": window.state,
        "notify": dict(window.notify or {}),
        "revision": window.revision,
    }


# --- planning ----------------------------------------------------------------------------------------------


def _check_services(session: Session, slugs: list[str]) -> None:
    known = set(session.scalars(select(Service.slug).where(Service.slug.in_(slugs))))
    for i, slug in enumerate(slugs):
        if slug not in known:
            raise Unprocessable(
                f"Unknown service {slug!r}; define it with POST /v1/services first.",
                field=f"services.{i}",
                code="unknown_service",
            )


def _check_times(starts_at: datetime, ends_at: datetime, *, start_field: str | None = "starts_at") -> None:
    if ends_at <= starts_at:
        raise Unprocessable("ends_at: must be after starts_at.", field="ends_at")
    now = clock.now()
    if start_field is not None and starts_at <= now:
        raise Unprocessable(f"{start_field}: must be in the future (now is {now.isoformat()}).", field=start_field)
    if ends_at <= now:
        raise Unprocessable(f"ends_at: must be in the future (now is {now.isoformat()}).", field="ends_at")


def _add_notice(
    session: Session, window: MaintenanceWindow, kind: str, due_at: datetime, *, notify: bool, minutes: int = 0
) -> MaintenanceNotice:
    notice = MaintenanceNotice(
        maintenance_id=window.id,
        revision=window.revision,
        kind=kind,
        minutes_before=minutes,
        notify=notify,
        due_at=due_at,
        state="pending",
    )
    session.add(notice)
    return notice


def _plan(session: Session, window: MaintenanceWindow, *, start: bool) -> None:
    """Plan the window's future notices for its current revision: reminders still ahead, the start (when it has
    not started) and the end. Start and end are always planned: they move the services (silent when the window's
    `notify` says so)."""
    notify = window.notify or {}
    now = clock.now()
    if start:
        for hours in notify.get("hours_before", []):
            due = window.starts_at - timedelta(hours=hours)
            if due > now:
                _add_notice(session, window, "reminder", due, notify=True, minutes=hours * 60)
        _add_notice(session, window, "started", window.starts_at, notify=bool(notify.get("at_start", True)))
    _add_notice(session, window, "completed", window.ends_at, notify=bool(notify.get("at_end", True)))


def create(session: Session, data: MaintenanceIn, actor: str) -> MaintenanceWindow:
    """Plan a window: its incident (info, no update yet), the "created" notice due now, and the others."""
    from broadcaster.routing.service import get_category

    category = get_category(session, data.category, field="category")
    _check_services(session, data.services)
    _check_times(data.starts_at, data.ends_at)
    incident = incidents.create_incident(
        session,
        IncidentIn(
            title=f"Maintenance: {data.title}",
            category=category.slug,
            severity=Severity.info,
            status=IncidentStatus.identified,
            affected_services=data.services,
        ),
        actor,
    )
    window = MaintenanceWindow(
        title=data.title,
        message=data.message,
        services=data.services,
        category_id=category.id,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        state=WindowState.scheduled.value,
        notify=data.notify.model_dump(),
        revision=0,
        incident_id=incident.id,
        previous_states={},
        created_by=actor,
    )
    session.add(window)
    session.flush()
    _add_notice(session, window, "created", clock.now(), notify=data.notify.at_creation)
    _plan(session, window, start=True)
    content_changed(session)
    session.flush()
    return window


def lock_window(session: Session, window_id: int) -> MaintenanceWindow:
    """Hold the window's incident's row, then the window's, until commit (no-op UPDATEs: the row locks on
    PostgreSQL, the write lock on SQLite), then load it fresh: an API change, an edit of the incident and the
    runner never interleave on one window, and all take the locks in the same order."""
    _lock_incident_of(session, window_id)
    session.execute(
        update(MaintenanceWindow)
        .where(MaintenanceWindow.id == window_id)
        .values(revision=MaintenanceWindow.revision)
        .execution_options(synchronize_session=False)
    )
    window = session.get(MaintenanceWindow, window_id, populate_existing=True)
    if window is None:
        raise NotFound(f"Maintenance window {window_id} does not exist.", field="maintenance_id")
    return window


def _supersede_pending(session: Session, window: MaintenanceWindow, reason: str, *, keep: tuple[str, ...] = ()) -> int:
    stmt = (
        update(MaintenanceNotice)
        .where(MaintenanceNotice.maintenance_id == window.id, MaintenanceNotice.state == "pending")
        .values(state="superseded", reason=reason[:300])
        .execution_options(synchronize_session=False)
    )
    if keep:
        stmt = stmt.where(MaintenanceNotice.kind.not_in(keep))
    return int(getattr(session.execute(stmt), "rowcount", 0) or 0)


def _lock_incident_of(session: Session, window_id: int) -> None:
    incident_id = session.scalar(select(MaintenanceWindow.incident_id).where(MaintenanceWindow.id == window_id))
    if incident_id is not None:
        approval.lock_incident(session, incident_id)


def _published_any(session: Session, window: MaintenanceWindow) -> bool:
    stmt = select(MaintenanceNotice.id).where(
        MaintenanceNotice.maintenance_id == window.id, MaintenanceNotice.state == "sent"
    )
    return session.scalar(stmt.limit(1)) is not None


def _told(session: Session, window: MaintenanceWindow) -> bool:
    """Someone was told: a notice went out on the channels (not only to the public surfaces)."""
    return last_told_update(session, window) is not None


def last_told_update(session: Session, window: MaintenanceWindow) -> int | None:
    """The update of the last notice that went out on the channels (what a moved/cancelled notice corrects)."""
    stmt = (
        select(MaintenanceNotice.update_id)
        .where(
            MaintenanceNotice.maintenance_id == window.id,
            MaintenanceNotice.state == "sent",
            MaintenanceNotice.notify.is_(True),
            MaintenanceNotice.update_id.is_not(None),
        )
        .order_by(MaintenanceNotice.update_id.desc())
        .limit(1)
    )
    return session.scalar(stmt)


def _change_notice(session: Session, window: MaintenanceWindow, kind: str, detail: dict[str, Any]) -> None:
    """A "moved"/"cancelled" notice, due now, when anything was published: sent to those told (a correction of
    the last notice they received), or only to the public surfaces when nobody was told."""
    if not _published_any(session, window):
        return
    notice = _add_notice(session, window, kind, clock.now(), notify=_told(session, window))
    notice.reason = _change_reason(detail)[:300]


def _change_reason(detail: dict[str, Any]) -> str:
    """The previous times a "moved" notice names (kept on the notice; the text is rendered when sent)."""
    start, end = detail.get("starts_at"), detail.get("ends_at")
    return f"was {time_range(start, end)}" if start and end else ""


def move(session: Session, window_id: int, patch: MaintenancePatch, actor: str) -> tuple[MaintenanceWindow, dict]:
    """Change the times (and/or title, message). Pending notices are planned again for the new times, and
    anyone told already gets a "moved" notice. Returns the window and its snapshot before."""
    window = lock_window(session, window_id)
    before = snapshot(window)
    values = patch.model_dump(exclude_unset=True)
    for name in ("title", "starts_at", "ends_at"):
        if name in values and values[name] is None:
            raise Unprocessable(f"{name}: must not be null.", field=name)
    if window.state not in (WindowState.scheduled.value, WindowState.in_progress.value):
        raise Conflict(f"Maintenance window {window_id} is {window.state}; it can no longer change.", field="state")
    starts_at = values.get("starts_at", window.starts_at)
    ends_at = values.get("ends_at", window.ends_at)
    moved = starts_at != window.starts_at or ends_at != window.ends_at
    if window.state == WindowState.in_progress.value and starts_at != window.starts_at:
        raise Unprocessable("starts_at: the window has started; only ends_at can move.", field="starts_at")
    if moved:
        started = window.state == WindowState.in_progress.value
        _check_times(starts_at, ends_at, start_field=None if started else "starts_at")
    if "title" in values:
        window.title = values["title"]
        incident = session.get(Incident, window.incident_id) if window.incident_id else None
        if incident is not None:
            changing: set[int] = session.info.setdefault(CHANGING, set())
            changing.add(window.id)  # the caller decides on the whole change (maintenance/schedule.py)
            try:
                # the gate decides (door incident.edit): a live incident at APPROVAL_SEVERITY gets a change request
                retitle = IncidentPatch(title=f"Maintenance: {window.title}")
                incidents.update_incident(session, incident.id, retitle, gate.Authority(actor))
            finally:
                changing.discard(window.id)
    if "message" in values and values["message"] is not None:
        window.message = values["message"]
    if moved:
        window.starts_at, window.ends_at = starts_at, ends_at
        window.revision += 1
        _supersede_pending(session, window, f"moved (revision {window.revision})", keep=("created",))
        _plan(session, window, start=window.state == WindowState.scheduled.value)
        _change_notice(session, window, "moved", before)
    window.updated_at = utcnow()
    content_changed(session)
    session.flush()
    return window, before


def cancel(session: Session, window_id: int, actor: str) -> tuple[MaintenanceWindow, dict]:
    """Cancel a scheduled or running window: its pending notices are dropped, services in maintenance because
    of it go back, its incident is resolved, and anyone told gets a "cancelled" notice."""
    window = lock_window(session, window_id)
    before = snapshot(window)
    if window.state not in (WindowState.scheduled.value, WindowState.in_progress.value):
        raise Conflict(f"Maintenance window {window_id} is already {window.state}.", field="state")
    was_running = window.state == WindowState.in_progress.value
    now = clock.now()
    _supersede_pending(session, window, "cancelled")
    window.state = WindowState.cancelled.value
    window.cancelled_at = now
    if was_running:
        _restore_services(session, window, actor)
    _change_notice(session, window, "cancelled", {})
    incident = session.get(Incident, window.incident_id) if window.incident_id else None
    if incident is not None and not _published_any(session, window):  # else the "cancelled" notice resolves it
        incident.set_status(IncidentStatus.resolved)
    window.updated_at = utcnow()
    content_changed(session)
    session.flush()
    return window, before


# --- services ----------------------------------------------------------------------------------------------


def _set_state(session: Session, svc: Service, state: str, window: MaintenanceWindow, actor: str) -> None:
    from broadcaster.services.service import set_state

    set_state(session, svc, state, actor=actor, maintenance_id=window.id, incident_id=window.incident_id)


def _services(session: Session, window: MaintenanceWindow) -> list[Service]:
    slugs = list(window.services or [])
    return list(session.scalars(select(Service).where(Service.slug.in_(slugs)))) if slugs else []


def _running_elsewhere(session: Session, window: MaintenanceWindow) -> set[str]:
    """Services another running window also holds in maintenance."""
    stmt = select(MaintenanceWindow.services).where(
        MaintenanceWindow.state == WindowState.in_progress.value, MaintenanceWindow.id != window.id
    )
    return {slug for services in session.scalars(stmt) for slug in services or []}


def _start_services(session: Session, window: MaintenanceWindow, actor: str) -> None:
    """Services -> maintenance, remembering what each was (a service already in maintenance because of another
    window keeps that window's remembered state)."""
    previous: dict[str, str] = {}
    others: dict[str, str] = {}
    stmt = select(MaintenanceWindow.previous_states).where(
        MaintenanceWindow.state == WindowState.in_progress.value, MaintenanceWindow.id != window.id
    )
    for states in session.scalars(stmt):
        others.update(states or {})
    for svc in _services(session, window):
        previous[svc.slug] = others.get(svc.slug, "operational") if svc.state == "maintenance" else svc.state
        _set_state(session, svc, "maintenance", window, actor)
    window.previous_states = previous


def _restore_services(session: Session, window: MaintenanceWindow, actor: str) -> None:
    """Back to what they were before the window (operational when unknown), but only services still in
    maintenance and not held by another running window: a state an incident set meanwhile stays."""
    held = _running_elsewhere(session, window)
    remembered = window.previous_states or {}
    for svc in _services(session, window):
        if svc.state != "maintenance" or svc.slug in held:
            continue
        back = remembered.get(svc.slug, "operational")
        _set_state(session, svc, "operational" if back == "maintenance" else back, window, actor)


# --- notice text -------------------------------------------------------------------------------------------


def _zone() -> ZoneInfo | None:
    name = get_settings().site_timezone.strip()
    if not name or name.upper() == "UTC":
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _fmt(instant: datetime, zone: ZoneInfo | None = None) -> str:
    local = instant.astimezone(zone) if zone else instant
    return f"{local:%a %d %b %Y %H:%M}"


def time_range(starts_at: datetime, ends_at: datetime) -> str:
    """`Tue 08 Dec 2026 22:00 - 23:30 UTC`, plus the site's time zone when SITE_TIMEZONE names one."""
    end = f"{ends_at:%H:%M}" if ends_at.date() == starts_at.date() else _fmt(ends_at)
    text = f"{_fmt(starts_at)} - {end} UTC"
    zone = _zone()
    if zone is not None:
        ls, le = starts_at.astimezone(zone), ends_at.astimezone(zone)
        lend = f"{le:%H:%M}" if le.date() == ls.date() else _fmt(ends_at, zone)
        text += f" ({_fmt(starts_at, zone)} - {lend} {ls.tzname()})"
    return text


def _service_names(session: Session, window: MaintenanceWindow) -> str:
    names = {s.slug: s.name for s in _services(session, window)}
    return ", ".join(names.get(slug, slug) for slug in window.services or [])


def _until(starts_at: datetime, now: datetime) -> str:
    minutes = max(1, round((starts_at - now).total_seconds() / 60))
    if minutes < 90:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours = round(minutes / 60)
    return f"{hours} hours"


@dataclass
class NoticeText:
    summary: str
    body: str


def render(session: Session, window: MaintenanceWindow, notice: MaintenanceNotice, now: datetime) -> NoticeText:
    """The text of a notice, from the window as it is when the notice is sent."""
    when = time_range(window.starts_at, window.ends_at)
    services = _service_names(session, window)
    heads = {
        "created": f"Scheduled maintenance: {window.title}",
        "reminder": f"Maintenance in {_until(window.starts_at, now)}: {window.title}",
        "started": f"Maintenance in progress: {window.title}",
        "completed": f"Maintenance completed: {window.title}",
        "moved": f"Maintenance moved: {window.title}",
        "cancelled": f"Maintenance cancelled: {window.title}",
    }
    head = heads[notice.kind]
    if notice.kind == "completed":
        line = f"Maintenance of {services} is over; everything is back in service."
        summary = f"{head}. {services} back in service."
    elif notice.kind == "cancelled":
        line = f"The maintenance planned for {when} will not take place."
        summary = f"{head} (was {when})."
    elif notice.kind == "started":
        line = f"Until {_fmt(window.ends_at)} UTC. Affected: {services}."
        summary = f"{head}, until {_fmt(window.ends_at)} UTC. Affected: {services}."
    else:
        line = f"When: {when}\nAffected: {services}"
        summary = f"{head}. {when}. Affected: {services}."
        if notice.kind == "moved" and notice.reason:
            line += f"\n(Previously planned: {notice.reason.removeprefix('was ')})"
    body = f"{head}\n\n{line}"
    if window.message.strip() and notice.kind not in ("completed", "cancelled"):
        body += f"\n\n{window.message.strip()}"
    if len(summary) > SUMMARY_CHARS:
        summary = summary[: SUMMARY_CHARS - 1].rstrip() + "…"
    return NoticeText(summary=summary, body=body)


# --- sending -----------------------------------------------------------------------------------------------


def due_notices(session: Session, now: datetime, limit: int = 100) -> list[tuple[int, int]]:
    """(notice id, window id) of pending notices due at `now`, oldest first; a window whose schedule waits for
    approval (or was rejected) has none (its notices wait: nothing of it happens until a second person approves;
    a window not decided yet is the runner's to decide)."""
    stmt = (
        select(MaintenanceNotice.id, MaintenanceNotice.maintenance_id)
        .join(MaintenanceWindow, MaintenanceWindow.id == MaintenanceNotice.maintenance_id)
        .where(MaintenanceNotice.state == "pending", MaintenanceNotice.due_at <= now)
        .where((MaintenanceNotice.retry_at.is_(None)) | (MaintenanceNotice.retry_at <= now))
        .where(MaintenanceWindow.approval_state.is_(None) | (MaintenanceWindow.approval_state == "approved"))
        .order_by(MaintenanceNotice.due_at, MaintenanceNotice.id)
        .limit(limit)
    )
    return [(int(a), int(b)) for a, b in session.execute(stmt)]


def _take_window(session: Session, window_id: int) -> bool:
    """Lock the window for this transaction: `FOR UPDATE SKIP LOCKED` on PostgreSQL (another runner holding
    it: skip, it is being served), the write lock on SQLite (writers queue). False when skipped. Its incident
    is locked first (blocking), the order every writer of a window follows (`lock_window`)."""
    if session.get_bind().dialect.name == "postgresql":
        _lock_incident_of(session, window_id)
        stmt = select(MaintenanceWindow.id).where(MaintenanceWindow.id == window_id).with_for_update(skip_locked=True)
        return session.scalar(stmt) is not None
    lock_window(session, window_id)
    return True


def _claim(session: Session, notice_id: int, runner: str, now: datetime) -> bool:
    """Claim a pending notice in this transaction; False when another runner sent it, or it is not due."""
    result = session.execute(
        update(MaintenanceNotice)
        .where(
            MaintenanceNotice.id == notice_id,
            MaintenanceNotice.state == "pending",
            MaintenanceNotice.due_at <= now,
        )
        .values(claimed_by=runner[:64], claimed_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


def _skip(notice: MaintenanceNotice, reason: str) -> str:
    notice.state = "skipped"
    notice.reason = reason[:300]
    return "skipped"


def send_notice(session: Session, notice_id: int, window_id: int, runner: str, authorize: Authorize) -> str | None:
    """Send one due notice in the caller's transaction: "sent", "skipped", "waiting" (the window's schedule
    approval does not cover it: `authorize` recorded why, and nothing of the window changes), or None when
    another runner has it.

    Stale notices: a "created" or "reminder" notice not sent before the start is skipped (the start notice
    tells the news); a "started" one after the end is skipped (the services still go to maintenance and back,
    so the history shows it). Either way it is marked, so it is never looked at again.
    """
    now = clock.now()
    if not _take_window(session, window_id) or not _claim(session, notice_id, runner, now):
        return None
    window = session.get(MaintenanceWindow, window_id, populate_existing=True)
    notice = session.get(MaintenanceNotice, notice_id, populate_existing=True)
    if window is None or notice is None:
        return None
    who = authorize(session, window, notice)
    if who is None:
        return "waiting"
    kind = notice.kind
    if kind in ("created", "reminder"):
        if window.state != WindowState.scheduled.value:
            return _skip(notice, f"the window is {window.state}")
        if now >= window.starts_at:
            return _skip(notice, "stale: the window had started when the worker could send it")
    elif kind == "started":
        if window.state != WindowState.scheduled.value:
            return _skip(notice, f"the window is {window.state}")
        _begin(session, window, now)
        if now >= window.ends_at:
            return _skip(notice, "stale: the window had ended when the worker could send it")
    elif kind == "completed":
        if window.state == WindowState.scheduled.value:  # its start was never processed: do it now
            _begin(session, window, now)
        if window.state != WindowState.in_progress.value:
            return _skip(notice, f"the window is {window.state}")
        window.state = WindowState.completed.value
        window.ended_at = now
        _restore_services(session, window, ACTOR)
    _publish(session, window, notice, now, who)
    return "sent"


def _begin(session: Session, window: MaintenanceWindow, now: datetime) -> None:
    window.state = WindowState.in_progress.value
    window.started_at = now
    _start_services(session, window, ACTOR)
    content_changed(session)


def notice_update(
    session: Session,
    window: MaintenanceWindow,
    notice: MaintenanceNotice,
    now: datetime,
    service_states: dict[str, ServiceState] | None = None,
) -> UpdateIn:
    """The update a notice publishes, its text rendered at `now` (the runner: the moment it sends; the
    schedule's approval: the notice's due time)."""
    text = render(session, window, notice, now)
    kind, corrects = UpdateKind.normal, None
    channels: list[str] | None = None
    if notice.kind in ("moved", "cancelled"):
        corrects = last_told_update(session, window) if notice.notify else None
        if corrects is not None:
            kind = UpdateKind.correction  # to exactly those the last notice reached, on its channels
    if not notice.notify or (notice.kind in ("moved", "cancelled") and corrects is None):
        channels = []  # public surfaces only
    return UpdateIn(
        body=text.body,
        summary=text.summary,
        kind=kind,
        corrects=corrects,
        status=NOTICE_STATUS.get(notice.kind),
        channels=channels,
        service_states=service_states,
    )


def _publish(
    session: Session, window: MaintenanceWindow, notice: MaintenanceNotice, now: datetime, who: gate.Authority
) -> None:
    incident = session.get(Incident, window.incident_id) if window.incident_id else None
    if incident is None:  # deleted by an admin: the window carries on, its notices are only recorded
        _skip(notice, "the window's incident no longer exists")
        return
    held = None
    if NOTICE_STATUS.get(notice.kind) is IncidentStatus.resolved:
        # the window decides its services' states (already restored): resolving its incident must not reset
        # them (publishing returns an incident's affected services to operational except those it names)
        held = {svc.slug: ServiceState(svc.state) for svc in _services(session, window)} or None
    data = notice_update(session, window, notice, now, held)
    row = incidents.add_update(session, incident, data, ACTOR)
    result = publishing.publish(session, row.id, who, door="maintenance.notice")
    if result.approval_required:  # authorize applied the send rule already: a notice's update never waits
        raise RuntimeError(f"the gate held notice {notice.id} back at send time (it should have waited)")
    notice.state = "sent"
    notice.sent_at = now
    notice.update_id = row.id
    notice.last_error = ""
    audit.record(
        session,
        ACTOR,
        "maintenance.notice",
        "maintenance",
        window.id,
        after={"notice_id": notice.id, "kind": notice.kind, "update_id": row.id, "notify": notice.notify},
    )


def record_failure(session: Session, notice_id: int, error: str, now: datetime) -> None:
    """A failed attempt (its transaction rolled back): count it and try again later (capped backoff)."""
    notice = session.get(MaintenanceNotice, notice_id)
    if notice is None or notice.state != "pending":
        return
    notice.attempts += 1
    notice.last_error = error[:2000]
    notice.retry_at = now + timedelta(seconds=min(300, 5 * 2 ** min(notice.attempts, 6)))


# --- public surfaces ---------------------------------------------------------------------------------------


def public_windows(session: Session) -> list[dict[str, Any]]:
    """Scheduled and running windows, soonest first, for the status page (and its JSON)."""
    stmt = (
        select(MaintenanceWindow)
        .where(MaintenanceWindow.state.in_((WindowState.scheduled.value, WindowState.in_progress.value)))
        .order_by(MaintenanceWindow.starts_at, MaintenanceWindow.id)
    )
    rows = list(session.scalars(stmt))
    slugs = {slug for w in rows for slug in w.services or []}
    names = {s.slug: s.name for s in session.scalars(select(Service).where(Service.slug.in_(slugs)))} if slugs else {}
    return [
        {
            "id": w.id,
            "title": w.title,
            "message": w.message,
            "state": w.state,
            "starts_at": w.starts_at,
            "ends_at": w.ends_at,
            "when": time_range(w.starts_at, w.ends_at),
            "services": [{"slug": s, "name": names.get(s, s)} for s in w.services or []],
            "incident_id": w.incident_id,
        }
        for w in rows
    ]


def maintenance_incident_ids(session: Session, *, running: bool | None = None) -> set[int]:
    """Incidents that carry maintenance notices (`running`: only of windows in progress / only of the others)."""
    stmt = select(MaintenanceWindow.incident_id).where(MaintenanceWindow.incident_id.is_not(None))
    if running is True:
        stmt = stmt.where(MaintenanceWindow.state == WindowState.in_progress.value)
    elif running is False:
        stmt = stmt.where(MaintenanceWindow.state != WindowState.in_progress.value)
    return {int(i) for i in session.scalars(stmt) if i is not None}
