"""Every route of the app, as FastAPI serves it (included routers' routes are expanded: `app.routes` alone holds
the routers, not their routes)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def app_routes(app: Any) -> Iterator[tuple[str, str, Any]]:
    """(method, path, route) of every route of the app, API and console alike (HEAD left out)."""
    for route in app.routes:
        contexts = route.effective_route_contexts() if hasattr(route, "effective_route_contexts") else [route]
        for ctx in contexts:
            for method in sorted(set(getattr(ctx, "methods", None) or ()) - {"HEAD"}):
                yield method, ctx.path, ctx
