"""Publishing an update: approval rule, state change, incident status, fan-out and banner refresh."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from broadcaster import audit, hooks
from broadcaster.delivery.entrypoints import start_broadcast
from broadcaster.domain import UpdateState
from broadcaster.errors import Conflict, Forbidden
from broadcaster.invalidation import content_changed
from broadcaster.models import Incident, Update, utcnow
from broadcaster.publishing import approval, approvers, changes, gate
from broadcaster.publishing import confirm as confirmation

if TYPE_CHECKING:
    from broadcaster.security import Principal


@dataclass
class PublishResult:
    update: Update
    broadcast_id: int | None
    approval_required: bool = False
    #: the content ETag the requester asked to publish (when approval is required)
    etag: str | None = None


#: `publish(confirm=...)` default: the door does not ask for the typed confirmation (automation doors)
NOT_ASKED = object()


def publish(
    session: Session,
    update_id: int,
    who: gate.Authority,
    door: str = "update.publish",
    *,
    confirm: str | object | None = NOT_ASKED,
) -> PublishResult:
    """Publish a draft through `door`, as the gate decides (publishing/gate.py, the send rule): now, or after a
    second person's approval (the update waits in `pending_approval` with the content ETag it was asked for).

    A person's door passes `confirm` (what they typed, or None): a critical live send that goes out now needs
    the incident's title there (publishing/confirm.py; 422 otherwise, nothing changes). The decision is taken
    under the incident's lock, so the update cannot turn live in between, and audited."""
    update = approval.lock_update(session, update_id)
    if update.state == UpdateState.published.value:
        raise Conflict(f"Update {update_id} is already published.", field="update_id", code="already_published")
    incident = update.incident
    verdict = gate.decide_send(session, door, update, who)
    gate.record(session, verdict, who.actor, "update", update.id, incident_id=incident.id)
    if verdict.decision is gate.Decision.refused:
        raise Forbidden(verdict.reason, field="Authorization", code="refused_by_gate", door=verdict.door)
    if verdict.decision is gate.Decision.second_person:
        before = approval.rejection_state(update)
        update.state = UpdateState.pending_approval.value
        update.published_by = who.actor
        update.approval_etag = approval.content_etag(session, update)
        audit.record(
            session,
            who.actor,
            "update.request_approval",
            "update",
            update.id,
            before=before,
            after=approval.rejection_state(update),
            etag=update.approval_etag,
            reason=verdict.reason,
        )
        session.flush()
        return PublishResult(update, None, approval_required=True, etag=update.approval_etag)
    if confirm is not NOT_ASKED:
        confirmation.check(update, confirm if isinstance(confirm, str) else None)
    return _do_publish(session, update, incident, who.actor)


def approve(
    session: Session, update_id: int, who: Principal, if_match: str | None, confirm: str | None = None
) -> PublishResult:
    """Approve a pending update (by someone other than the requester) and publish it.

    The approver `who` must not be waiting out a recent role grant (`approvers.approval_wait`: 403 naming
    when they may approve). `if_match` must carry the content ETag the approver reviewed (preview or GET while
    pending): 428 without it, 412 when the content changed since, or since the requester asked (e.g. the
    routing map changed). A critical update needs `confirm`, the incident's title (publishing/confirm.py: 422).
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
    approvers.check_second_person(session, who, requester)
    current = approval.content_etag(session, update)
    approval.check_if_match(if_match, current)
    if update.approval_etag != current:
        raise approval.PreconditionFailed(
            "The content changed after approval was requested (for example the routing map, a template or a "
            "contact detail); the requester must publish again to request approval of the current content.",
            field="If-Match",
            current_etag=current,
        )
    confirmation.check(update, confirm)
    update.approved_by = actor
    gate.record(
        session,
        gate.Verdict("update.approve", gate.Decision.now, "a second person approved the content they previewed"),
        actor,
        "update",
        update.id,
        requester=requester,
    )
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
        changes.void_pending(
            session, incident.id, actor, ["status"], cause=f"update {update.id} moved the incident's status"
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
