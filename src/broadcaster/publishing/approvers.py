"""Who may approve now: a person or key that recently gained the power to approve waits APPROVER_GRANT_DELAY
(users/grants.py records the grants), so that one admin cannot mint a "second person" in the moment.

Both identities of a caller count: the person (a console session, or the owner of the key used) and the key
itself. Accounts and keys older than the `role_grants` table have no row, so they count as granted long ago.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from broadcaster import clock
from broadcaster.errors import Forbidden
from broadcaster.models import RoleGrant, User
from broadcaster.security import Principal
from broadcaster.settings import get_settings


def grant_delay() -> timedelta:
    """APPROVER_GRANT_DELAY (0: nobody waits)."""
    return get_settings().approver_grant_delay


def approve_from(row: RoleGrant) -> datetime | None:
    """When the grant's holder may approve (None: the grant delays nothing, or the delay is off)."""
    delay = grant_delay()
    return row.at + delay if row.delays_approval and delay else None


def when(at: datetime) -> str:
    """An instant as the messages and e-mails show it."""
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def actor_label(session: Session, actor: str) -> str:
    """`user:<id>` as `email (user:<id>)`; other actors as recorded."""
    kind, _, ident = actor.partition(":")
    if kind == "user" and ident.isdigit():
        email = session.scalar(select(User.email).where(User.id == int(ident)))
        if email:
            return f"{email} ({actor})"
    return actor


def what(row: RoleGrant) -> str:
    """The grant in words: 'the approver role to bob@example.org', 'API key 'x' with the publish scope'."""
    names = " and ".join(row.roles)
    plural = "s" if len(row.roles) > 1 else ""
    if row.kind == "key":
        return f"a new API key '{row.target_label}' with the {names} scope{plural}"
    if row.kind == "password":
        return f"a new password to {row.target_label} ({names})"
    return f"the {names} role{plural} to {row.target_label}"


# --- the decision --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApprovalWait:
    """Why and until when a caller may not approve yet."""

    may_approve_from: datetime
    granted_at: datetime
    granted_by: str
    via: str
    what: str

    def message(self) -> str:
        return (
            f"Not yet: {self.what} granted at {when(self.granted_at)} by {self.granted_by} through the {self.via}; "
            f"may approve from {when(self.may_approve_from)}. A new approver waits APPROVER_GRANT_DELAY so that "
            "every admin is told first."
        )


def approval_wait(session: Session, principal: Principal, now: datetime | None = None) -> ApprovalWait | None:
    """When `principal` may approve: None for now, else the newest grant that makes them wait.

    Both identities of a caller count: the person (a console session, or the owner of the key used) and the
    key itself. The delay is today's APPROVER_GRANT_DELAY (0: nobody waits)."""
    delay = grant_delay()
    if not delay:
        return None
    targets = []
    if principal.user_id is not None:
        targets.append((RoleGrant.target_type == "user") & (RoleGrant.target_id == principal.user_id))
    if principal.key_id is not None:
        targets.append((RoleGrant.target_type == "api_key") & (RoleGrant.target_id == principal.key_id))
    if not targets:
        return None
    row = session.scalars(
        select(RoleGrant)
        .where(or_(*targets), RoleGrant.delays_approval.is_(True))
        .order_by(RoleGrant.at.desc(), RoleGrant.id.desc())
        .limit(1)
    ).first()
    if row is None or row.at + delay <= (now or clock.now()):
        return None
    return ApprovalWait(
        may_approve_from=row.at + delay,
        granted_at=row.at,
        granted_by=actor_label(session, row.granted_by),
        via=row.via,
        what=what(row),
    )


def check_may_approve(session: Session, principal: Principal) -> None:
    """403 naming when the caller may approve, while a recent grant makes them wait."""
    wait = approval_wait(session, principal)
    if wait is not None:
        raise Forbidden(
            wait.message(),
            field="Authorization",
            code="approver_grant_delay",
            may_approve_from=wait.may_approve_from.isoformat(),
        )


def check_second_person(session: Session, who: Principal, requester: str | None, *, asked: str = "asked for") -> None:
    """The one test of "a second person" at every approval (updates, change requests, maintenance schedules,
    routing-map versions): not whoever `asked` for it (people compare: a person's console session and every key
    they own are one `user:<id>`), and not someone waiting out a recent role grant. 403 otherwise."""
    if requester is not None and requester == who.actor:
        raise Forbidden(
            f"The approver must be a different person than the one who {asked} it: a second person must approve.",
            field="Authorization",
        )
    check_may_approve(session, who)
