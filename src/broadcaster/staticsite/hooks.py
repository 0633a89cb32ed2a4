"""Static publishing runs beside every delivery worker when STATIC_TARGET is set (broadcaster.hooks)."""

from __future__ import annotations

from broadcaster import hooks
from broadcaster.settings import Settings
from broadcaster.staticsite.runner import StaticPublisher


def static_publisher(settings: Settings) -> hooks.Runner | None:
    return StaticPublisher(settings) if settings.static_target.strip() else None


hooks.runners.register(static_publisher)
