"""Adapter discovery through the `broadcaster.channels` entry-point group (built-ins included).

Routing-map channel names are either a kind ("sms", "social", ...) or an adapter name ("twilio-sms",
"x", ...): `resolve_channel` turns either into the configured adapters to use, primary first.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from functools import lru_cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from broadcaster.channels.base import Adapter
from broadcaster.domain import ChannelKind

if TYPE_CHECKING:
    from broadcaster.settings import Settings

log = logging.getLogger(__name__)

GROUP = "broadcaster.channels"


@lru_cache(maxsize=1)
def adapter_classes() -> dict[str, type[Adapter]]:
    """Every installed adapter class by name; a broken plugin is logged and skipped."""
    found: dict[str, type[Adapter]] = {}
    for ep in entry_points(group=GROUP):
        try:
            cls = ep.load()
        except ImportError as exc:  # an optional extra that is not installed (e.g. Mastodon.py)
            log.info("channel adapter %s is not available: %s", ep.name, exc)
            continue
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


def _sort_key(cls: type[Adapter], name: str) -> tuple[int, str]:
    return (cls.priority, name)


def build_adapter(name: str, settings: Settings) -> Adapter | None:
    """An instance of the adapter registered as `name`, or None when unknown or not configured."""
    cls = adapter_classes().get(name)
    if cls is None:
        return None
    try:
        return cls.from_settings(settings)
    except Exception:
        log.exception("channel adapter %s failed to configure; treated as not configured", name)
        return None


def configured_adapters(settings: Settings) -> list[Adapter]:
    """Instances of every installed adapter whose `from_settings` returns one (sorted by kind, priority)."""
    out: list[Adapter] = []
    classes = adapter_classes()
    for name in sorted(classes, key=lambda n: (classes[n].kind.value, *_sort_key(classes[n], n))):
        adapter = build_adapter(name, settings)
        if adapter is not None:
            out.append(adapter)
    return out


def adapters_by_kind(settings: Settings) -> dict[ChannelKind, list[Adapter]]:
    """Configured adapters grouped by kind, sorted by `priority`: first is primary, the rest failover."""
    grouped: dict[ChannelKind, list[Adapter]] = defaultdict(list)
    for adapter in configured_adapters(settings):
        grouped[adapter.kind].append(adapter)
    for adapters in grouped.values():
        adapters.sort(key=lambda a: _sort_key(type(a), a.name))
    return dict(grouped)


def classes_for(name: str) -> list[type[Adapter]]:
    """Installed adapter classes a routing-map name refers to (configured or not), priority order."""
    classes = adapter_classes()
    if name in classes:
        return [classes[name]]
    try:
        kind = ChannelKind(name)
    except ValueError:
        return []
    return sorted((c for c in classes.values() if c.kind is kind), key=lambda c: _sort_key(c, c.name))


def resolve_channel(name: str, settings: Settings) -> list[Adapter]:
    """Configured adapters for a routing-map name: an adapter name gives that adapter (if configured);
    a kind gives every configured adapter of that kind, primary first. Empty when nothing is configured."""
    classes = adapter_classes()
    if name in classes:
        adapter = build_adapter(name, settings)
        return [adapter] if adapter is not None else []
    try:
        kind = ChannelKind(name)
    except ValueError:
        return []
    names = sorted((n for n, c in classes.items() if c.kind is kind), key=lambda n: _sort_key(classes[n], n))
    return [a for a in (build_adapter(n, settings) for n in names) if a is not None]


def kind_of(name: str) -> ChannelKind | None:
    """The channel kind a routing-map name stands for (an adapter's kind, or the kind itself)."""
    classes = adapter_classes()
    if name in classes:
        return classes[name].kind
    try:
        return ChannelKind(name)
    except ValueError:
        return None
