"""Control for bench/banner.py: a bare ASGI app sending the banner bytes (no routing, no cache logic).

Served by uvicorn with the same flags as the service, it shows how much of the gap to nginx is the
Python server itself rather than Broadcaster's fast path. Reads the bytes from $BENCH_BODY_FILE.
"""

from __future__ import annotations

import os
from typing import Any

with open(os.environ["BENCH_BODY_FILE"], "rb") as f:
    BODY = f.read()
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
