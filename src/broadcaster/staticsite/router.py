"""`GET /v1/static-publishing`: the static copy's state (for the console and monitoring)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from broadcaster.deps import SessionDep
from broadcaster.security import Principal, Scope, require_scope
from broadcaster.staticsite.runner import status

router = APIRouter(tags=["operations"])


@router.get("/v1/static-publishing")
def static_publishing(
    session: SessionDep, _: Annotated[Principal, Depends(require_scope(Scope.read))]
) -> dict[str, Any]:
    """`enabled: false` when STATIC_TARGET is unset; else the target, the content version and the version the target
    holds, whether the last attempt failed (`failing`, `last_error`, `attempts`) and when the next retry is."""
    state = status(session)
    return {"enabled": state is not None, **(state or {})}
