"""Deferred alert updates (grouped notifications) are flushed beside every delivery worker (broadcaster.hooks)."""

from __future__ import annotations

from broadcaster import hooks
from broadcaster.integrations.runner import AlertFlushRunner
from broadcaster.settings import Settings


def alert_flush_runner(settings: Settings) -> hooks.Runner:
    return AlertFlushRunner()


hooks.runners.register(alert_flush_runner)
