"""The approval of a maintenance window's schedule of notices (issue 19; docs/maintenance.md, "Approval").

The whole schedule is decided once, when the window is planned, moved, edited or cancelled (`decide`): the
gate's schedule rule (`gate.decide_schedule`) approves it at once when no unsent notice would be high impact;
otherwise its notices wait for a second person, who previews every one of them (`preview`: text per channel,
channels, audience, due time; the schedule ETag over all of it) and approves exactly that (`approve`, If-Match)
or rejects it (`reject`). Nobody approves their own request.

An approval is bound to content. Each unsent notice keeps the digest of its content that the approval covers
(`MaintenanceNotice.approved_digest`): the notice's update rendered at its due time and its content ETag
(`publishing.approval.content_etag`: incident fields, channels, audience, every channel's text), the notice's
time and the window's fields. Right before the runner sends a notice, `authorize` computes it again: a different
digest voids the approval (the gate decides again) and the notice waits. An edit of the window's incident voids
the approval at once (`incident_changed`, through `hooks.incident_changed`), and a second person must approve
again. Notices already sent stay sent.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from broadcaster import audit
from broadcaster.errors import Conflict, Forbidden
from broadcaster.incidents.schemas import UpdateIn
from broadcaster.maintenance import service
from broadcaster.maintenance.schemas import NoticePreviewOut, SchedulePreviewOut
from broadcaster.models import Incident, Update, utcnow
from broadcaster.models.maintenance import MaintenanceNotice, MaintenanceWindow
from broadcaster.publishing import approval, approvers, gate
from broadcaster.publishing.preview import preview as build_preview
from broadcaster.publishing.schemas import PreviewOut
from broadcaster.security import Principal
from broadcaster.settings import get_settings

DOOR = "maintenance.notice"
#: the audit log's target type of a window's schedule decisions (`gate.decision`, `maintenance.approve`,
#: `maintenance.reject`); the window's own changes stay under `maintenance`
TARGET = "maintenance_schedule"
PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"


@dataclass
class Planned:
    """An unsent notice, its unsaved update (rendered at its due time) and the digest of its content."""

    notice: MaintenanceNotice
    update: Update
    digest: str
    preview: PreviewOut | None = None


# --- what an approval covers ---------------------------------------------------------------------------------


def _unsaved(incident: Incident, data: UpdateIn) -> Update:
    """The update `incidents.add_update` would store for a notice, unsaved: nothing is added to the session, and
    the incident's timeline does not list it. The services' states a closing notice keeps (decided when it is
    sent) are left out: they change nothing on the services."""
    update = Update(
        kind=data.kind.value,
        corrects_id=data.corrects,
        state="draft",
        status=data.status.value if data.status else None,
        body=data.body,
        summary=data.summary,
        locale=data.locale,
        translations={},
        links=[],
        channels=data.channels,
        audience=None,
        test=data.test,
        service_states=None,
        area=None,
    )
    update.incident_id = incident.id
    set_committed_value(update, "incident", incident)  # no backref event: incident.updates stays as it is
    return update


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat()


def _digest(
    session: Session, window: MaintenanceWindow, notice: MaintenanceNotice, update: Update, pv: PreviewOut | None
) -> str:
    """The digest of one notice's content: the window, the notice's time, and its update's content ETag."""
    document = {
        "window": {
            "id": window.id,
            "title": window.title,
            "message": window.message,
            "services": list(window.services or []),
            "category_id": window.category_id,
            "starts_at": _iso(window.starts_at),
            "ends_at": _iso(window.ends_at),
            "notify": dict(window.notify or {}),
            "revision": window.revision,
        },
        "notice": {
            "id": notice.id,
            "kind": notice.kind,
            "revision": notice.revision,
            "minutes_before": notice.minutes_before,
            "notify": bool(notice.notify),
            "due_at": _iso(notice.due_at),
            "reason": notice.reason,
        },
        "content": approval.content_etag(session, update, pv),
    }
    raw = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def _incident(session: Session, window: MaintenanceWindow) -> Incident | None:
    return session.get(Incident, window.incident_id) if window.incident_id else None


