"""`/v1/incidents` and `/v1/updates` endpoints."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import AfterValidator

from broadcaster import audit, publishing
from broadcaster.deps import SessionDep
from broadcaster.domain import IncidentStatus, Severity
from broadcaster.incidents import service
from broadcaster.incidents.schemas import (
    IncidentIn,
    IncidentOut,
    IncidentPatch,
    PublishOut,
    UpdateIn,
    UpdateOut,
    UpdatePatch,
)
from broadcaster.pagination import IdPath, Page, PageParams, page_params
from broadcaster.security import Principal, Scope, require_scope

router = APIRouter(prefix="/v1", tags=["incidents"])

Reader = Annotated[Principal, Depends(require_scope(Scope.read))]
Writer = Annotated[Principal, Depends(require_scope(Scope.write))]
Publisher = Annotated[Principal, Depends(require_scope(Scope.publish))]
Admin = Annotated[Principal, Depends(require_scope(Scope.admin))]


@router.post("/incidents", response_model=IncidentOut, status_code=status.HTTP_201_CREATED)
def create_incident(body: IncidentIn, session: SessionDep, who: Writer) -> IncidentOut:
    incident = service.create_incident(session, body, who.actor)
    audit.record(session, who.actor, "incident.create", "incident", incident.id)
    session.refresh(incident)
    return IncidentOut.build(incident, with_updates=True)


def _in_utc(value: datetime | None) -> datetime | None:
    """The instant in UTC; a 422 when its offset moves it outside years 1..9999 (an OverflowError later)."""
    if value is None:
        return None
    try:
        return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    except OverflowError as exc:
        raise ValueError("is out of range once converted to UTC") from exc


@router.get("/incidents", response_model=Page[IncidentOut])
def list_incidents(
    session: SessionDep,
    _: Reader,
    page: Annotated[PageParams, Depends(page_params)],
    status_: Annotated[IncidentStatus | None, Query(alias="status")] = None,
    severity: Severity | None = None,
    category: str | None = None,
    active: bool | None = None,
    since: Annotated[datetime | None, AfterValidator(_in_utc)] = None,
) -> Page[IncidentOut]:
    rows = service.list_incidents(
        session,
        status=status_,
        severity=severity,
        category=category,
        active=active,
        since=since,
        limit=page.limit,
        cursor=page.cursor,
    )
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return Page(items=[IncidentOut.build(i) for i in rows], next_cursor=str(rows[-1].id) if more else None)


@router.get("/incidents/{incident_id}", response_model=IncidentOut)
def get_incident(incident_id: IdPath, session: SessionDep, _: Reader) -> IncidentOut:
    return IncidentOut.build(service.get_incident(session, incident_id), with_updates=True)


@router.patch("/incidents/{incident_id}", response_model=IncidentOut)
def update_incident(incident_id: IdPath, body: IncidentPatch, session: SessionDep, who: Writer) -> IncidentOut:
    incident = service.update_incident(session, incident_id, body)
    audit.record(session, who.actor, "incident.update", "incident", incident_id, fields=sorted(body.model_fields_set))
    return IncidentOut.build(incident, with_updates=True)


@router.delete("/incidents/{incident_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_incident(incident_id: IdPath, session: SessionDep, who: Admin) -> Response:
    service.delete_incident(session, incident_id)
    audit.record(session, who.actor, "incident.delete", "incident", incident_id)
    return Response(status_code=204)


@router.post("/incidents/{incident_id}/updates", response_model=UpdateOut, status_code=status.HTTP_201_CREATED)
def add_update(incident_id: IdPath, body: UpdateIn, session: SessionDep, who: Writer) -> UpdateOut:
    incident = service.get_incident(session, incident_id)
    update = service.add_update(session, incident, body, who.actor)
    audit.record(session, who.actor, "update.create", "update", update.id, incident_id=incident_id)
    return UpdateOut.model_validate(update)


@router.get("/incidents/{incident_id}/updates", response_model=list[UpdateOut])
def list_updates(incident_id: IdPath, session: SessionDep, _: Reader) -> list[UpdateOut]:
    return [UpdateOut.model_validate(u) for u in service.list_updates(session, incident_id)]


@router.get("/updates/{update_id}", response_model=UpdateOut)
def get_update(update_id: IdPath, session: SessionDep, _: Reader) -> UpdateOut:
    return UpdateOut.model_validate(service.get_update(session, update_id))


@router.patch("/updates/{update_id}", response_model=UpdateOut)
def edit_update(update_id: IdPath, body: UpdatePatch, session: SessionDep, who: Writer) -> UpdateOut:
    update = service.edit_update(session, update_id, body)
    audit.record(session, who.actor, "update.edit", "update", update_id, fields=sorted(body.model_fields_set))
    return UpdateOut.model_validate(update)


@router.delete("/updates/{update_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_update(update_id: IdPath, session: SessionDep, who: Writer) -> Response:
    service.delete_update(session, update_id)
    audit.record(session, who.actor, "update.delete", "update", update_id)
    return Response(status_code=204)


@router.post(
    "/updates/{update_id}/publish",
    response_model=PublishOut,
    responses={202: {"model": PublishOut, "description": "Waiting for a second person's approval."}},
)
def publish_update(update_id: IdPath, session: SessionDep, who: Publisher, response: Response) -> PublishOut:
    result = publishing.publish(session, update_id, who.actor)
    if result.approval_required:
        response.status_code = status.HTTP_202_ACCEPTED
    return PublishOut(
        update=UpdateOut.model_validate(result.update),
        broadcast_id=result.broadcast_id,
        approval_required=result.approval_required,
    )


@router.post("/updates/{update_id}/approve", response_model=PublishOut)
def approve_update(update_id: IdPath, session: SessionDep, who: Publisher) -> PublishOut:
    result = publishing.approve(session, update_id, who.actor)
    return PublishOut(update=UpdateOut.model_validate(result.update), broadcast_id=result.broadcast_id)
