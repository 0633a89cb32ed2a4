"""A raw ASGI wrapper that answers the banner endpoints from memory, in front of the FastAPI app.

FastAPI's request machinery costs about 3x the CPU of a raw ASGI handler for a cached body
(perf-baseline.md section 2); the banner is the hottest endpoint on a crisis day, so
`GET/HEAD/OPTIONS /v1/banner{,.html,.js}` never reach the router. Everything else passes through.
The same paths are also declared as FastAPI routes (OpenAPI doc, and a fallback without the wrapper).
"""

from __future__ import annotations

from typing import Any

from broadcaster.public.cache import BANNER_PATHS, get_cache

_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class PublicFastPath:
    """`PublicFastPath(fastapi_app)`: the ASGI app uvicorn serves (`broadcaster.asgi:app`)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.cache = get_cache()

    def __getattr__(self, name: str) -> Any:
        # expose the wrapped app's attributes (state, routes, openapi, ...) for tools and tests
        if name == "app":
            raise AttributeError(name)
        return getattr(self.app, name)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            kind = BANNER_PATHS.get(scope["path"])
            if kind is not None and scope["method"] in _METHODS:
                accept_language = if_none_match = None
                for name, value in scope["headers"]:
                    if name == b"accept-language":
                        accept_language = value
                    elif name == b"if-none-match":
                        if_none_match = value
                status, headers, body = await self.cache.respond(
                    kind, scope["method"], scope["query_string"], accept_language, if_none_match
                )
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
