"""The ASGI entry point served by uvicorn: `broadcaster.asgi:app`."""

from __future__ import annotations

from broadcaster.app import create_app

app = create_app()
