"""HTTP endpoints of the channels package: adapters, connection checks, previews."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from broadcaster import audit
from broadcaster.approval import ETAG_DOC, content_etag
from broadcaster.channels import service
from broadcaster.channels.schemas import AdapterOut, CheckOut, DraftPreviewIn, PreviewOut
from broadcaster.deps import SessionDep
from broadcaster.incidents.service import get_update
from broadcaster.pagination import IdPath
from broadcaster.security import Principal, Scope, require_scope
from broadcaster.settings import get_settings

router = APIRouter(prefix="/v1", tags=["channels"])

Reader = Annotated[Principal, Depends(require_scope(Scope.read))]
Admin = Annotated[Principal, Depends(require_scope(Scope.admin))]


@router.get("/channels", response_model=list[AdapterOut])
def list_channels(who: Reader) -> list[AdapterOut]:
    """Every installed adapter (built-in or plugin): configured or not, limits, configuration (masked)."""
    return service.list_adapters(get_settings())


@router.post("/channels/{name}/check", response_model=CheckOut)
async def check_channel(name: str, session: SessionDep, who: Admin) -> CheckOut:
    """Run the adapter's connection/credentials check against its provider."""
    adapter = service.get_adapter(name, get_settings())
    try:
        result = await adapter.check()
    finally:
        await adapter.aclose()
    audit.record(session, who.actor, "channel.check", "channel", name, ok=result.ok)
    return CheckOut(name=name, ok=result.ok, detail=result.detail)


@router.post(
    "/updates/{update_id}/preview",
    response_model=PreviewOut,
    responses={200: {"headers": {"ETag": {"description": ETAG_DOC, "schema": {"type": "string"}, "required": True}}}},
)
def preview_update(update_id: IdPath, session: SessionDep, who: Reader, response: Response) -> PreviewOut:
    """Exactly what each channel would send for this update (per locale), with warnings and counts.

    The `ETag` header (and `etag` field) identifies this exact content; approving needs it in `If-Match`.
    """
    update = get_update(session, update_id)
    out = service.preview(session, update, get_settings())
    out.etag = content_etag(session, update, out)
    response.headers["ETag"] = out.etag
    return out


@router.post("/preview", response_model=PreviewOut)
def preview_draft(body: DraftPreviewIn, session: SessionDep, who: Reader) -> PreviewOut:
    """Preview an unsaved update (nothing is stored)."""
    update = service.draft_update(session, body)
    return service.preview(session, update, get_settings())
