"""Audit trail: every state change records who, what and when, and (where it applies) before and after.

`before`/`after` are JSON snapshots of the target (None when it did not exist before / no longer exists).
They never hold a secret: keys whose name says secret (`key_hash`, `token`, `password`, ...) are masked the
way `/v1/channels` masks settings (`masking.mask`), and URLs (webhook targets carry their token) the way
delivery reports mask them. Read the log with `GET /v1/audit` (broadcaster.auditlog).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlalchemy.orm import Session

from broadcaster.masking import is_url, mask, mask_url
from broadcaster.models import AuditEntry

#: a key whose name contains one of these is a secret: only its last 4 characters are kept
SECRET_WORDS = ("secret", "password", "token", "key_hash", "api_key", "credential", "private_key", "signature")


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def _clean(value: Any) -> Any:
    """A JSON-safe copy: datetimes as ISO strings, enums as values, URLs carrying credentials masked."""
    if isinstance(value, Mapping):
        return safe(value)
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, str):
        return _masked_url(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


def _masked_url(value: str) -> str:
    """A URL with credentials before the host or a token in its query, masked like `/v1/channels` shows it."""
    if not is_url(value):
        return value
    head, _, query = value.partition("?")
    if "@" in head.split("/")[2] if head.count("/") >= 2 else False:
        return mask_url(value)
    if any(_is_secret(part.split("=")[0]) for part in query.split("&") if part):
        return mask_url(value)
    return value


def safe(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """`values` with secrets masked (`masking.mask`) and made JSON-safe; None stays None."""
    if values is None:
        return None
    out: dict[str, Any] = {}
    for name, value in values.items():
        key = str(name)
        out[key] = mask(value) if _is_secret(key) and value is not None else _clean(value)
    return out


def record_change(
    session: Session,
    actor: str,
    action: str,
    target_type: str,
    target_id: object,
    *,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    **detail: Any,
) -> None:
    """`record` an update of a target with only the fields that changed in `before`/`after` (`updated_at`,
    which every update moves, left out)."""
    changed = sorted(k for k in after if before.get(k) != after[k] and k != "updated_at")
    record(
        session,
        actor,
        action,
        target_type,
        target_id,
        before={k: before[k] for k in changed},
        after={k: after[k] for k in changed},
        **detail,
    )


def record(
    session: Session,
    actor: str,
    action: str,
    target_type: str,
    target_id: object,
    *,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    **detail: Any,
) -> None:
    """Add an audit entry to the caller's transaction (`before`/`after`: the target's state, secrets masked)."""
    session.add(
        AuditEntry(
            actor=actor,
            action=action,
            target_type=target_type,
            target_id=str(target_id),
            detail=safe(detail) or {},
            before=safe(before),
            after=safe(after),
        )
    )
