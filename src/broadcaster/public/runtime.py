"""Start/stop the banner cache refresher (LISTEN/NOTIFY on PostgreSQL, polling on SQLite)."""

from __future__ import annotations

from fastapi import FastAPI


async def start_public(app: FastAPI) -> None:
    """Prime caches and start listening for changes."""


async def stop_public(app: FastAPI) -> None:
    """Stop listening."""
