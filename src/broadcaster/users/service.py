"""User accounts: creation, roles, passwords (argon2id via argon2-cffi), and the scopes a person acts with.

Services take a session and never commit (the request or CLI command does).
"""

from __future__ import annotations

import contextlib
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from broadcaster.errors import Conflict, NotFound, Unprocessable
from broadcaster.models import ApiKey, ConsoleSession, User
from broadcaster.sessions import ROLES

MIN_PASSWORD = 10
MAX_PASSWORD = 1024


@lru_cache(maxsize=1)
def hasher() -> PasswordHasher:
    """argon2id with argon2-cffi's defaults (RFC 9106 low-memory profile)."""
    return PasswordHasher()


#: a hash to verify against when the account does not exist, so both cases take the same time
_DUMMY: list[str] = []


def normalize_email(email: str) -> str:
    return email.strip().lower()


def parse_roles(raw: list[str] | str, *, field: str = "roles") -> list[str]:
    """Validate role names (Unprocessable naming the field); an empty list is allowed (no access)."""
    items = [r.strip().lower() for r in (raw.split(",") if isinstance(raw, str) else raw) if r.strip()]
    for item in items:
        if item not in ROLES:
            raise Unprocessable(f"{field}: unknown role {item!r}; roles are {', '.join(ROLES)}", field=field)
    return sorted(set(items), key=ROLES.index)


def check_password(password: str, *, field: str = "password") -> None:
    if len(password) < MIN_PASSWORD:
        raise Unprocessable(f"{field}: use at least {MIN_PASSWORD} characters", field=field)
    if len(password) > MAX_PASSWORD:
        raise Unprocessable(f"{field}: use at most {MAX_PASSWORD} characters", field=field)
    if "\x00" in password:
        raise Unprocessable(f"{field}: must not contain NUL characters", field=field)


def hash_password(password: str) -> str:
    check_password(password)
    return hasher().hash(password)


def by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == normalize_email(email)))


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"User {user_id} does not exist.", field="user_id")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.id)))


def create_user(
    session: Session,
    email: str,
    name: str,
    roles: list[str],
    password: str | None = None,
    *,
    oidc_issuer: str | None = None,
    oidc_subject: str | None = None,
) -> User:
    """Create an account (409 when the email is taken)."""
    email = normalize_email(email)
    if session.scalar(select(func.count()).select_from(User).where(User.email == email)):
        raise Conflict(f"A user with the email {email} already exists.", field="email", code="email_taken")
    user = User(
        email=email,
        name=name.strip(),
        roles=parse_roles(roles),
        password_hash=hash_password(password) if password is not None else None,
        oidc_issuer=oidc_issuer,
        oidc_subject=oidc_subject,
        active=True,
    )
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    # a new password signs the person out everywhere
    session.execute(delete(ConsoleSession).where(ConsoleSession.user_id == user.id))


def deactivate(session: Session, user: User) -> None:
    """No more sign-in; sessions end; keys the person owns stop working (security.authenticate)."""
    user.active = False
    session.execute(delete(ConsoleSession).where(ConsoleSession.user_id == user.id))


def verify_password(user: User | None, password: str) -> bool:
    """Whether `password` is the user's (False for an unknown, inactive or SSO-only account, in similar time)."""
    if len(password) > MAX_PASSWORD:
        return False
    if not _DUMMY:
        _DUMMY.append(hasher().hash("not a password of anyone"))
    stored = user.password_hash if user is not None and user.password_hash else _DUMMY[0]
    ok = False
    with contextlib.suppress(VerificationError, InvalidHashError):
        ok = hasher().verify(stored, password)
    return ok and user is not None and user.active and bool(user.password_hash)


def rehash_if_needed(user: User, password: str) -> None:
    """Upgrade the stored hash when argon2's parameters changed since it was made."""
    if user.password_hash and hasher().check_needs_rehash(user.password_hash):
        user.password_hash = hasher().hash(password)


def owner_of(session: Session, key: ApiKey) -> User | None:
    return session.get(User, key.owner_user_id) if key.owner_user_id is not None else None
