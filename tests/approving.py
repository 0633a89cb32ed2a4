"""Approving a critical update needs its incident's title typed in `confirm` (issue 21, publishing/confirm.py)."""

from __future__ import annotations


def confirm(update_id: int | str) -> dict[str, str]:
    """The approve (or publish) body that confirms the send: the incident's title, read from the test database.
    Harmless for an update that is not critical (the server only checks it for critical ones)."""
    from broadcaster.db import session_scope
    from broadcaster.models import Update

    with session_scope() as session:
        update = session.get(Update, int(update_id))
        assert update is not None, f"update {update_id} does not exist"
        return {"confirm": update.incident.title}
