"""Start/stop the in-process worker inside `broadcaster serve`, and the `broadcaster worker` process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Protocol

from fastapi import FastAPI

from broadcaster.delivery.worker import Worker
from broadcaster.settings import get_settings

log = logging.getLogger(__name__)


async def start_background(app: FastAPI) -> None:
    """Start the in-process delivery worker, and the subscriber-import runner beside it."""
    from broadcaster.imports.runner import ImportRunner

    worker = Worker(get_settings())
    app.state.delivery_worker = worker
    app.state.delivery_task = asyncio.create_task(worker.run(), name="delivery-worker")
    imports = ImportRunner(get_settings(), isolate=True)
    app.state.import_runner = imports
    app.state.import_task = asyncio.create_task(imports.run(), name="import-runner")
    app.state.side_runners = _start_side_runners()


class _Runner(Protocol):
    async def run(self) -> None: ...
    def stop(self) -> None: ...


def _start_side_runners() -> list[tuple[_Runner, asyncio.Task[None]]]:
    """Beside every worker: static publishing (when STATIC_TARGET is set), deferred alert updates, question
    escalations and maintenance notices."""
    from broadcaster.integrations.runner import AlertFlushRunner
    from broadcaster.maintenance.runner import MaintenanceRunner
    from broadcaster.responses.escalation_runner import EscalationRunner
    from broadcaster.staticsite.runner import StaticPublisher

    runners: list[_Runner] = [AlertFlushRunner(), EscalationRunner(), MaintenanceRunner()]
    if get_settings().static_target.strip():
        runners.append(StaticPublisher(get_settings()))
    return [(r, asyncio.create_task(r.run(), name=type(r).__name__)) for r in runners]


async def _stop_side_runners(runners: list[tuple[_Runner, asyncio.Task[None]]]) -> None:
    for runner, _ in runners:
        runner.stop()
    for _, task in runners:
        try:
            await asyncio.wait_for(task, timeout=30)
        except TimeoutError:
            task.cancel()
        except Exception:
            log.exception("a runner beside the worker stopped with an error")


async def stop_background(app: FastAPI) -> None:
    """Stop it, letting in-flight sends finish (an import in progress is queued again after its batch)."""
    await _stop_side_runners(getattr(app.state, "side_runners", []))
    imports = getattr(app.state, "import_runner", None)
    if imports is not None:
        imports.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(app.state.import_task, timeout=30)
    worker: Worker | None = getattr(app.state, "delivery_worker", None)
    task: asyncio.Task[None] | None = getattr(app.state, "delivery_task", None)
    if worker is None or task is None:
        return
    worker.stop()
    try:
        await asyncio.wait_for(task, timeout=30)
    except TimeoutError:
        task.cancel()
    except Exception:
        log.exception("delivery worker stopped with an error")


def run_worker_process(concurrency: int | None = None) -> None:
    """Run `broadcaster worker` until SIGINT/SIGTERM."""
    settings = get_settings()
    if settings.worker_metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.worker_metrics_port)

    async def main() -> None:
        from broadcaster.imports.runner import ImportRunner

        worker = Worker(settings, concurrency=concurrency)
        imports = ImportRunner(settings, isolate=True)
        loop = asyncio.get_running_loop()

        def stop() -> None:
            worker.stop()
            imports.stop()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        log.info("delivery worker %s started", worker.id)
        import_task = asyncio.create_task(imports.run(), name="import-runner")
        side = _start_side_runners()
        await worker.run()
        imports.stop()
        await _stop_side_runners(side)
        await import_task
        log.info("delivery worker %s stopped (%d sent)", worker.id, worker.sent)

    asyncio.run(main())
