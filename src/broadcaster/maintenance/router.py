"""`/v1/maintenance`: plan, list, read, move and cancel maintenance windows (scope `publish` to change)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from broadcaster import audit, doors
from broadcaster.deps import SessionDep
from broadcaster.maintenance import service
from broadcaster.maintenance.schemas import MaintenanceIn, MaintenanceOut, MaintenancePatch, WindowState
from broadcaster.pagination import IdPath, Page, PageParams, page_params
from broadcaster.security import Principal, Scope, require_scope

router = APIRouter(prefix="/v1", tags=["maintenance"])

Reader = Annotated[Principal, Depends(require_scope(Scope.read))]
#: the window's notices are published without a second person (see docs/maintenance.md): planning takes publish
Publisher = Annotated[Principal, Depends(require_scope(Scope.publish))]


@router.post(
    "/maintenance",
    response_model=MaintenanceOut,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=doors.door("maintenance.notice"),
)
def create_window(body: MaintenanceIn, session: SessionDep, who: Publisher) -> MaintenanceOut:
    """Plan a window. Its notices (at creation, N hours before, at start, at end) are sent by the worker."""
    window = service.create(session, body, who.actor)
    audit.record(session, who.actor, "maintenance.create", "maintenance", window.id, after=service.snapshot(window))
    return service.to_out(session, window)


@router.get("/maintenance", response_model=Page[MaintenanceOut])
def list_windows(
    session: SessionDep,
    _: Reader,
    page: Annotated[PageParams, Depends(page_params)],
    state: Annotated[WindowState | None, Query(description="Only windows in this state.")] = None,
) -> Page[MaintenanceOut]:
    rows = service.list_windows(session, state=state, limit=page.limit, cursor=page.cursor)
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return Page(
        items=[service.to_out(session, w, with_notices=False) for w in rows],
        next_cursor=str(rows[-1].id) if more else None,
    )


@router.get("/maintenance/{maintenance_id}", response_model=MaintenanceOut)
def get_window(maintenance_id: IdPath, session: SessionDep, _: Reader) -> MaintenanceOut:
    """One window with its notices (planned, sent, skipped or superseded)."""
    return service.to_out(session, service.get_window(session, maintenance_id))


@router.patch(
    "/maintenance/{maintenance_id}", response_model=MaintenanceOut, openapi_extra=doors.door("maintenance.notice")
)
def move_window(maintenance_id: IdPath, body: MaintenancePatch, session: SessionDep, who: Publisher) -> MaintenanceOut:
    """Move a window (new `starts_at`/`ends_at`; only the end once it runs) or edit its title/message."""
    window, before = service.move(session, maintenance_id, body, who.actor)
    audit.record(
        session,
        who.actor,
        "maintenance.update",
        "maintenance",
        window.id,
        before=before,
        after=service.snapshot(window),
        fields=sorted(body.model_fields_set),
    )
    return service.to_out(session, window)


@router.post(
    "/maintenance/{maintenance_id}/cancel",
    response_model=MaintenanceOut,
    openapi_extra=doors.door("maintenance.notice"),
)
def cancel_window(maintenance_id: IdPath, session: SessionDep, who: Publisher) -> MaintenanceOut:
    """Cancel a scheduled or running window: those already told get a "cancelled" notice."""
    window, before = service.cancel(session, maintenance_id, who.actor)
    after = service.snapshot(window)
    audit.record(session, who.actor, "maintenance.cancel", "maintenance", window.id, before=before, after=after)
    return service.to_out(session, window)
