"""How the public surfaces learn that public content changed (broadcaster.hooks): this process's cached banner,
pages and feeds are dropped after the commit; before it, the CAP messages the change emits are written (cap_log)."""

from __future__ import annotations

from broadcaster import hooks
from broadcaster.public import cap_log
from broadcaster.public.cache import get_cache


def drop_cached(version: int) -> None:
    get_cache().invalidate(version)


hooks.public_content_changed.register(drop_cached)
hooks.public_content_committing.register(cap_log.on_commit)
