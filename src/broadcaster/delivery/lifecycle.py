"""Start/stop the in-process worker inside `broadcaster serve`, and the `broadcaster worker` process."""

from __future__ import annotations

import asyncio
import logging
import signal

from fastapi import FastAPI

from broadcaster import hooks
from broadcaster.delivery.worker import Worker
from broadcaster.settings import Settings, get_settings

log = logging.getLogger(__name__)


async def start_background(app: FastAPI) -> None:
    """Start the in-process delivery worker and the runners beside it (`hooks.runners`)."""
    worker = Worker(get_settings())
    app.state.delivery_worker = worker
    app.state.delivery_task = asyncio.create_task(worker.run(), name="delivery-worker")
    app.state.side_runners = start_runners(get_settings())


def start_runners(settings: Settings) -> list[tuple[hooks.Runner, asyncio.Task[None]]]:
    """The runners every worker has beside it, started: those the features register on `hooks.runners` (subscriber
    imports, deferred alert updates, question escalations, maintenance notices, static publishing when on)."""
    runners = [r for make in hooks.runners.functions() if (r := make(settings)) is not None]
    return [(r, asyncio.create_task(r.run(), name=type(r).__name__)) for r in runners]


async def stop_runners(runners: list[tuple[hooks.Runner, asyncio.Task[None]]]) -> None:
    """Ask every runner to stop, then wait for each (30 s at most; an import in progress is queued again after
    its batch)."""
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
    """Stop it, letting in-flight sends finish."""
    await stop_runners(getattr(app.state, "side_runners", []))
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
        worker = Worker(settings, concurrency=concurrency)
        side = start_runners(settings)
        loop = asyncio.get_running_loop()

        def stop() -> None:
            worker.stop()
            for runner, _ in side:
                runner.stop()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        log.info("delivery worker %s started", worker.id)
        await worker.run()
        await stop_runners(side)
        log.info("delivery worker %s stopped (%d sent)", worker.id, worker.sent)

    asyncio.run(main())
