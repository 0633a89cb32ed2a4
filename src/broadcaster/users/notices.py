"""Approvals that reach people (issue 21): who can approve a pending update, telling them, and escalating.

- **Who can approve** (`approvers_for`): active people whose roles can approve (approver or admin), not the
  requester, and not waiting out a recent role grant (publishing/approvers.py: APPROVER_GRANT_DELAY).
- **Telling them.** The console shows every pending request live (a badge, a sound, an announcement: GET
  /console/approvals/live.json). Besides, each person may opt in to e-mail, SMS or a webhook
  (`NotificationPref`, PUT /v1/users/me/notifications). `tick` (the runner beside every worker) queues those
  messages through the delivery engine (`queue_system`: the service's own adapters, durable like any delivery)
  in the same transaction that writes one `approval_notices` row per person and round. The row is unique, so a
  second runner or a restart never tells anyone twice; a runner killed before its commit left nothing behind.
  A person who becomes able to approve later (their grant delay ends) or opts in while the request waits is told
  at the next tick.
- **Escalation.** A request of a critical incident still pending APPROVAL_ESCALATE_MINUTES after it was made
  escalates once (`approval_escalations`, audited as `update.approval_escalated`): every admin who may approve is
  asked too, and the approvers are reminded (round `escalation`).

The request itself is the `update.request_approval` audit entry: its id names the request, its time is when it
was made (a rejected and re-requested update is a new request).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from broadcaster import audit, clock
from broadcaster.delivery.entrypoints import queue_system
from broadcaster.domain import Priority, Severity, UpdateState, normalize_phone
from broadcaster.models import AuditEntry, Update, User, utcnow
from broadcaster.models.users import ApprovalEscalation, ApprovalNotice, NotificationPref
from broadcaster.publishing.approvers import approval_wait, when
from broadcaster.security import Principal
from broadcaster.sessions import scopes_for
from broadcaster.settings import Settings, get_settings

log = logging.getLogger(__name__)

#: roles whose holders can approve
APPROVING_ROLES = frozenset({"approver", "admin"})
#: the actor the runner records
SYSTEM_ACTOR = "system:approval-notices"
REQUEST_ROUND = "request"
ESCALATION_ROUND = "escalation"


# --- preferences ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prefs:
    """A person's channels for approval notices besides the console."""

    email: bool = False
    sms: str | None = None
    webhook: str | None = None

    def channels(self, user: User) -> dict[str, str]:
        """channel -> address."""
        out: dict[str, str] = {}
        if self.email and user.email:
            out["email"] = user.email
        if self.sms:
            out["sms"] = self.sms
        if self.webhook:
            out["webhook"] = self.webhook
        return out


def prefs_of(session: Session, user_id: int) -> Prefs:
    row = session.get(NotificationPref, user_id)
    return Prefs() if row is None else Prefs(bool(row.email), row.sms, row.webhook)


def clean_sms(value: str | None) -> str | None:
    """E.164 or None; ValueError naming the problem."""
    if value is None or not value.strip():
        return None
    return normalize_phone(value)


def clean_webhook(value: str | None) -> str | None:
    """An http(s) URL or None; ValueError naming the problem."""
    if value is None or not value.strip():
        return None
    url = value.strip()
    if not url.lower().startswith(("https://", "http://")) or len(url) > 500 or any(c.isspace() for c in url):
        raise ValueError("must be an http:// or https:// URL of at most 500 characters")
    return url


def set_prefs(session: Session, user: User, prefs: Prefs, actor: str) -> Prefs:
    """Save the person's notice channels (audited as `user.notifications`, the webhook masked)."""
    from broadcaster.masking import mask_url

    row = session.get(NotificationPref, user.id)
    before = prefs_of(session, user.id)
    if row is None:
        row = NotificationPref(user_id=user.id)
        session.add(row)
    row.email, row.sms, row.webhook, row.updated_at = prefs.email, prefs.sms, prefs.webhook, utcnow()

    def shown(p: Prefs) -> dict[str, Any]:
        return {"email": p.email, "sms": p.sms, "webhook": mask_url(p.webhook) if p.webhook else None}

    audit.record(session, actor, "user.notifications", "user", user.id, before=shown(before), after=shown(prefs))
    session.flush()
    return prefs


# --- who can approve -----------------------------------------------------------------------------------


def _principal(user: User) -> Principal:
    return Principal(key_id=None, name=user.email, scopes=scopes_for(user.roles or []), user_id=user.id)


def approvers_for(session: Session, requester: str | None, now: datetime | None = None) -> list[User]:
    """Everyone who may approve a request of `requester` now (by name)."""
    people = session.scalars(select(User).where(User.active.is_(True)).order_by(User.name, User.email)).all()
    return [
        u
        for u in people
        if APPROVING_ROLES & set(u.roles or [])
        and f"user:{u.id}" != requester
        and approval_wait(session, _principal(u), now) is None
    ]


def label(user: User) -> str:
    return user.name or user.email


# --- pending requests ----------------------------------------------------------------------------------


