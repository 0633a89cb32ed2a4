"""Publishing an update: approval rule, state change, incident status, fan-out and banner refresh."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from broadcaster import audit, hooks
from broadcaster.delivery.audience import audience_counts
from broadcaster.delivery.entrypoints import start_broadcast
from broadcaster.domain import Severity, UpdateState
from broadcaster.errors import Conflict, Forbidden
from broadcaster.invalidation import content_changed
from broadcaster.models import Incident, Update, utcnow
from broadcaster.publishing import approval, approvers
from broadcaster.settings import get_settings

if TYPE_CHECKING:
    from broadcaster.security import Principal


@dataclass
class PublishResult:
    update: Update
    broadcast_id: int | None
    approval_required: bool = False
    #: the content ETag the requester asked to publish (when approval is required)
    etag: str | None = None


def needs_approval(session: Session, incident: Incident, update: Update) -> bool:
    """A second person must approve a high-impact send (test sends excepted; `APPROVAL_SEVERITY=none` disables).

    High impact: the incident severity reaches `APPROVAL_SEVERITY` or did so within the last
    `APPROVAL_DOWNGRADE_WINDOW` (lowering it does not skip approval), or one channel would reach more than
    `APPROVAL_AUDIENCE_THRESHOLD` recipients (0 turns the audience rule off).
    """
    settings = get_settings()
    if update.test or settings.approval_severity == "none":
        return False
    level = Severity(settings.approval_severity)
    if Severity(incident.severity).rank >= level.rank or approval.recently_at_level(incident, level):
        return True
    if settings.approval_audience_threshold > 0:
        counts = audience_counts(session, update)
        return max(counts.values(), default=0) > settings.approval_audience_threshold
    return False


def publish(
    session: Session, update_id: int, actor: str, *, skip_approval: bool = False, live_allowed: bool = True
) -> PublishResult:
    """Publish a draft. High-impact updates first wait for a second person's approval.

    `live_allowed=False` (a caller with the write scope but not publish: an editor) publishes test updates
    itself; a live update from an editor always becomes a request for an approver's approval (decided under
    the lock, so the update cannot turn live in between)."""
    update = approval.lock_update(session, update_id)
    if update.state == UpdateState.published.value:
        raise Conflict(f"Update {update_id} is already published.", field="update_id", code="already_published")
    incident = update.incident
    editor_request = not live_allowed and not update.test
    if editor_request or (not skip_approval and needs_approval(session, incident, update)):
        before = approval.rejection_state(update)
        update.state = UpdateState.pending_approval.value
        update.published_by = actor
        update.approval_etag = approval.content_etag(session, update)
        audit.record(
            session,
            actor,
            "update.request_approval",
            "update",
            update.id,
            before=before,
            after=approval.rejection_state(update),
            etag=update.approval_etag,
        )
        session.flush()
        return PublishResult(update, None, approval_required=True, etag=update.approval_etag)
    return _do_publish(session, update, incident, actor)


def approve(session: Session, update_id: int, who: Principal, if_match: str | None) -> PublishResult:
    """Approve a pending update (by someone other than the requester) and publish it.

    The approver `who` must not be waiting out a recent role grant (`approvers.approval_wait`: 403 naming
    when they may approve). `if_match` must carry the content ETag the approver reviewed (preview or GET while
    pending): 428 without it, 412 when the content changed since, or since the requester asked (e.g. the
    routing map changed).
    """
    actor = who.actor
    update = approval.lock_update(session, update_id)
    if update.state != UpdateState.pending_approval.value:
        raise Conflict(
            f"Update {update_id} is not waiting for approval (state {update.state}); a change to the update or "
            "its incident returns a pending update to draft, and the requester must publish it again.",
            field="update_id",
            code="not_pending",
        )
    requester = update.published_by
    if requester == actor:
        raise Forbidden("The approver must be a different person than the requester.", field="Authorization")
    approvers.check_may_approve(session, who)
    current = approval.content_etag(session, update)
    approval.check_if_match(if_match, current)
    if update.approval_etag != current:
        raise approval.PreconditionFailed(
            "The content changed after approval was requested (for example the routing map, a template or a "
            "contact detail); the requester must publish again to request approval of the current content.",
            field="If-Match",
            current_etag=current,
        )
    update.approved_by = actor
    audit.record(
        session,
        actor,
        "update.approve",
        "update",
        update.id,
        before={"state": update.state, "requested_by": requester, "approved_by": None},
        after={"state": UpdateState.published.value, "requested_by": requester, "approved_by": actor},
        requester=requester,
        etag=current,
    )
    return _do_publish(session, update, update.incident, requester or actor)


def _do_publish(session: Session, update: Update, incident: Incident, actor: str) -> PublishResult:
    """Publish now: `actor` is recorded as the publisher (the requester, when a second key approved). The features
    act on it through `hooks.update_published` (its question opens, its service states apply)."""
    before = {"state": update.state, "published_at": update.published_at, "incident_status": incident.status}
    update.state = UpdateState.published.value
    update.published_at = utcnow()
    update.published_by = actor
    update.approval_etag = None
    if update.status and update.status != incident.status:
        incident.set_status(update.status)
        others = [u for u in incident.updates if u.id != update.id]
        approval.cancel_pending(
            session, others, actor, ["status"], cause=f"update {update.id} moved the incident's status"
        )
    incident.updated_at = utcnow()
    session.flush()
    for published in hooks.update_published.functions():
        published(session, update, incident, actor)
    broadcast_id = start_broadcast(session, update)
    content_changed(session)
    after = {"state": update.state, "published_at": update.published_at, "incident_status": incident.status}
    audit.record(
        session,
        actor,
        "update.publish",
        "update",
        update.id,
        before=before,
        after={**after, "broadcast_id": broadcast_id},
        broadcast_id=broadcast_id,
        test=bool(update.test),
    )
    return PublishResult(update, broadcast_id)