def _planned(
    session: Session, window: MaintenanceWindow, incident: Incident | None, *, with_previews: bool = False
) -> list[Planned]:
    """Every unsent notice of the window, rendered as it would go out at its due time."""
    if incident is None:
        return []
    settings = get_settings()
    out = []
    for notice in service.notices(session, window.id):
        if notice.state != "pending":
            continue
        update = _unsaved(incident, service.notice_update(session, window, notice, notice.due_at))
        pv = build_preview(session, update, settings) if with_previews else None
        out.append(Planned(notice, update, _digest(session, window, notice, update, pv), pv))
    return out


def _etag(window: MaintenanceWindow, incident: Incident | None, planned: list[Planned]) -> str:
    """The schedule ETag: the window, its incident's public fields and every unsent notice's digest."""
    document = {
        "window": window.id,
        "incident": approval.snapshot(incident) if incident is not None else None,
        "notices": [[p.notice.id, p.digest] for p in planned],
    }
    raw = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return '"' + hashlib.sha256(raw.encode()).hexdigest()[:40] + '"'


def _label(notice: MaintenanceNotice) -> str:
    return f"{notice.kind} {notice.due_at.astimezone(UTC):%d %b %H:%M}"


def _approval_words(window: MaintenanceWindow) -> str:
    if window.approval_decided_by:
        return f"the approval by {window.approval_decided_by}"
    return "the gate's approval"


def state_of(window: MaintenanceWindow) -> dict[str, Any]:
    """The approval fields of a window, for the audit log's before/after."""
    return {
        "state": window.approval_state,
        "etag": window.approval_etag,
        "requested_by": window.approval_requested_by,
        "decided_by": window.approval_decided_by,
        "comment": window.approval_comment,
    }


# --- deciding ------------------------------------------------------------------------------------------------


def decide(
    session: Session, window: MaintenanceWindow, actor: str, *, cause: str, voided: str | None = None
) -> gate.Verdict:
    """Decide on the window's schedule as it is now (the gate's schedule rule), audited (`gate.decision`).

    Approved at once: every unsent notice keeps its digest (the runner sends it while the digest holds). A second
    person: the notices wait, each saying why, and `actor` is the requester (the runner's own re-decisions keep
    the previous one). An earlier approval no longer covers anything; `approval_voided` says why (`cause`).
    `voided`: a change from outside the schedule (an edit of its incident) voided the approval, so a second
    person approves again whatever the severity."""
    incident = _incident(session, window)
    planned = _planned(session, window, incident)
    if window.approval_state == APPROVED and planned:
        window.approval_voided = f"{_approval_words(window)} no longer covers the unsent notices: {cause}"[:500]
    if incident is None or not planned:
        verdict = gate.Verdict(DOOR, gate.Decision.now, "no notice is left to send")
    else:
        sends = [(_label(p.notice), p.update) for p in planned]
        verdict = gate.decide_schedule(session, DOOR, incident, sends, gate.Authority(actor), voided=voided)
    now = utcnow()
    etag = _etag(window, incident, planned)
    requester = actor if actor != service.ACTOR else (window.approval_requested_by or window.created_by)
    window.approval_state = APPROVED if verdict.now else PENDING
    window.approval_reason = verdict.reason[:300]
    window.approval_etag = etag
    window.approval_requested_by = requester
    window.approval_requested_at = now
    window.approval_decided_by = None
    window.approval_decided_at = now if verdict.now else None
    window.approval_comment = ""
    waiting = "" if verdict.now else f"waiting for a second person's approval of the schedule: {verdict.reason}"
    for p in planned:
        p.notice.approved_digest = p.digest if verdict.now else None
        p.notice.waiting_reason = waiting[:300]
    gate.record(
        session, verdict, actor, TARGET, window.id, etag=etag, cause=cause, notices=[p.notice.id for p in planned]
    )
    session.flush()
    return verdict


