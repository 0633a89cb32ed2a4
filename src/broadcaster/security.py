"""API keys: generation, hashing, lookup and the `require_scope` dependency.

A key looks like `bk_<prefix>_<secret>`; only the prefix and a SHA-256 of the whole key are stored
(the key has 256 bits of entropy, so a slow hash buys nothing). `admin` implies every other scope.

A person signed in to the console is a caller too: without an API key, a valid console session cookie makes
the request a Principal with the scopes of the person's roles (sessions.ROLE_SCOPES); a state-changing
request made that way must carry the session's CSRF token (`X-CSRF-Token` or form field `csrf_token`). A key
owned by a person (`keys create --owner EMAIL`) acts as that person: both are `user:<id>`, so the two-person
rule sees one person, and the key stops working when its owner is deactivated.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster.deps import SessionDep
from broadcaster.errors import Forbidden, Unauthorized
from broadcaster.models import ApiKey, utcnow
from broadcaster.sessions import COOKIE_NAME, ConsoleUser, csrf_refused, csrf_valid, resolve, scopes_for


class Scope(StrEnum):
    read = "read"
    write = "write"
    publish = "publish"
    alerts = "alerts"
    #: read /metrics (a Prometheus scraper's key: `authorization: {credentials: <key>}` in its scrape config)
    metrics = "metrics"
    admin = "admin"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    #: the API key used (None for a console session)
    key_id: int | None
    #: the key's name, or the person's email for a console session
    name: str
    scopes: frozenset[str]
    #: the person acting: a console session's user, or the owner of the key
    user_id: int | None = None

    @property
    def actor(self) -> str:
        """The identity recorded in the audit log and compared by approvals: `user:<id>` for a person (their
        console session and their own keys alike), else `key:<name>`."""
        return f"user:{self.user_id}" if self.user_id is not None else f"key:{self.name}"

    @property
    def is_session(self) -> bool:
        return self.key_id is None

    def has(self, scope: Scope) -> bool:
        return Scope.admin in self.scopes or scope in self.scopes


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_scopes(raw: list[str] | str) -> list[str]:
    """Validate scope names; raises ValueError naming the unknown one."""
    items = [s.strip() for s in (raw.split(",") if isinstance(raw, str) else raw) if s.strip()]
    known = {s.value for s in Scope}
    for item in items:
        if item not in known:
            raise ValueError(f"unknown scope {item!r}; known scopes: {', '.join(sorted(known))}")
    if not items:
        raise ValueError("at least one scope is required")
    return sorted(set(items))


def create_key(session: Session, name: str, scopes: list[str], owner_user_id: int | None = None) -> tuple[ApiKey, str]:
    """Create a key (owned by a person when `owner_user_id` is given); returns the row and the plaintext key
    (shown once, never stored)."""
    prefix = secrets.token_hex(4)
    plaintext = f"bk_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        name=name,
        prefix=prefix,
        key_hash=hash_key(plaintext),
        scopes=parse_scopes(scopes),
        owner_user_id=owner_user_id,
    )
    session.add(row)
    session.flush()
    return row, plaintext


def mask_key(prefix: str) -> str:
    return f"bk_{prefix}_****"


def _extract_key(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return request.headers.get("x-api-key") or None


def lookup_key(session: Session, plaintext: str) -> ApiKey | None:
    parts = plaintext.split("_", 2)
    if len(parts) != 3 or parts[0] != "bk":
        return None
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == parts[1]))
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.key_hash, hash_key(plaintext)):
        return None
    return row


def authenticate(request: Request, session: SessionDep) -> Principal:
    """Resolve the caller from `Authorization: Bearer <key>` or `X-API-Key`; 401 when absent or invalid."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    plaintext = _extract_key(request)
    if not plaintext:
        principal = _session_principal(request, session)
        request.state.principal = principal
        return principal
    row = lookup_key(session, plaintext)
    if row is None or (row.owner_user_id is not None and not _owner_active(session, row.owner_user_id)):
        raise Unauthorized("The API key is invalid or revoked.", field="Authorization")
    principal = Principal(key_id=row.id, name=row.name, scopes=frozenset(row.scopes), user_id=row.owner_user_id)
    request.state.principal = principal
    _mark_used(row)
    return principal


def _owner_active(session: Session, user_id: int) -> bool:
    from broadcaster.models import User

    return bool(session.scalar(select(User.active).where(User.id == user_id)))


def _session_principal(request: Request, session: Session) -> Principal:
    """The person of the console session cookie (CSRF token checked on unsafe methods); 401 without one."""

    cookie = request.cookies.get(COOKIE_NAME)
    if not cookie:
        raise Unauthorized("An API key is required: send 'Authorization: Bearer <key>'.", field="Authorization")
    user = resolve(session, cookie)
    if user is None:
        raise Unauthorized("The console session has expired or ended; sign in again.", field=COOKIE_NAME)
    if not csrf_valid(request, user.csrf_token):
        raise csrf_refused()
    request.state.console_user = user
    return console_principal(user)


def console_principal(user: ConsoleUser) -> Principal:
    """A person signed in to the console, as the API sees them (the scopes of their roles)."""
    return Principal(key_id=None, name=user.email, scopes=scopes_for(user.roles), user_id=user.id)


#: `last_used_at` is refreshed at most this often, so reads do not each cost a write.
LAST_USED_GRANULARITY = timedelta(minutes=5)


def _mark_used(row: ApiKey) -> None:
    """Stamp `last_used_at` (committed with the request; a failed request leaves it alone)."""
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_GRANULARITY:
        row.last_used_at = now


def require_scope(scope: Scope) -> Callable[..., Principal]:
    """Dependency factory: the caller must hold `scope` (or `admin`), else 403."""

    return require_any_scope(scope)


def lacks(principal: Principal, *scopes: Scope) -> Forbidden:
    """The 403 for a caller without any of `scopes` (a person's roles, or a key's scopes)."""
    names = " or ".join(f"'{s.value}'" for s in scopes)
    if principal.is_session:
        detail = f"Your roles do not allow this (it needs the {names} scope)."
    else:
        detail = f"This API key lacks the {names} scope."
    return Forbidden(detail, field="Authorization", required_scope=scopes[0].value)


def require_any_scope(*scopes: Scope) -> Callable[..., Principal]:
    """Dependency factory: the caller must hold one of `scopes` (or `admin`), else 403."""

    def dependency(principal: Principal = Depends(authenticate)) -> Principal:
        if not any(principal.has(scope) for scope in scopes):
            raise lacks(principal, *scopes)
        return principal

    dependency.__name__ = "require_" + "_or_".join(s.value for s in scopes)
    return dependency
