"""Role grants: nobody becomes a "second person" in the moment, and never silently.

A grant is a person given the approver or admin role (API, console, CLI, or the SSO role mapping at sign-in),
a new API key with the publish or admin scope (owned by anyone or nobody), or the password of a person who
can approve set by someone else (whoever set it can sign in as them). Each one is

- recorded in `role_grants` and audited as `role.grant` (who granted, to whom, which roles or scopes, through
  which door: api, console, cli, sso);
- announced to every admin: an e-mail to each active admin, queued through the delivery engine in the
  granting transaction (durable: a worker restart delays it, never drops it), and a notice on every console
  page until that admin acknowledges it or NOTICE_DAYS pass;
- when it gives a power to approve that the account or key did not have, a wait: the holder may approve only
  APPROVER_GRANT_DELAY after the grant (`publishing.approvers.approval_wait`, the one decision).

A grant made at the server (the CLI) while no other admin exists (a fresh install: the first admin, or the
README tour's keys made before any admin) takes effect at once: there is nobody to tell, and whoever runs the
CLI controls the server anyway. Through the API, the console or SSO a new approver always waits, even when one
admin is alone: that admin must not be able to mint a second person in the moment. Accounts and keys older
than the `role_grants` table have no row, so they count as granted long ago.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster import audit, clock
from broadcaster.models import ApiKey, RoleGrant, User
from broadcaster.publishing.approvers import actor_label, approve_from, what, when
from broadcaster.sessions import ROLES
from broadcaster.settings import get_settings

if TYPE_CHECKING:
    from broadcaster.security import Principal

#: roles whose grant is announced; each of them can approve (admin implies every scope)
APPROVE_ROLES = frozenset({"approver", "admin"})
#: key scopes that can approve
APPROVE_SCOPES = frozenset({"publish", "admin"})
#: how long an unacknowledged grant stays on the admins' console pages
NOTICE_DAYS = 7
#: at most this many grants in the console notice (the audit log has them all: action role.grant)
NOTICE_LIMIT = 20


def via_of(principal: Principal) -> str:
    """The door of an API request: the console (a session cookie) or the API (a key)."""
    return "console" if principal.is_session else "api"


# --- recording a grant ---------------------------------------------------------------------------------


def roles_granted(session: Session, user: User, before: Iterable[str], *, by: str, via: str) -> RoleGrant | None:
    """Record and announce the approver/admin roles `user` has now and had not in `before` (None: none)."""
    old, new = set(before), set(user.roles or [])
    gained = [r for r in ROLES if r in APPROVE_ROLES and r in new and r not in old]
    if not gained:
        return None
    return _grant(
        session, "roles", "user", user.id, user.email, gained, by=by, via=via, power=not (old & APPROVE_ROLES)
    )


def key_created(session: Session, key: ApiKey, *, by: str, via: str) -> RoleGrant | None:
    """Record and announce a new key that can approve (the publish or admin scope); None for other keys."""
    scopes = sorted(set(key.scopes or []) & APPROVE_SCOPES)
    if not scopes:
        return None
    return _grant(session, "key", "api_key", key.id, key.name, scopes, by=by, via=via, power=True)


def password_set(session: Session, user: User, *, by: str, via: str) -> RoleGrant | None:
    """Record and announce the password of a person who can approve, set by someone else (None otherwise)."""
    roles = [r for r in ROLES if r in APPROVE_ROLES and r in (user.roles or [])]
    if not roles or by == f"user:{user.id}":
        return None
    return _grant(session, "password", "user", user.id, user.email, roles, by=by, via=via, power=True)


def _grant(
    session: Session,
    kind: str,
    target_type: str,
    target_id: int,
    label: str,
    roles: list[str],
    *,
    by: str,
    via: str,
    power: bool,
) -> RoleGrant:
    by = by[:120]  # the audit log's actor column
    others = _another_admin(session, target_type, target_id)
    row = RoleGrant(
        at=clock.now(),
        granted_by=by,
        via=via,
        kind=kind,
        target_type=target_type,
        target_id=target_id,
        target_label=label[:254],
        roles=roles,
        delays_approval=power and (others or via != "cli"),
    )
    session.add(row)
    session.flush()
    until = approve_from(row)
    admins = _admin_emails(session)
    audit.record(
        session,
        by,
        "role.grant",
        target_type,
        target_id,
        kind=kind,
        via=via,
        to=row.target_label,
        roles=roles,
        may_approve_from=until,
        announced_to=admins,
    )
    if until is not None:
        wait = f"They may approve from {when(until)} (APPROVER_GRANT_DELAY), not before."
    elif not power:
        wait = "They could approve before this grant."
    elif not others:
        wait = "Made at the server (CLI) while no other admin existed (first set-up), so they can approve at once."
    else:
        wait = "APPROVER_GRANT_DELAY is off: they can approve at once."
    _announce(session, row, wait, admins)
    return row


def _another_admin(session: Session, target_type: str, target_id: int) -> bool:
    """Whether an active admin other than the grant's target exists (a person, or a live admin key)."""
    people = session.execute(select(User.id, User.roles).where(User.active.is_(True))).all()
    active = {uid for uid, _ in people}
    if any("admin" in (roles or []) for uid, roles in people if (target_type, target_id) != ("user", uid)):
        return True
    keys = session.execute(
        select(ApiKey.id, ApiKey.scopes, ApiKey.owner_user_id).where(ApiKey.revoked_at.is_(None))
    ).all()
    return any(
        "admin" in (scopes or [])
        and (target_type, target_id) != ("api_key", kid)
        and (owner is None or owner in active)
        and (target_type, target_id) != ("user", owner)
        for kid, scopes, owner in keys
    )


