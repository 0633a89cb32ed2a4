"""`/v1/services` endpoints: the components list, manual state changes and the per-day history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from broadcaster import audit
from broadcaster.deps import SessionDep
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


@router.get("/services", response_model=list[ServiceOut], summary="Services (components) with their state")
def list_services(session: SessionDep, _: Reader) -> list[ServiceOut]:
    return [ServiceOut.model_validate(s) for s in service.list_services(session)]


@router.post("/services", response_model=ServiceOut, status_code=status.HTTP_201_CREATED)
def create_service(body: ServiceIn, session: SessionDep, who: Writer) -> ServiceOut:
    svc = service.create_service(session, body, who.actor)
    out = ServiceOut.model_validate(svc)
    audit.record(session, who.actor, "service.create", "service", svc.slug, after=out.model_dump(mode="json"))
    return out


@router.get("/services/{slug}", response_model=ServiceOut)
def get_service(slug: str, session: SessionDep, _: Reader) -> ServiceOut:
    return ServiceOut.model_validate(service.get_service(session, slug))


@router.patch("/services/{slug}", response_model=ServiceOut)
def update_service(slug: str, body: ServicePatch, session: SessionDep, who: Writer) -> ServiceOut:
    before = ServiceOut.model_validate(service.get_service(session, slug)).model_dump(mode="json")
    out = ServiceOut.model_validate(service.update_service(session, slug, body))
    after = out.model_dump(mode="json")
    audit.record_change(
        session,
        who.actor,
        "service.update",
        "service",
        slug,
        before=before,
        after=after,
        fields=sorted(body.model_fields_set),
    )
    return out


@router.delete("/services/{slug}", status_code=status.HTTP_204_NO_CONTENT)
def delete_service(slug: str, session: SessionDep, who: Writer) -> Response:
    before = ServiceOut.model_validate(service.get_service(session, slug)).model_dump(mode="json")
    service.delete_service(session, slug)
    audit.record(session, who.actor, "service.delete", "service", slug, before=before)
    return Response(status_code=204)


@router.post("/services/{slug}/state", response_model=ServiceOut, summary="Set a service's state by hand")
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
