"""Start/stop the in-process worker inside `broadcaster serve`."""

from __future__ import annotations

from fastapi import FastAPI


async def start_background(app: FastAPI) -> None:
    """Start the in-process delivery worker."""


async def stop_background(app: FastAPI) -> None:
    """Stop it, letting in-flight sends finish."""


def run_worker_process(concurrency: int | None = None) -> None:
    """Run `broadcaster worker` until SIGINT/SIGTERM."""
    raise SystemExit("the standalone worker is not implemented yet")
