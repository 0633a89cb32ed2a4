"""Maintenance notices go out at their times from beside every delivery worker (broadcaster.hooks)."""

from __future__ import annotations

from broadcaster import hooks
from broadcaster.maintenance.runner import MaintenanceRunner
from broadcaster.settings import Settings


def maintenance_runner(settings: Settings) -> hooks.Runner:
    return MaintenanceRunner()


hooks.runners.register(maintenance_runner)