def incident_changed(session: Session, incident: Incident, fields: list[str], actor: str) -> None:
    """`hooks.incident_changed`: an edit of a window's incident voids the approval of its unsent notices; a
    second person approves again (the editor is the requester). A window's own change of its incident (its
    title) is decided on by that change as a whole (`service.CHANGING`)."""
    pending = select(MaintenanceNotice.maintenance_id).where(MaintenanceNotice.state == "pending")
    stmt = select(MaintenanceWindow.id).where(MaintenanceWindow.incident_id == incident.id)
    ids = session.scalars(stmt.where(MaintenanceWindow.id.in_(pending))).all()
    changing = session.info.get(service.CHANGING, set())
    for window_id in ids:
        if window_id in changing:
            continue
        window = service.lock_window(session, window_id)
        cause = f"incident {incident.id} edited ({', '.join(fields)}) by {actor}"
        decide(session, window, actor, cause=cause, voided=cause)


# --- sending -------------------------------------------------------------------------------------------------


def authorize(session: Session, window: MaintenanceWindow, notice: MaintenanceNotice) -> gate.Authority | None:
    """Right before the runner sends `notice` (window locked, notice claimed): the Authority to publish it with,
    or None when it waits (recorded on the notice and the window).

    A window planned before schedule approvals is decided first. The notice goes out only while the approval is
    current: its digest now equals the approved one (else the gate decides again). Approved by a second person:
    the Authority names that approval. Approved at once by the gate: the send rule still holds at send time (an
    audience grown past the threshold, an incident raised meanwhile: the gate decides again, and it waits)."""
    if window.approval_state is None:
        decide(session, window, service.ACTOR, cause="planned before schedule approvals existed")
    if window.approval_state != APPROVED:
        notice.waiting_reason = notice.waiting_reason or f"waiting: the schedule is {window.approval_state}"
        return None
    incident = _incident(session, window)
    if incident is None:
        return gate.Authority(service.ACTOR)  # nothing can be sent: the notice is only recorded as skipped
    update = _unsaved(incident, service.notice_update(session, window, notice, notice.due_at))
    if _digest(session, window, notice, update, None) != notice.approved_digest:
        cause = (
            f"notice {notice.id} ({notice.kind}) changed since {_approval_words(window)} (the window, its incident, "
            "the routing map or a template)"
        )
        decide(session, window, service.ACTOR, cause=cause)
        if window.approval_state != APPROVED:
            return None
    if window.approval_decided_by is None:
        why = gate.high_impact(session, incident, update)
        if why is not None:
            decide(session, window, service.ACTOR, cause=f"notice {notice.id} ({notice.kind}) at send time: {why}")
            if window.approval_state != APPROVED:
                return None
        return gate.Authority(service.ACTOR)
    return gate.Authority(
        service.ACTOR,
        automation=f"maintenance window {window.id} schedule approved by {window.approval_decided_by} "
        f"(ETag {window.approval_etag})",
    )


# --- the second person ---------------------------------------------------------------------------------------


def preview(session: Session, window_id: int) -> SchedulePreviewOut:
    """Every unsent notice exactly as it would go out at its due time, and the schedule ETag to approve."""
    window = service.get_window(session, window_id)
    incident = _incident(session, window)
    planned = _planned(session, window, incident, with_previews=True)
    notices = []
    for p in planned:
        assert p.preview is not None and incident is not None
        notices.append(
            NoticePreviewOut(
                notice_id=p.notice.id,
                kind=p.notice.kind,
                due_at=p.notice.due_at,
                notify=p.notice.notify,
                high_impact=gate.high_impact(session, incident, p.update),
                preview=p.preview,
            )
        )
    return SchedulePreviewOut(
        maintenance_id=window.id,
        etag=_etag(window, incident, planned),
        incident=approval.snapshot(incident) if incident is not None else None,
        approval=service.approval_out(window),
        notices=notices,
    )


