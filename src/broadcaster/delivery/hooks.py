"""Entry points the core calls into the delivery engine."""

from __future__ import annotations

from sqlalchemy.orm import Session

from broadcaster.models import Update


def start_broadcast(session: Session, update: Update) -> int | None:
    """Create the broadcast for a just-published update (in the caller's transaction); its id or None."""
    return None


def audience_counts(session: Session, update: Update) -> dict[str, int]:
    """Recipients per channel name that publishing `update` would reach (used by preview)."""
    return {}
