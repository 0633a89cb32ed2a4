"""Adapter discovery through the `broadcaster.channels` entry-point group (built-ins included)."""

from __future__ import annotations

import logging
from functools import lru_cache
from importlib.metadata import entry_points

from broadcaster.channels.base import Adapter
from broadcaster.domain import ChannelKind

log = logging.getLogger(__name__)

GROUP = "broadcaster.channels"


@lru_cache(maxsize=1)
def adapter_classes() -> dict[str, type[Adapter]]:
    """Every installed adapter class by name; a broken plugin is logged and skipped."""
    found: dict[str, type[Adapter]] = {}
    for ep in entry_points(group=GROUP):
        try:
            cls = ep.load()
        except Exception:
            log.exception("channel adapter %s failed to load; skipped", ep.name)
            continue
        if not (isinstance(cls, type) and issubclass(cls, Adapter)):
            log.error("entry point %s is not an Adapter subclass; skipped", ep.name)
            continue
        found[ep.name] = cls
    return found


def known_channel_names() -> set[str]:
    """Names the routing map may use: every channel kind and every installed adapter name."""
    return {k.value for k in ChannelKind} | set(adapter_classes())