def _check_if_match(if_match: str | None, current: str) -> None:
    """428 without If-Match (or `*`), 412 when no strong entity-tag in it is the current schedule ETag."""
    if if_match is None or not if_match.strip() or if_match.strip() == "*":
        raise approval.PreconditionRequired(
            "Approving a schedule needs the If-Match header carrying the ETag of the schedule you reviewed: "
            "GET /v1/maintenance/{id}/preview returns it in the ETag header and the `etag` field.",
            field="If-Match",
        )
    tags = [t.strip() for t in if_match.split(",")]
    if not any(not t.startswith("W/") and t.strip('"') == current.strip('"') for t in tags):
        raise approval.PreconditionFailed(
            "The schedule changed since the preview you approved (If-Match does not match the current ETag); "
            "preview it again and approve what it shows.",
            field="If-Match",
            current_etag=current,
        )


def _pending(session: Session, window_id: int, who: Principal, doing: str) -> MaintenanceWindow:
    window = service.lock_window(session, window_id)
    if window.approval_state != PENDING:
        raise Conflict(
            f"The schedule of maintenance window {window_id} is not waiting for approval (it is "
            f"{window.approval_state or 'undecided'}); a change to the window asks again.",
            field="maintenance_id",
            code="not_pending",
        )
    if window.approval_requested_by == who.actor:
        raise Forbidden(f"The requester cannot {doing} their own request: a second person must.", field="Authorization")
    return window


def approve(session: Session, window_id: int, who: Principal, if_match: str | None) -> MaintenanceWindow:
    """A second person approves the schedule they previewed: `if_match` must be its current ETag (428/412), and
    the one the request was for (412: ask again by changing the window). Not the requester; not someone waiting
    out a recent role grant (`approvers.check_may_approve`)."""
    window = _pending(session, window_id, who, "approve")
    approvers.check_second_person(session, who, window.approval_requested_by)
    incident = _incident(session, window)
    planned = _planned(session, window, incident)
    current = _etag(window, incident, planned)
    _check_if_match(if_match, current)
    if window.approval_etag != current:
        raise approval.PreconditionFailed(
            "The schedule changed after approval was requested (for example the routing map or a template); the "
            "requester asks again by changing the window (PATCH /v1/maintenance/{id}, an empty body will do).",
            field="If-Match",
            current_etag=current,
        )
    before = state_of(window)
    requester = window.approval_requested_by
    window.approval_state = APPROVED
    window.approval_decided_by = who.actor
    window.approval_decided_at = utcnow()
    for p in planned:
        p.notice.approved_digest = p.digest
        p.notice.waiting_reason = ""
    verdict = gate.Verdict(DOOR, gate.Decision.now, "a second person approved the schedule they previewed")
    gate.record(session, verdict, who.actor, TARGET, window.id, requester=requester, etag=current)
    after = state_of(window)
    audit.record(session, who.actor, "maintenance.approve", TARGET, window.id, before=before, after=after, etag=current)
    session.flush()
    return window


def reject(session: Session, window_id: int, who: Principal, comment: str) -> MaintenanceWindow:
    """Turn the schedule down with a comment: its notices keep waiting, saying so, until the window is changed
    (which asks again) or cancelled. Not the requester."""
    window = _pending(session, window_id, who, "reject")
    before = state_of(window)
    window.approval_state = REJECTED
    window.approval_decided_by = who.actor
    window.approval_decided_at = utcnow()
    window.approval_comment = comment
    for notice in service.notices(session, window.id):
        if notice.state == "pending":
            notice.approved_digest = None
            notice.waiting_reason = f"the schedule was rejected by {who.actor}: {comment}"[:300]
    after = state_of(window)
    audit.record(
        session, who.actor, "maintenance.reject", TARGET, window.id, before=before, after=after, comment=comment
    )
    session.flush()
    return window