@dataclass
class Request:
    """One pending approval request of an update."""

    update: Update
    #: the `update.request_approval` audit entry's id (None: made before the audit entry existed)
    request_id: int | None
    requested_at: datetime | None
    requester: str | None
    escalation: ApprovalEscalation | None = None
    notified: dict[str, list[int]] = field(default_factory=dict)

    @property
    def critical(self) -> bool:
        return self.update.incident.severity == Severity.critical.value


def pending_requests(session: Session, update_ids: list[int] | None = None) -> list[Request]:
    """Updates waiting for a second person (oldest first), each with its request and escalation."""
    stmt = select(Update).where(Update.state == UpdateState.pending_approval.value).order_by(Update.id)
    if update_ids is not None:
        stmt = stmt.where(Update.id.in_(update_ids))
    updates = list(session.scalars(stmt))
    if not updates:
        return []
    latest = dict(
        session.execute(
            select(AuditEntry.target_id, func.max(AuditEntry.id))
            .where(
                AuditEntry.action == "update.request_approval",
                AuditEntry.target_type == "update",
                AuditEntry.target_id.in_([str(u.id) for u in updates]),
            )
            .group_by(AuditEntry.target_id)
        ).all()
    )
    entries = {e.id: e for e in session.scalars(select(AuditEntry).where(AuditEntry.id.in_(latest.values())))}
    escalations = {
        e.request_id: e
        for e in session.scalars(select(ApprovalEscalation).where(ApprovalEscalation.request_id.in_(entries)))
    }
    out = []
    for u in updates:
        entry = entries.get(latest.get(str(u.id), -1))
        out.append(
            Request(
                update=u,
                request_id=entry.id if entry else None,
                requested_at=entry.at if entry else None,
                requester=u.published_by,
                escalation=escalations.get(entry.id) if entry else None,
            )
        )
    return out


# --- the notices ---------------------------------------------------------------------------------------


def link(settings: Settings, update_id: int) -> str:
    return f"{settings.public_url.rstrip('/')}/console/approvals#update-{update_id}"


def compose(session: Session, settings: Settings, req: Request, escalated: bool) -> dict[str, dict[str, Any]]:
    """The notice per channel (`text`, and `subject` for e-mail): incident title, severity, requester, link."""
    incident = req.update.incident
    who = _actor_name(session, req.requester)
    url = link(settings, req.update.id)
    since = when(req.requested_at) if req.requested_at else "earlier"
    head = "ESCALATED: approval still needed" if escalated else "Approval needed"
    subject = f"[{settings.org_name}] {head}: {incident.title} ({incident.severity})"[:200]
    lines = [
        f"{who} asked at {since} for a second person to approve update {req.update.id} of the incident "
        f"“{incident.title}” (severity {incident.severity}).",
    ]
    if escalated:
        minutes = settings.approval_escalate_minutes
        lines.append(f"Nobody has approved it after {minutes:g} minutes, so every admin is asked too.")
    lines += [
        "",
        f"Review it, then approve or reject it: {url}",
        "",
        f"You get this because you asked for approval notices under My notifications "
        f"({settings.public_url.rstrip('/')}/console/notifications).",
    ]
    text = "\n".join(lines)
    sms = f"{settings.org_name}: {head.lower()} for “{incident.title[:60]}” ({incident.severity}) from {who}. {url}"
    return {
        "email": {"subject": subject, "text": text},
        "sms": {"text": sms},
        "webhook": {"subject": subject, "text": text},
    }


def _actor_name(session: Session, actor: str | None) -> str:
    if actor and actor.startswith("user:") and actor[5:].isdigit():
        user = session.get(User, int(actor[5:]))
        if user is not None:
            return label(user)
    return actor or "someone"


def _told(session: Session, request_id: int, round_: str) -> set[int]:
    return set(
        session.scalars(
            select(ApprovalNotice.user_id).where(
                ApprovalNotice.request_id == request_id, ApprovalNotice.round == round_
            )
        )
    )


def _notify(session: Session, settings: Settings, req: Request, people: list[User], round_: str, now: datetime) -> int:
    """Queue the notices of `round_` to those of `people` who opted in and were not told in it yet; rows written
    in this transaction. The number of people told."""
    assert req.request_id is not None
    told = _told(session, req.request_id, round_)
    content = compose(session, settings, req, escalated=round_ == ESCALATION_ROUND)
    addresses: dict[str, list[str]] = defaultdict(list)
    count = 0
    for user in people:
        if user.id in told:
            continue
        channels = prefs_of(session, user.id).channels(user)
        if not channels:
            continue
        for channel, address in channels.items():
            addresses[channel].append(address)
        session.add(
            ApprovalNotice(
                request_id=req.request_id,
                update_id=req.update.id,
                user_id=user.id,
                round=round_,
                channels=sorted(channels),
                at=now,
            )
        )
        count += 1
    session.flush()  # the unique rows first: a concurrent runner's duplicate fails here, before anything is queued
    lane = min(int(Priority.for_send(req.update.incident.severity)), int(Priority.major))
    for channel, to in addresses.items():
        queue_system(session, channel, to, {**content[channel], "approval_notice": True}, lane)
    return count


