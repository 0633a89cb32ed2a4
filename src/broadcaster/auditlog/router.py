"""`GET /v1/audit`: the audit log for admins (who, what, when, before and after), filterable, newest first."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import AfterValidator

from broadcaster.auditlog.schemas import AuditOut
from broadcaster.auditlog.service import AuditFilter, list_entries
from broadcaster.deps import SessionDep
from broadcaster.errors import ErrorOut, Unprocessable
from broadcaster.pagination import Page, PageParams, page_params
from broadcaster.security import Principal, Scope, require_scope

router = APIRouter(prefix="/v1", tags=["audit"])
Admin = Annotated[Principal, Depends(require_scope(Scope.admin))]


def _in_utc(value: datetime | None) -> datetime | None:
    """The instant in UTC (a naive value is taken as UTC); a 422 when it leaves years 1..9999 in UTC."""
    if value is None:
        return None
    try:
        return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    except OverflowError as exc:
        raise ValueError("is out of range once converted to UTC") from exc


Instant = Annotated[datetime | None, AfterValidator(_in_utc)]


@router.get(
    "/audit",
    response_model=Page[AuditOut],
    responses={
        401: {"model": ErrorOut, "description": "No API key or console session."},
        403: {"model": ErrorOut, "description": "The admin scope (role) is needed."},
        422: {"model": ErrorOut, "description": "A filter is malformed (the field is named)."},
    },
)
def list_audit(
    session: SessionDep,
    _: Admin,
    page: Annotated[PageParams, Depends(page_params)],
    actor: Annotated[
        str | None, Query(max_length=120, description="Exactly this actor: `user:<id>`, `key:<name>`, `cli:<user>`.")
    ] = None,
    action: Annotated[
        str | None,
        Query(
            max_length=64,
            pattern=r"^[a-z_]+(\.([a-z_]+|\*))?$",
            description="An action (`update.publish`) or every action of a kind (`update.*`).",
        ),
    ] = None,
    target_type: Annotated[str | None, Query(max_length=32, description="e.g. `update`, `category`.")] = None,
    target_id: Annotated[str | None, Query(max_length=64, description="The target's id or slug.")] = None,
    since: Annotated[Instant, Query(description="Entries at or after this instant (ISO 8601; UTC if naive).")] = None,
    until: Annotated[Instant, Query(description="Entries before this instant (ISO 8601; UTC if naive).")] = None,
) -> Page[AuditOut]:
    """The audit log, newest first, in keyset pages (`next_cursor`). Admin scope (or the admin role)."""
    if since is not None and until is not None and until <= since:
        raise Unprocessable("until must be after since.", field="until")
    filters = AuditFilter(actor, action, target_type, target_id, since, until)
    rows = list_entries(session, filters, limit=page.limit, cursor=page.cursor)
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return Page(items=[AuditOut.model_validate(r) for r in rows], next_cursor=str(rows[-1].id) if more else None)
