"""Subscriber imports run beside every delivery worker (broadcaster.hooks), each job in a child process."""

from __future__ import annotations

from broadcaster import hooks
from broadcaster.imports.runner import ImportRunner
from broadcaster.settings import Settings


def import_runner(settings: Settings) -> hooks.Runner:
    return ImportRunner(settings, isolate=True)


hooks.runners.register(import_runner)
