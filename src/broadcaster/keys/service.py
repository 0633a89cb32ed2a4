"""Revoking API keys (the API and `broadcaster keys revoke` alike). Services take a session and never commit."""

from __future__ import annotations

from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.errors import NotFound
from broadcaster.models import ApiKey, utcnow
from broadcaster.security import mask_key


def revoke(session: Session, key_id: int, actor: str) -> ApiKey:
    """Revoke key `key_id` at once (again: a no-op), audited as `key.revoke`; 404 naming `key_id`."""
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFound(f"API key {key_id} does not exist.", field="key_id")
    before = {"revoked_at": row.revoked_at, "key": mask_key(row.prefix), "name": row.name}
    row.revoked_at = row.revoked_at or utcnow()
    after = {**before, "revoked_at": row.revoked_at}
    audit.record(session, actor, "key.revoke", "api_key", key_id, before=before, after=after)
    return row
