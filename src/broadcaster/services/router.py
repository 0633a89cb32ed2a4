"""`/v1/services` endpoints: the components list, manual state changes and the per-day history."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from broadcaster import audit, doors
from broadcaster.crud import SlugResource
from broadcaster.deps import SessionDep
from broadcaster.models.services import Service
from broadcaster.security import Principal, Scope, require_scope
from broadcaster.services import service
from broadcaster.services.schemas import (
    HistoryDay,
    HistoryOut,
    ServiceIn,
    ServiceOut,
    ServicePatch,
    StateChangeOut,
    StateIn,
)

router = APIRouter(prefix="/v1", tags=["services"])

Reader = Annotated[Principal, Depends(require_scope(Scope.read))]
#: the scope that edits the routing map also edits the services list
Writer = Annotated[Principal, Depends(require_scope(Scope.write))]

SERVICES: SlugResource[Service, ServiceOut] = SlugResource("service", service.get_service, ServiceOut.model_validate)


@router.get("/services", response_model=list[ServiceOut], summary="Services (components) with their state")
def list_services(session: SessionDep, _: Reader) -> list[ServiceOut]:
    return SERVICES.present_all(service.list_services(session))


@router.post(
    "/services",
    response_model=ServiceOut,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=doors.door("service.state"),
)
def create_service(body: ServiceIn, session: SessionDep, who: Writer) -> ServiceOut:
    svc = service.create_service(session, body, who.actor)
    return SERVICES.created(session, who.actor, svc, svc.slug)


@router.get("/services/{slug}", response_model=ServiceOut)
def get_service(slug: str, session: SessionDep, _: Reader) -> ServiceOut:
    return SERVICES.read(session, slug)


@router.patch("/services/{slug}", response_model=ServiceOut, openapi_extra=doors.door("service.state"))
def update_service(slug: str, body: ServicePatch, session: SessionDep, who: Writer) -> ServiceOut:
    before = SERVICES.snapshot_of(session, slug)
    svc = service.update_service(session, slug, body)
    return SERVICES.updated(session, who.actor, slug, svc, before=before, body=body)


@router.delete("/services/{slug}", status_code=status.HTTP_204_NO_CONTENT, openapi_extra=doors.door("service.state"))
def delete_service(slug: str, session: SessionDep, who: Writer) -> Response:
    return SERVICES.delete(session, who.actor, slug, partial(service.delete_service, actor=who.actor))


@router.post(
    "/services/{slug}/state",
    response_model=ServiceOut,
    summary="Set a service's state by hand",
    openapi_extra=doors.door("service.state"),
)
def set_state(slug: str, body: StateIn, session: SessionDep, who: Writer) -> ServiceOut:
    svc = service.get_service(session, slug)
    previous = svc.state
    service.set_state(session, svc, body.state.value, actor=who.actor)
    audit.record(
        session,
        who.actor,
        "service.state",
        "service",
        slug,
        before={"state": previous},
        after={"state": svc.state},
        reason=body.reason,
    )
    return ServiceOut.model_validate(svc)


@router.get("/services/{slug}/history", response_model=HistoryOut, summary="Worst state per UTC day")
def get_history(
    slug: str,
    session: SessionDep,
    _: Reader,
    days: Annotated[int, Query(ge=1, le=service.MAX_HISTORY_DAYS)] = 90,
) -> HistoryOut:
    svc = service.get_service(session, slug)
    per_day, changes = service.history(session, svc, days=days)
    return HistoryOut(
        slug=svc.slug,
        state=svc.state,
        days=[HistoryDay(date=d, state=s) for d, s in per_day],
        changes=[StateChangeOut.model_validate(c) for c in changes],
    )
