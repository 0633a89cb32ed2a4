"""Change requests (door `incident.edit`): a change to the public fields of a live incident at or above
APPROVAL_SEVERITY waits for a second person, who approves exactly the diff they saw (publishing/gate.py decides
when; publishing/changes.py keeps the content ETag and voids stale requests).

An incident has at most one pending request: a newer one supersedes it. Approving applies the changes through
the same code path as a PATCH the gate lets through at once (incidents/edits.py).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.errors import Conflict, Forbidden, NotFound
from broadcaster.incidents import edits
from broadcaster.models import Incident, utcnow
from broadcaster.models.changes import ChangeRequest
from broadcaster.publishing import approvers, gate
from broadcaster.publishing import changes as bookkeeping
from broadcaster.publishing.approval import PreconditionFailed, lock_incident, snapshot
from broadcaster.security import Principal

PENDING, APPLIED, REJECTED = "pending", "applied", "rejected"


def request(session: Session, incident: Incident, changes: dict[str, object], actor: str, reason: str) -> ChangeRequest:
    """Ask for `changes` ({field: new value}) to `incident`; supersedes its older pending request. Audited as
    `incident.change_request` (the fields' values now and requested, and why a second person is needed)."""
    bookkeeping.close_pending(
        session, incident.id, actor, state="superseded", cause="a newer change request of the incident"
    )
    base = snapshot(incident)
    row = ChangeRequest(
        incident_id=incident.id,
        state=PENDING,
        changes=dict(changes),
        base=base,
        reason=reason[:300],
        requested_by=actor,
        requested_at=utcnow(),
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        "incident.change_request",
        "incident",
        incident.id,
        before={name: base[name] for name in changes},
        after=dict(changes),
        change_request=row.id,
        reason=reason,
    )
    return row


def get(session: Session, incident_id: int, change_id: int) -> ChangeRequest:
    """The incident's change request `change_id` (404 naming `change_id`)."""
    row = session.get(ChangeRequest, change_id, populate_existing=True)
    if row is None or row.incident_id != incident_id:
        raise NotFound(f"Incident {incident_id} has no change request {change_id}.", field="change_id")
    return row


def list_for(session: Session, incident_id: int) -> list[ChangeRequest]:
    """Every change request of the incident, newest first (404 naming `incident_id` for no such incident)."""
    if session.get(Incident, incident_id) is None:
        raise NotFound(f"Incident {incident_id} does not exist.", field="incident_id")
    stmt = select(ChangeRequest).where(ChangeRequest.incident_id == incident_id).order_by(ChangeRequest.id.desc())
    return list(session.scalars(stmt))


def _locked(session: Session, incident_id: int, change_id: int) -> tuple[Incident, ChangeRequest]:
    """Lock the incident, then read it and the pending request fresh (409 `not_pending` once decided)."""
    lock_incident(session, incident_id)
    incident = session.get(Incident, incident_id, populate_existing=True)
    if incident is None:
        raise NotFound(f"Incident {incident_id} does not exist.", field="incident_id")
    row = get(session, incident_id, change_id)
    if row.state != PENDING:
        raise Conflict(
            f"Change request {change_id} is {row.state}, not waiting for approval; a newer request or another change "
            "to the incident closes a pending one.",
            field="change_id",
            code="not_pending",
        )
    return incident, row


def approve(
    session: Session, incident_id: int, change_id: int, who: Principal, if_match: str | None
) -> tuple[Incident, ChangeRequest]:
    """Apply a pending change request: someone other than the requester, not waiting out a recent role grant,
    with If-Match carrying the request's content ETag (428 without it, 412 when the change or the incident
    changed since). Checked in that order after 404 and 409 `not_pending`, like an update's approval."""
    incident, row = _locked(session, incident_id, change_id)
    approvers.check_second_person(session, who, row.requested_by)
    current = bookkeeping.content_etag(row, incident)
    bookkeeping.check_if_match(if_match, current)
    if snapshot(incident) != row.base:
        raise PreconditionFailed(
            "The incident changed after this change was requested; the requester must ask again against the "
            "current content.",
            field="If-Match",
            current_etag=current,
        )
    gate.record(
        session,
        gate.Verdict("incident.edit", gate.Decision.now, "a second person approved the change they reviewed"),
        who.actor,
        "incident",
        incident.id,
        change_request=row.id,
        requester=row.requested_by,
    )
    previous = edits.apply(session, incident, dict(row.changes), who.actor, keep=row.id)
    row.state = APPLIED
    row.decided_by = who.actor
    row.decided_at = utcnow()
    audit.record(
        session,
        who.actor,
        "incident.change_approve",
        "incident",
        incident.id,
        before={"state": PENDING},
        after={"state": APPLIED},
        change_request=row.id,
        requester=row.requested_by,
        etag=current,
    )
    edits.audit_applied(
        session,
        who.actor,
        incident,
        previous,
        fields=sorted(row.changes),
        change_request=row.id,
        requester=row.requested_by,
    )
    session.flush()
    return incident, row


def reject(
    session: Session, incident_id: int, change_id: int, actor: str, comment: str
) -> tuple[Incident, ChangeRequest]:
    """Turn a pending change request down with a comment (not the requester: they ask again instead). Nothing
    changes on the incident. Audited as `incident.change_reject`."""
    incident, row = _locked(session, incident_id, change_id)
    if row.requested_by == actor:
        raise Forbidden(
            "The requester cannot reject their own change request; send a new PATCH instead (it supersedes this one).",
            field="Authorization",
        )
    row.state = REJECTED
    row.decided_by = actor
    row.decided_at = utcnow()
    row.comment = comment
    audit.record(
        session,
        actor,
        "incident.change_reject",
        "incident",
        incident.id,
        before={"state": PENDING},
        after={"state": REJECTED},
        change_request=row.id,
        requester=row.requested_by,
        comment=comment,
    )
    session.flush()
    return incident, row
