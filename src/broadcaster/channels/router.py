"""HTTP endpoints of the channels package: adapters and connection checks."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from broadcaster import audit, doors
from broadcaster.channels import service
from broadcaster.channels.schemas import AdapterOut, CheckOut
from broadcaster.deps import SessionDep
from broadcaster.security import Principal, Scope, require_scope
from broadcaster.settings import get_settings

router = APIRouter(prefix="/v1", tags=["channels"])

Reader = Annotated[Principal, Depends(require_scope(Scope.read))]
Admin = Annotated[Principal, Depends(require_scope(Scope.admin))]


@router.get("/channels", response_model=list[AdapterOut])
def list_channels(who: Reader) -> list[AdapterOut]:
    """Every installed adapter (built-in or plugin): configured or not, limits, configuration (masked)."""
    return service.list_adapters(get_settings())


@router.post(
    "/channels/{name}/check",
    response_model=CheckOut,
    openapi_extra=doors.not_a_door("checks a provider's credentials; sends to nobody"),
)
async def check_channel(name: str, session: SessionDep, who: Admin) -> CheckOut:
    """Run the adapter's connection/credentials check against its provider."""
    adapter = service.get_adapter(name, get_settings())
    try:
        result = await adapter.check()
    finally:
        await adapter.aclose()
    audit.record(session, who.actor, "channel.check", "channel", name, ok=result.ok)
    return CheckOut(name=name, ok=result.ok, detail=result.detail)
