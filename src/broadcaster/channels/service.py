"""Channel listing and checks. Services take a session and never commit."""

from __future__ import annotations

import logging

from broadcaster.channels.base import Adapter
from broadcaster.channels.registry import adapter_classes, build_adapter
from broadcaster.channels.schemas import AdapterOut
from broadcaster.errors import NotFound
from broadcaster.settings import Settings

log = logging.getLogger(__name__)


def list_adapters(settings: Settings) -> list[AdapterOut]:
    out: list[AdapterOut] = []
    for name, cls in sorted(adapter_classes().items(), key=lambda kv: (kv[1].kind.value, kv[1].priority, kv[0])):
        adapter = build_adapter(name, settings)
        if adapter is not None:
            info = adapter.describe()
            out.append(
                AdapterOut(
                    name=name,
                    kind=cls.kind.value,
                    configured=True,
                    priority=cls.priority,
                    **{"limits": info["limits"], "config": info["config"]},
                )
            )
        else:
            limits = {
                "max_length": cls.limits.max_length,
                "batch_size": cls.limits.batch_size,
                "rate_per_second": cls.limits.rate_per_second,
            }
            out.append(
                AdapterOut(
                    name=name, kind=cls.kind.value, configured=False, priority=cls.priority, limits=limits, config={}
                )
            )
    return out


def get_adapter(name: str, settings: Settings) -> Adapter:
    if name not in adapter_classes():
        raise NotFound(f"No channel adapter named {name!r} is installed.", field="name")
    adapter = build_adapter(name, settings)
    if adapter is None:
        raise NotFound(f"Channel adapter {name!r} is not configured.", field="name", code="not_configured")
    return adapter
