"""Publishing an update: approval rule, state change, incident status, fan-out and banner refresh."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.domain import Severity, UpdateState
from broadcaster.errors import Conflict, Forbidden
from broadcaster.incidents.service import get_update, set_status
from broadcaster.models import Incident, Update, utcnow
from broadcaster.settings import get_settings


@dataclass
class PublishResult:
    update: Update
    broadcast_id: int | None
    approval_required: bool = False


def needs_approval(session: Session, incident: Incident, update: Update) -> bool:
    """A second person must approve a high-impact send (test sends excepted; `APPROVAL_SEVERITY=none` disables).

    High impact: the incident severity reaches `APPROVAL_SEVERITY`, or one channel would reach more than
    `APPROVAL_AUDIENCE_THRESHOLD` recipients (0 turns the audience rule off).
    """
    settings = get_settings()
    if update.test or settings.approval_severity == "none":
        return False
    if Severity(incident.severity).rank >= Severity(settings.approval_severity).rank:
        return True
    if settings.approval_audience_threshold > 0:
        from broadcaster.delivery.hooks import audience_counts

        counts = audience_counts(session, update)
        return max(counts.values(), default=0) > settings.approval_audience_threshold
    return False


def publish(session: Session, update_id: int, actor: str, *, skip_approval: bool = False) -> PublishResult:
    """Publish a draft. High-impact updates first wait for a second person's approval."""
    update = get_update(session, update_id)
    if update.state == UpdateState.published.value:
        raise Conflict(f"Update {update_id} is already published.", field="update_id", code="already_published")
    incident = update.incident
    if not skip_approval and needs_approval(session, incident, update):
        update.state = UpdateState.pending_approval.value
        update.published_by = actor
        audit.record(session, actor, "update.request_approval", "update", update.id)
        session.flush()
        return PublishResult(update, None, approval_required=True)
    return _do_publish(session, update, incident, actor)


def approve(session: Session, update_id: int, actor: str) -> PublishResult:
    """Approve a pending update (by someone other than the requester) and publish it."""
    update = get_update(session, update_id)
    if update.state != UpdateState.pending_approval.value:
        raise Conflict(f"Update {update_id} is not waiting for approval.", field="update_id")
    requester = update.published_by
    if requester == actor:
        raise Forbidden("The approver must be a different person than the requester.", field="Authorization")
    update.approved_by = actor
    audit.record(session, actor, "update.approve", "update", update.id, requester=requester)
    return _do_publish(session, update, update.incident, requester or actor)


def _do_publish(session: Session, update: Update, incident: Incident, actor: str) -> PublishResult:
    """Publish now: `actor` is recorded as the publisher (the requester, when a second key approved)."""
    from broadcaster.delivery.hooks import start_broadcast
    from broadcaster.public.hooks import content_changed

    update.state = UpdateState.published.value
    update.published_at = utcnow()
    update.published_by = actor
    if update.status:
        set_status(incident, update.status)
    incident.updated_at = utcnow()
    session.flush()
    broadcast_id = start_broadcast(session, update)
    content_changed(session)
    audit.record(session, actor, "update.publish", "update", update.id, broadcast_id=broadcast_id)
    return PublishResult(update, broadcast_id)