def _admin_emails(session: Session) -> list[str]:
    rows = session.execute(select(User.email, User.roles).where(User.active.is_(True)).order_by(User.id)).all()
    return [email for email, roles in rows if email and "admin" in (roles or [])]


# --- describing a grant --------------------------------------------------------------------------------


@dataclass(frozen=True)
class GrantNotice:
    """One grant as the console shows it to an admin."""

    id: int
    at: datetime
    by: str
    via: str
    text: str
    may_approve_from: datetime | None


def _notice(session: Session, row: RoleGrant) -> GrantNotice:
    return GrantNotice(
        id=row.id,
        at=row.at,
        by=actor_label(session, row.granted_by),
        via=row.via,
        text=what(row),
        may_approve_from=approve_from(row),
    )


def _announce(session: Session, row: RoleGrant, wait: str, admins: list[str]) -> None:
    """E-mail every active admin (through the delivery engine, in this transaction)."""
    from broadcaster.delivery.entrypoints import queue_mail

    settings = get_settings()
    by = actor_label(session, row.granted_by)
    subject = f"[{settings.org_name}] {row.target_label}: {' and '.join(row.roles)} granted"[:200]
    undo = (
        f"revoke the key (DELETE /v1/keys/{row.target_id}, or broadcaster keys revoke {row.target_id})"
        if row.target_type == "api_key"
        else f"change or remove the account's roles (PATCH /v1/users/{row.target_id})"
    )
    text = (
        f"{by} gave {what(row)} through the {row.via} at {when(row.at)}.\n"
        f"{wait}\n\n"
        f"Every admin gets this message. If you did not expect it, {undo} and read the audit log "
        f"(action role.grant): {settings.public_url.rstrip('/')}/console/audit\n"
    )
    queue_mail(session, admins, subject, text)


# --- the console notice --------------------------------------------------------------------------------


def notices_for(session: Session, user_id: int) -> list[GrantNotice]:
    """The grants of the last NOTICE_DAYS that the admin `user_id` has not acknowledged, oldest first."""
    seen = session.scalar(select(User.role_grants_seen_id).where(User.id == user_id)) or 0
    since = clock.now() - timedelta(days=NOTICE_DAYS)
    rows = session.scalars(
        select(RoleGrant)
        .where(RoleGrant.id > seen, RoleGrant.at >= since)
        .order_by(RoleGrant.id.desc())
        .limit(NOTICE_LIMIT)
    ).all()
    return [_notice(session, row) for row in reversed(rows)]


def acknowledge(session: Session, user: User, up_to: int) -> int:
    """The admin has seen every grant up to `up_to` (ids above the newest existing one are capped); the
    acknowledged id. Never moves backwards."""
    newest = session.scalar(select(RoleGrant.id).order_by(RoleGrant.id.desc()).limit(1)) or 0
    user.role_grants_seen_id = max(user.role_grants_seen_id or 0, min(up_to, newest))
    return user.role_grants_seen_id
