"""API keys: generation, hashing, lookup and the `require_scope` dependency.

A key looks like `bk_<prefix>_<secret>`; only the prefix and a SHA-256 of the whole key are stored
(the key has 256 bits of entropy, so a slow hash buys nothing). `admin` implies every other scope.
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

    key_id: int
    name: str
    scopes: frozenset[str]

    @property
    def actor(self) -> str:
        return f"key:{self.name}"

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


def create_key(session: Session, name: str, scopes: list[str]) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the plaintext key (shown once, never stored)."""
    prefix = secrets.token_hex(4)
    plaintext = f"bk_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(name=name, prefix=prefix, key_hash=hash_key(plaintext), scopes=parse_scopes(scopes))
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
        raise Unauthorized("An API key is required: send 'Authorization: Bearer <key>'.", field="Authorization")
    row = lookup_key(session, plaintext)
    if row is None:
        raise Unauthorized("The API key is invalid or revoked.", field="Authorization")
    principal = Principal(key_id=row.id, name=row.name, scopes=frozenset(row.scopes))
    request.state.principal = principal
    _mark_used(row)
    return principal


#: `last_used_at` is refreshed at most this often, so reads do not each cost a write.
LAST_USED_GRANULARITY = timedelta(minutes=5)


def _mark_used(row: ApiKey) -> None:
    """Stamp `last_used_at` (committed with the request; a failed request leaves it alone)."""
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_GRANULARITY:
        row.last_used_at = now


def require_scope(scope: Scope) -> Callable[..., Principal]:
    """Dependency factory: the caller must hold `scope` (or `admin`), else 403."""

    def dependency(principal: Principal = Depends(authenticate)) -> Principal:
        if not principal.has(scope):
            raise Forbidden(
                f"This API key lacks the '{scope.value}' scope.", field="Authorization", required_scope=scope.value
            )
        return principal

    dependency.__name__ = f"require_{scope.value}"
    return dependency
