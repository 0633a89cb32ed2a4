"""Maintenance notices go out at their times from beside every delivery worker, and an edit of a window's
incident voids the approval of its unsent notices (broadcaster.hooks)."""

from __future__ import annotations

from broadcaster import hooks
from broadcaster.maintenance import schedule
from broadcaster.maintenance.runner import MaintenanceRunner
from broadcaster.settings import Settings


def maintenance_runner(settings: Settings) -> hooks.Runner:
    return MaintenanceRunner()


hooks.runners.register(maintenance_runner)
hooks.incident_changed.register(schedule.incident_changed)
