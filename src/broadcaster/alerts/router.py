"""`POST /v1/alerts`: create the incident and its first update and publish it (as the one gate decides), in one
transaction."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from broadcaster import audit, doors
from broadcaster.deps import SessionDep
from broadcaster.domain import Severity
from broadcaster.incidents import service
from broadcaster.incidents.schemas import AlertIn, AlertOut, IncidentIn, IncidentOut, UpdateIn, UpdateOut
from broadcaster.publishing import gate
from broadcaster.publishing import service as publishing
from broadcaster.routing.service import get_category
from broadcaster.security import Principal, Scope, require_scope

router = APIRouter(prefix="/v1", tags=["alerts"])


def channels_for(session: SessionDep, category: str, severity: Severity) -> list[str]:
    """The routing map's default channels for a category and severity."""
    cat = get_category(session, category, field="category")
    return list(cat.channels.get(severity.value, []))


def _title(message: str) -> str:
    """The alert's first non-blank line (shortened) as the incident title."""
    first = next((line.strip() for line in message.splitlines() if line.strip()), "Alert")
    return first if len(first) <= 300 else first[:299] + "\u2026"


@router.post(
    "/alerts",
    response_model=AlertOut,
    status_code=status.HTTP_201_CREATED,
    responses={202: {"model": AlertOut, "description": "Created, and waiting for a second person's approval."}},
    openapi_extra=doors.door("alerts.api"),
)
def create_alert(
    body: AlertIn,
    session: SessionDep,
    who: Annotated[Principal, Depends(require_scope(Scope.alerts))],
    response: Response,
) -> AlertOut:
    """Ops scripts: category + message. The routing map picks the channels; send `Idempotency-Key`.

    The one gate decides as for any update (docs/doors.md): below APPROVAL_SEVERITY and the audience threshold the
    alert is published at once (201); otherwise it waits for a second person's approval (202, `approval_required`,
    the content ETag in the `ETag` header), like an update published by a person."""
    routed = channels_for(session, body.category, body.severity)
    incident = service.create_incident(
        session,
        IncidentIn(
            title=body.title or _title(body.message),
            category=body.category,
            severity=body.severity,
            affected_services=body.affected_services,
        ),
        who.actor,
    )
    update = service.add_update(
        session,
        incident,
        UpdateIn(
            body=body.message,
            summary=body.summary,
            locale=body.locale,
            translations=body.translations,
            links=body.links,
            channels=body.channels,
            test=body.test,
        ),
        who.actor,
    )
    result = publishing.publish(session, update.id, gate.Authority(who.actor), door="alerts.api")
    audit.record(session, who.actor, "alert.create", "incident", incident.id, update_id=update.id)
    session.refresh(incident)
    if result.approval_required:
        response.status_code = status.HTTP_202_ACCEPTED
        response.headers["ETag"] = result.etag or ""
    return AlertOut(
        incident=IncidentOut.build(incident),
        update=UpdateOut.model_validate(result.update),
        broadcast_id=result.broadcast_id,
        channels=body.channels if body.channels is not None else routed,
        approval_required=result.approval_required,
    )
