"""Operations endpoints: Prometheus metrics, liveness and readiness (database, migrations, static publishing)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from fastapi.responses import PlainTextResponse
from sqlalchemy import text

from broadcaster.security import Principal, Scope, require_scope

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def metrics_endpoint(_: Annotated[Principal, Depends(require_scope(Scope.metrics))]) -> Response:
    """Prometheus metrics; needs a key with the `metrics` scope (or `admin`): queue depths and send counts
    are operational detail an anonymous caller has no business reading."""
    from broadcaster.delivery import metrics

    body, ctype = metrics.render()
    return Response(content=body, media_type=ctype)


@router.get("/healthz", tags=["operations"], response_class=PlainTextResponse)
async def healthz() -> PlainTextResponse:
    """The process is up (answered on the event loop: no database, and no wait for a thread-pool slot)."""
    return PlainTextResponse("ok")


@router.get("/readyz", tags=["operations"])
def readyz() -> Response:
    """The database answers and its schema is at the latest migration."""
    from alembic.script import ScriptDirectory

    from broadcaster.db import get_engine
    from broadcaster.migrate import alembic_config

    try:
        with get_engine().connect() as conn:
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except Exception as exc:
        body: dict[str, Any] = {"status": "unavailable", "detail": f"database: {type(exc).__name__}"}
        return Response(json.dumps(body), status_code=503, media_type="application/json")
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if set(current) != set(heads):
        body = {"status": "unavailable", "detail": "migrations pending", "current": list(current), "head": list(heads)}
        return Response(json.dumps(body), status_code=503, media_type="application/json")
    return Response(json.dumps({"status": "ok", **_static_status()}), media_type="application/json")


def _static_status() -> dict[str, Any]:
    """Static publishing's state, when it is on: a failing target shows as `degraded` (still 200: the API itself
    is ready; publishing never waits for the static copy)."""
    from broadcaster.db import get_sessionmaker
    from broadcaster.staticsite.runner import status as static_status

    with get_sessionmaker()() as session:
        state = static_status(session)
    if state is None:
        return {}
    return {"status": "degraded" if state["failing"] else "ok", "static_publishing": state}
