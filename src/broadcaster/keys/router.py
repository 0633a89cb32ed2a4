"""`/v1/keys`: list and revoke API keys (admin). Keys are created with `broadcaster keys create`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel
from sqlalchemy import select

from broadcaster import doors
from broadcaster.deps import SessionDep
from broadcaster.keys import service
from broadcaster.models import ApiKey
from broadcaster.security import Principal, Scope, mask_key, require_scope

router = APIRouter(prefix="/v1", tags=["api keys"])
#: api_keys.id is a 32-bit INTEGER: a bigger id is a 422 naming it, not a database range error
KeyIdPath = Annotated[int, Path(ge=1, le=2**31 - 1)]
Admin = Annotated[Principal, Depends(require_scope(Scope.admin))]


class KeyOut(BaseModel):
    id: int
    name: str
    key: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    #: the person the key acts as (`keys create --owner`), or None for automation
    owner_user_id: int | None = None


def key_out(row: ApiKey) -> KeyOut:
    return KeyOut(
        id=row.id,
        name=row.name,
        key=mask_key(row.prefix),
        scopes=row.scopes,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        owner_user_id=row.owner_user_id,
    )


@router.get("/keys", response_model=list[KeyOut])
def list_keys(session: SessionDep, _: Admin) -> list[KeyOut]:
    return [key_out(k) for k in session.scalars(select(ApiKey).order_by(ApiKey.id))]


@router.delete("/keys/{key_id}", status_code=204, openapi_extra=doors.not_a_door("revokes an API key"))
def revoke_key(key_id: KeyIdPath, session: SessionDep, who: Admin) -> Response:
    service.revoke(session, key_id, who.actor)
    return Response(status_code=204)
