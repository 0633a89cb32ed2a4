"""Console sessions: who is signed in, their roles and what the roles may do (read by security.authenticate,
the console and the users package).

Sessions are server-side rows (`console_sessions`): the cookie carries a random id signed with SECRET_KEY
(itsdangerous), the table only its SHA-256, the person, the session's CSRF token and when it was created and
last seen. A session ends when idle for CONSOLE_SESSION_IDLE_MINUTES, after CONSOLE_SESSION_MAX_HOURS in all,
when its person is deactivated, or at sign-out (the row is deleted).

The cookie is `HttpOnly`, `SameSite=Lax` and `Secure` when PUBLIC_URL is https. Every state-changing request
authenticated by it must carry the session's CSRF token (form field `csrf_token` or header `X-CSRF-Token`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import anyio.from_thread
from fastapi import Request, Response
from itsdangerous import BadSignature, Signer
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from broadcaster.errors import Forbidden
from broadcaster.models import ConsoleSession, User, utcnow
from broadcaster.settings import get_settings

#: roles a person can hold (several at once)
ROLES = ("editor", "approver", "admin")
#: what each role may do through the API (admin: everything, as the `admin` scope implies every other)
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "editor": frozenset({"read", "write"}),
    "approver": frozenset({"read", "publish"}),
    "admin": frozenset({"admin"}),
}
#: the session cookie
COOKIE_NAME = "broadcaster_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
#: `last_seen_at` is written at most this often (a page load is not a write each time)
SEEN_GRANULARITY = timedelta(seconds=30)
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


@dataclass(frozen=True)
class ConsoleUser:
    """The person signed in to the console."""

    id: int
    email: str
    name: str
    roles: frozenset[str]
    #: the session's CSRF token: forms carry it as `csrf_token`, fetch() calls as the `X-CSRF-Token` header
    csrf_token: str

    @property
    def actor(self) -> str:
        """The identity recorded and compared by approvals ("user:<id>"), shared with keys the person owns."""
        return f"user:{self.id}"

    def has_role(self, role: str) -> bool:
        return "admin" in self.roles or role in self.roles


def scopes_for(roles: list[str] | frozenset[str]) -> frozenset[str]:
    out: set[str] = set()
    for role in roles:
        out |= ROLE_SCOPES.get(role, frozenset())
    return frozenset(out)


class LoginRequired(Exception):
    """Raised by `require_console_user` without a valid session: the app answers with a redirect to
    /console/login?next=<path> for pages (401 JSON for fetch/JSON requests)."""


# --- the cookie ----------------------------------------------------------------------------------------


def _signer() -> Signer:
    from broadcaster.signing import secret_key

    return Signer(secret_key(), salt="broadcaster.console-session")


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _unsign(cookie: str) -> str | None:
    try:
        return _signer().unsign(cookie.encode()).decode()
    except (BadSignature, UnicodeError):
        return None


def secure_cookies() -> bool:
    """Cookies are `Secure` when the service is served over https (PUBLIC_URL)."""
    return get_settings().public_url.lower().startswith("https://")


def set_session_cookie(response: Response, cookie: str) -> None:
    """Attach the session cookie (lives with the browser; the server enforces idle and absolute expiry)."""
    response.set_cookie(
        COOKIE_NAME,
        cookie,
        max_age=int(get_settings().console_session_max_hours * 3600),
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure_cookies(),
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="lax", secure=secure_cookies())


# --- the session rows ----------------------------------------------------------------------------------


def start_session(db: Session, user: User) -> str:
    """Create a session for `user` (in the caller's transaction); returns the signed cookie value."""
    session_id = secrets.token_urlsafe(32)
    now = utcnow()
    settings = get_settings()
    # sessions that ended by expiry without a visit since are removed here, so the table stays small
    db.execute(
        delete(ConsoleSession).where(
            (ConsoleSession.last_seen_at < now - timedelta(minutes=settings.console_session_idle_minutes))
            | (ConsoleSession.created_at < now - timedelta(hours=settings.console_session_max_hours))
        )
    )
    db.add(
        ConsoleSession(
            id_hash=_hash(session_id),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
        )
    )
    user.last_login_at = now
    db.flush()
    return _signer().sign(session_id.encode()).decode()


def end_session(db: Session, cookie: str | None) -> None:
    """Sign out: delete the session's row (an unknown or forged cookie is a no-op)."""
    session_id = _unsign(cookie) if cookie else None
    if session_id:
        db.execute(delete(ConsoleSession).where(ConsoleSession.id_hash == _hash(session_id)))


def _expired(row: ConsoleSession, now: datetime) -> bool:
    settings = get_settings()
    idle = timedelta(minutes=settings.console_session_idle_minutes)
    absolute = timedelta(hours=settings.console_session_max_hours)
    return now - row.last_seen_at > idle or now - row.created_at > absolute


def resolve(db: Session, cookie: str | None) -> ConsoleUser | None:
    """The person of a session cookie, or None (unsigned, unknown, expired, or the person is deactivated).
    An expired session's row is deleted and a live one's `last_seen_at` refreshed, in the caller's transaction
    (a refused API request rolls back: its row goes at the next sign-in's purge)."""
    session_id = _unsign(cookie) if cookie else None
    if not session_id:
        return None
    found = db.execute(
        select(ConsoleSession, User)
        .join(User, User.id == ConsoleSession.user_id)
        .where(ConsoleSession.id_hash == _hash(session_id))
    ).first()
    if found is None:
        return None
    row, user = found
    now = utcnow()
    if _expired(row, now) or not user.active:
        db.delete(row)
        return None
    if now - row.last_seen_at >= SEEN_GRANULARITY:
        row.last_seen_at = now
    return ConsoleUser(
        id=user.id,
        email=user.email,
        name=user.name,
        roles=frozenset(user.roles or []),
        csrf_token=row.csrf_token,
    )


# --- CSRF ----------------------------------------------------------------------------------------------


async def _read_form(request: Request) -> Any:
    return await request.form()


def _submitted_token(request: Request) -> str | None:
    """The CSRF token the request carries: the `X-CSRF-Token` header, else the form field `csrf_token`."""
    header = request.headers.get(CSRF_HEADER)
    if header is not None:
        return header
    if not request.headers.get("content-type", "").lower().startswith(_FORM_TYPES):
        return None
    form = getattr(request, "_form", None)  # already parsed (an endpoint with Form fields)
    if form is None:
        try:  # a sync dependency runs in a worker thread: parse the form on the event loop
            form = anyio.from_thread.run(_read_form, request)
        except RuntimeError:  # called on the event loop itself: only the header can be checked
            return None
    value = form.get(CSRF_FIELD)
    return value if isinstance(value, str) else None


def csrf_valid(request: Request, expected: str) -> bool:
    """Safe methods need no token; unsafe ones must carry the session's token."""
    if request.method.upper() not in _UNSAFE:
        return True
    token = _submitted_token(request)
    return token is not None and hmac.compare_digest(token.encode(), expected.encode())


def csrf_refused() -> Forbidden:
    return Forbidden(
        "This request needs the console session's CSRF token (form field csrf_token or header X-CSRF-Token).",
        field=CSRF_FIELD,
        code="csrf_failed",
    )


# --- the contract --------------------------------------------------------------------------------------


def console_user(request: Request) -> ConsoleUser | None:
    """The signed-in person of this request (from the session cookie), or None."""
    if "console_user" in request.state._state:
        cached: ConsoleUser | None = request.state.console_user
        return cached
    cookie = request.cookies.get(COOKIE_NAME)
    user = None
    if cookie:
        from broadcaster.db import session_scope

        with session_scope() as db:
            user = resolve(db, cookie)
    request.state.console_user = user
    return user


def require_console_user(request: Request) -> ConsoleUser:
    """FastAPI dependency for console pages: the signed-in person, or LoginRequired. For unsafe methods it
    also checks the CSRF token (form field `csrf_token` or header `X-CSRF-Token`): 403 naming csrf_token."""
    user = console_user(request)
    if user is None:
        raise LoginRequired()
    if not csrf_valid(request, user.csrf_token):
        raise csrf_refused()
    return user
