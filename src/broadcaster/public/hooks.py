"""Entry points the core calls into the public surfaces."""

from __future__ import annotations

from sqlalchemy.orm import Session


def content_changed(session: Session) -> None:
    """Public content changed in the caller's transaction: invalidate banner/feed caches after commit."""
