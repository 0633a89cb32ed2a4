"""The fake provider ASGI app and `broadcaster fake-providers`."""

from __future__ import annotations


def serve(host: str = "127.0.0.1", port: int = 8025) -> None:
    raise SystemExit("the fake provider server is not implemented yet")
