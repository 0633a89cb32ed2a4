"""`/v1/maintenance`: plan, list, read, move and cancel maintenance windows (scope `publish` to change), and
approve or reject a window's schedule of notices (a second person with `publish`; docs/maintenance.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from broadcaster import audit, doors
from broadcaster.deps import SessionDep
from broadcaster.errors import ErrorOut
from broadcaster.maintenance import schedule, service
from broadcaster.maintenance.schemas import (
    MaintenanceIn,
    MaintenanceOut,
    MaintenancePatch,
    SchedulePreviewOut,
    WindowState,
)
from broadcaster.pagination import IdPath, Page, PageParams, page_params
from broadcaster.publishing import approval
from broadcaster.publishing.schemas import RejectIn
from broadcaster.security import Principal, Scope, require_scope

router = APIRouter(prefix="/v1", tags=["maintenance"])

Reader = Annotated[Principal, Depends(require_scope(Scope.read))]
#: planning takes publish: the gate approves the schedule at once when no notice is high impact
#: (docs/maintenance.md, "Approval"); a second person approves with publish too
Publisher = Annotated[Principal, Depends(require_scope(Scope.publish))]


@router.post(
    "/maintenance",
    response_model=MaintenanceOut,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=doors.door("maintenance.notice"),
)
def create_window(body: MaintenanceIn, session: SessionDep, who: Publisher) -> MaintenanceOut:
    """Plan a window. Its notices (at creation, N hours before, at start, at end) are sent by the worker, once
    the gate approved the schedule: at once when no notice is high impact, else by a second person (`approval`)."""
    window = service.create(session, body, who.actor)
    audit.record(session, who.actor, "maintenance.create", "maintenance", window.id, after=service.snapshot(window))
    schedule.decide(session, window, who.actor, cause="window planned")
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
    changed = ", ".join(sorted(body.model_fields_set)) or "nothing: asked again"
    schedule.decide(session, window, who.actor, cause=f"window changed ({changed}) by {who.actor}")
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
    schedule.decide(session, window, who.actor, cause=f"window cancelled by {who.actor}")
    return service.to_out(session, window)


@router.get(
    "/maintenance/{maintenance_id}/preview",
    response_model=SchedulePreviewOut,
    responses={
        200: {
            "headers": {
                "ETag": {"description": "The schedule ETag (approve with If-Match).", "schema": {"type": "string"}}
            }
        }
    },
)
def preview_schedule(maintenance_id: IdPath, session: SessionDep, _: Reader, response: Response) -> SchedulePreviewOut:
    """Every notice not yet sent, exactly as it would go out at its due time (each channel's text, recipients,
    warnings, whether it alone is high impact), and the schedule ETag an approver sends back in If-Match."""
    out = schedule.preview(session, maintenance_id)
    response.headers["ETag"] = out.etag
    return out


@router.post(
    "/maintenance/{maintenance_id}/approve",
    response_model=MaintenanceOut,
    responses=approval.approve_responses("the schedule preview you reviewed"),
    openapi_extra=doors.door("maintenance.notice"),
)
def approve_schedule(
    maintenance_id: IdPath, session: SessionDep, who: Publisher, if_match: approval.IfMatch = None
) -> MaintenanceOut:
    """Approve the window's schedule exactly as previewed: a second person; its notices go out at their times
    while their content stays as approved."""
    window = schedule.approve(session, maintenance_id, who, if_match)
    return service.to_out(session, window)


@router.post(
    "/maintenance/{maintenance_id}/reject",
    response_model=MaintenanceOut,
    responses={
        403: {"model": ErrorOut, "description": "The requester cannot reject their own request, or no publish scope."},
        409: {"model": ErrorOut, "description": "The schedule is not waiting for approval (`not_pending`)."},
    },
    openapi_extra=doors.door("maintenance.notice"),
)
def reject_schedule(maintenance_id: IdPath, body: RejectIn, session: SessionDep, who: Publisher) -> MaintenanceOut:
    """Reject the window's schedule with a comment: its notices keep waiting until the window is changed (which
    asks again) or cancelled."""
    window = schedule.reject(session, maintenance_id, who, body.comment)
    return service.to_out(session, window)