def escalation_targets(session: Session, req: Request, now: datetime) -> list[User]:
    """The next approvers: every admin who may approve (they may not have been asked), then the approvers
    again (a reminder)."""
    people = approvers_for(session, req.requester, now)
    return sorted(people, key=lambda u: ("admin" not in (u.roles or []), label(u).lower()))


def due_escalation(settings: Settings, req: Request, now: datetime) -> bool:
    minutes = settings.approval_escalate_minutes
    return (
        bool(minutes)
        and req.critical
        and req.requested_at is not None
        and req.escalation is None
        and now - req.requested_at >= timedelta(minutes=minutes)
    )


def tick(session: Session, settings: Settings | None = None, now: datetime | None = None) -> dict[str, int]:
    """One look at every pending request (the caller commits): queue the notices not sent yet, escalate what is
    due. Counts of people told and requests escalated."""
    settings = settings or get_settings()
    now = now or clock.now()
    stats = {"told": 0, "escalated": 0}
    for req in pending_requests(session):
        if req.request_id is None:
            continue
        stats["told"] += _notify(session, settings, req, approvers_for(session, req.requester, now), "request", now)
        if due_escalation(settings, req, now):
            targets = escalation_targets(session, req, now)
            names = [label(u) for u in targets]
            req.escalation = ApprovalEscalation(request_id=req.request_id, update_id=req.update.id, at=now, to=names)
            session.add(req.escalation)
            session.flush()
            stats["told"] += _notify(session, settings, req, targets, ESCALATION_ROUND, now)
            audit.record(
                session,
                SYSTEM_ACTOR,
                "update.approval_escalated",
                "update",
                req.update.id,
                incident_id=req.update.incident_id,
                request_id=req.request_id,
                requested_at=req.requested_at.isoformat() if req.requested_at else None,
                to=names,
                minutes=settings.approval_escalate_minutes,
            )
            stats["escalated"] += 1
    return stats


def run_tick(settings: Settings | None = None, now: datetime | None = None) -> dict[str, int]:
    """`tick` in its own transaction; a concurrent runner's duplicate rolls this one back (nothing queued)."""
    from broadcaster.db import session_scope

    try:
        with session_scope() as session:
            return tick(session, settings, now)
    except IntegrityError:
        log.info("approval notices: another runner told the same people first; nothing queued twice")
        return {"told": 0, "escalated": 0}


# --- what the console shows ----------------------------------------------------------------------------


def waiting(req: Request, now: datetime) -> str:
    """How long a request has waited, in words."""
    if req.requested_at is None:
        return ""
    minutes = int((now - req.requested_at).total_seconds() // 60)
    if minutes < 1:
        return "less than a minute"
    if minutes < 120:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{minutes // 60} hours {minutes % 60} minutes"


def describe(
    session: Session, req: Request, now: datetime | None = None, people: list[User] | None = None
) -> dict[str, Any]:
    """A pending request as the console and the API show it: who can approve (`people`, when the caller knows
    them), since when, the escalation."""
    now = now or clock.now()
    if people is None:
        people = approvers_for(session, req.requester, now)
    incident = req.update.incident
    return {
        "update_id": req.update.id,
        "incident_id": incident.id,
        "title": incident.title,
        "severity": incident.severity,
        "requested_by": req.requester,
        "requested_by_name": _actor_name(session, req.requester),
        "requested_at": req.requested_at.isoformat() if req.requested_at else None,
        "waited": waiting(req, now),
        "waited_seconds": int((now - req.requested_at).total_seconds()) if req.requested_at else None,
        "approvers": [label(u) for u in people],
        "link": f"/console/approvals#update-{req.update.id}",
        "escalated_at": req.escalation.at.isoformat() if req.escalation else None,
        "escalated_at_text": when(req.escalation.at) if req.escalation else None,
        "escalated_to": list(req.escalation.to) if req.escalation else [],
        "escalates_at": (
            (req.requested_at + timedelta(minutes=get_settings().approval_escalate_minutes)).isoformat()
            if req.requested_at and req.critical and get_settings().approval_escalate_minutes and not req.escalation
            else None
        ),
    }


def live(session: Session, actor: str, can_approve: bool) -> dict[str, Any]:
    """The approvals badge and queue for one person: every pending request, `mine` marking their own; `count` is
    what they could act on (0 for someone who cannot approve)."""
    now = clock.now()
    items = []
    known: dict[str | None, list[User]] = {}  # who can approve depends only on the requester
    for req in pending_requests(session):
        if req.requester not in known:
            known[req.requester] = approvers_for(session, req.requester, now)
        item = describe(session, req, now, known[req.requester])
        item["mine"] = req.requester == actor
        items.append(item)
    count = sum(1 for i in items if not i["mine"]) if can_approve else 0
    return {"count": count, "items": items}
