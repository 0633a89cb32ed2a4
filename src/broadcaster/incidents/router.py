"""`/v1/incidents` and `/v1/updates` endpoints."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from fastapi.responses import JSONResponse
from pydantic import AfterValidator
from sqlalchemy.orm import Session

from broadcaster import audit, doors
from broadcaster.delivery import eta
from broadcaster.delivery.eta import EtaOut
from broadcaster.deps import SessionDep
from broadcaster.domain import IncidentStatus, Severity, UpdateState
from broadcaster.errors import ErrorOut
from broadcaster.incidents import changes, drafts, edits, service
from broadcaster.incidents.schemas import (
    ChangeRequestOut,
    DraftPreviewIn,
    IncidentIn,
    IncidentOut,
    IncidentPatch,
    PublishOut,
    UpdateIn,
    UpdateOut,
    UpdatePatch,
)
from broadcaster.models import Update
from broadcaster.pagination import IdPath, Page, PageParams, page_params
from broadcaster.publishing import approval, gate
from broadcaster.publishing import service as publishing
from broadcaster.publishing.preview import preview as build_preview
from broadcaster.publishing.schemas import PreviewOut, RejectIn
from broadcaster.security import Principal, Scope, require_any_scope, require_scope
from broadcaster.services.service import check_slugs
from broadcaster.settings import get_settings

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["incidents"])

PENDING_ETAG_DOC = "While the update waits for approval: the content ETag the requester asked to publish."

Reader = Annotated[Principal, Depends(require_scope(Scope.read))]
Writer = Annotated[Principal, Depends(require_scope(Scope.write))]
Publisher = Annotated[Principal, Depends(require_scope(Scope.publish))]
#: publish, or write for a test send (publishing.publish refuses a live update without publish)
TestSender = Annotated[Principal, Depends(require_any_scope(Scope.publish, Scope.write))]
Admin = Annotated[Principal, Depends(require_scope(Scope.admin))]


@router.post(
    "/incidents",
    response_model=IncidentOut,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=doors.not_a_door("a new incident shows nowhere until an update of it is published"),
)
def create_incident(body: IncidentIn, session: SessionDep, who: Writer) -> IncidentOut:
    check_slugs(session, body.affected_services, field="affected_services")
    incident = service.create_incident(session, body, who.actor)
    audit.record(session, who.actor, "incident.create", "incident", incident.id, after=approval.snapshot(incident))
    session.refresh(incident)
    for update in incident.updates:  # the optional first update, written in the same transaction
        audit.record(
            session, who.actor, "update.create", "update", update.id, after=_state(update), incident_id=incident.id
        )
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


CHANGE_ETAG_DOC = (
    "The change request's content ETag: its diff against the incident's public fields now. Approve with it in "
    "`If-Match`."
)


@router.patch(
    "/incidents/{incident_id}",
    response_model=IncidentOut,
    responses={
        202: {
            "model": ChangeRequestOut,
            "description": "The incident is live at or above APPROVAL_SEVERITY (or the edit makes it so): nothing "
            "changed; a change request waits for a second person (`POST .../change-requests/{id}/approve`).",
            "headers": {"ETag": {"description": CHANGE_ETAG_DOC, "schema": {"type": "string"}, "required": True}},
        }
    },
    openapi_extra=doors.door("incident.edit"),
)
def update_incident(incident_id: IdPath, body: IncidentPatch, session: SessionDep, who: Writer) -> Any:
    """Change an incident's public fields. Below APPROVAL_SEVERITY (before and after the edit), or while nothing
    of it is public, the change applies at once (200, audited). A live incident at or above it changes only
    through an approved update or an approved change request: the answer is 202 with the change request."""
    check_slugs(session, body.affected_services or [], field="affected_services")
    edit = service.update_incident(
        session, incident_id, body, gate.Authority(who.actor, can_publish=who.has(Scope.publish))
    )
    if edit.change_request is not None:
        out = ChangeRequestOut.build(edit.change_request, edit.incident)
        return JSONResponse(out.model_dump(mode="json"), status_code=202, headers={"ETag": out.etag or ""})
    edits.audit_applied(session, who.actor, edit.incident, edit.previous, fields=sorted(body.model_fields_set))
    return IncidentOut.build(edit.incident, with_updates=True)


@router.get("/incidents/{incident_id}/change-requests", response_model=list[ChangeRequestOut])
def list_change_requests(incident_id: IdPath, session: SessionDep, _: Reader) -> list[ChangeRequestOut]:
    """Every change request of the incident, newest first; a pending one carries its `etag`."""
    rows = changes.list_for(session, incident_id)
    incident = service.get_incident(session, incident_id)
    return [ChangeRequestOut.build(r, incident) for r in rows]


@router.get(
    "/incidents/{incident_id}/change-requests/{change_id}",
    response_model=ChangeRequestOut,
    responses={200: {"headers": {"ETag": {"description": CHANGE_ETAG_DOC, "schema": {"type": "string"}}}}},
)
def get_change_request(
    incident_id: IdPath, change_id: IdPath, session: SessionDep, _: Reader, response: Response
) -> ChangeRequestOut:
    """One change request; while pending, `ETag` carries the content ETag to approve it with."""
    incident = service.get_incident(session, incident_id)
    out = ChangeRequestOut.build(changes.get(session, incident_id, change_id), incident)
    if out.etag:
        response.headers["ETag"] = out.etag
    return out


@router.post(
    "/incidents/{incident_id}/change-requests/{change_id}/approve",
    response_model=ChangeRequestOut,
    responses=approval.approve_responses("the change request", not_found="No such incident or change request."),
    openapi_extra=doors.door("incident.edit"),
)
def approve_change_request(
    incident_id: IdPath, change_id: IdPath, session: SessionDep, who: Publisher, if_match: approval.IfMatch = None
) -> ChangeRequestOut:
    """Apply a pending change request (someone other than the requester, exactly the diff they reviewed): the
    incident changes as a PATCH would, and the public pages follow."""
    incident, row = changes.approve(session, incident_id, change_id, who, if_match)
    return ChangeRequestOut.build(row, incident)


@router.post(
    "/incidents/{incident_id}/change-requests/{change_id}/reject",
    response_model=ChangeRequestOut,
    responses={
        403: {"model": ErrorOut, "description": "The requester cannot reject their own change, or no publish scope."},
        404: {"model": ErrorOut, "description": "No such incident or change request."},
        409: {"model": ErrorOut, "description": "The change request is not pending (`not_pending`)."},
    },
    openapi_extra=doors.not_a_door("turns a change request down; the incident stays as it is"),
)
def reject_change_request(
    incident_id: IdPath, change_id: IdPath, body: RejectIn, session: SessionDep, who: Publisher
) -> ChangeRequestOut:
    """Reject a pending change request with a comment (someone other than the requester); nothing changes."""
    incident, row = changes.reject(session, incident_id, change_id, who.actor, body.comment)
    return ChangeRequestOut.build(row, incident)


@router.delete(
    "/incidents/{incident_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    openapi_extra=doors.not_a_door("only an incident without published updates can be deleted"),
)
def delete_incident(incident_id: IdPath, session: SessionDep, who: Admin) -> Response:
    before = approval.snapshot(service.get_incident(session, incident_id))
    service.delete_incident(session, incident_id)
    audit.record(session, who.actor, "incident.delete", "incident", incident_id, before=before)
    return Response(status_code=204)


@router.post(
    "/incidents/{incident_id}/updates",
    response_model=UpdateOut,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=doors.not_a_door("writes a draft"),
)
def add_update(incident_id: IdPath, body: UpdateIn, session: SessionDep, who: Writer) -> UpdateOut:
    incident = service.get_incident(session, incident_id)
    update = service.add_update(session, incident, body, who.actor)
    audit.record(
        session, who.actor, "update.create", "update", update.id, after=_state(update), incident_id=incident_id
    )
    return UpdateOut.model_validate(update)


@router.get("/incidents/{incident_id}/updates", response_model=list[UpdateOut])
def list_updates(incident_id: IdPath, session: SessionDep, _: Reader) -> list[UpdateOut]:
    return [UpdateOut.model_validate(u) for u in service.list_updates(session, incident_id)]


@router.get(
    "/updates/{update_id}",
    response_model=UpdateOut,
    responses={200: {"headers": {"ETag": {"description": PENDING_ETAG_DOC, "schema": {"type": "string"}}}}},
)
def get_update(update_id: IdPath, session: SessionDep, _: Reader, response: Response) -> UpdateOut:
    """One update. While it waits for approval, `ETag` carries the content ETag the requester asked to publish."""
    update = service.get_update(session, update_id)
    if update.state == UpdateState.pending_approval.value and update.approval_etag:
        response.headers["ETag"] = update.approval_etag
    return UpdateOut.model_validate(update)


@router.patch(
    "/updates/{update_id}",
    response_model=UpdateOut,
    openapi_extra=doors.not_a_door("a draft or pending update; an edit returns a pending one to draft"),
)
def edit_update(update_id: IdPath, body: UpdatePatch, session: SessionDep, who: Writer) -> UpdateOut:
    before = _state(approval.lock_update(session, update_id))  # the lock edit_update takes, held from here
    update = service.edit_update(session, update_id, body, who.actor)
    after = _state(update)
    changed = approval.changed_fields(before, after)
    audit.record(
        session,
        who.actor,
        "update.edit",
        "update",
        update_id,
        before={k: before[k] for k in changed},
        after={k: after[k] for k in changed},
        fields=sorted(body.model_fields_set),
    )
    return UpdateOut.model_validate(update)


@router.delete(
    "/updates/{update_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    openapi_extra=doors.not_a_door("a draft or pending update; an edit returns a pending one to draft"),
)
def delete_update(update_id: IdPath, session: SessionDep, who: Writer) -> Response:
    before = _state(service.get_update(session, update_id))
    service.delete_update(session, update_id)
    audit.record(session, who.actor, "update.delete", "update", update_id, before=before)
    return Response(status_code=204)


@router.post(
    "/updates/{update_id}/publish",
    response_model=PublishOut,
    responses={
        202: {
            "model": PublishOut,
            "description": "Waiting for a second person's approval.",
            "headers": {"ETag": {"description": PENDING_ETAG_DOC, "schema": {"type": "string"}, "required": True}},
        }
    },
    openapi_extra=doors.door("update.publish"),
)
def publish_update(update_id: IdPath, session: SessionDep, who: TestSender, response: Response) -> PublishOut:
    """Publish a draft now, or (high impact: see APPROVAL_SEVERITY) ask a second person to approve it (202).
    A test update (sent only to the test group) needs only the write scope; a live one needs publish."""
    result = publishing.publish(session, update_id, gate.Authority(who.actor, can_publish=who.has(Scope.publish)))
    if result.approval_required:
        response.status_code = status.HTTP_202_ACCEPTED
        response.headers["ETag"] = result.etag or ""
    return PublishOut(
        update=UpdateOut.model_validate(result.update),
        broadcast_id=result.broadcast_id,
        approval_required=result.approval_required,
        eta=_etas(session, result.update) if result.broadcast_id else [],
    )


def _state(update: Update) -> dict[str, Any]:
    """An update's content and state fields, for the audit log's before/after."""
    return {**approval.snapshot(update), "state": update.state}


def _etas(session: Session, update: Update) -> list[EtaOut]:
    """The publish answer's ETAs; an estimate that fails is left out, never a failed publish."""
    try:
        return eta.for_publish(session, update)
    except Exception:
        log.exception("ETA estimate failed for update %s", update.id)
        return []


@router.post(
    "/updates/{update_id}/approve",
    response_model=PublishOut,
    responses=approval.approve_responses("the preview you reviewed"),
    openapi_extra=doors.door("update.approve"),
)
def approve_update(
    update_id: IdPath, session: SessionDep, who: Publisher, if_match: approval.IfMatch = None
) -> PublishOut:
    """Approve a pending update and publish it: a second key, and exactly the content you previewed."""
    result = publishing.approve(session, update_id, who, if_match)
    return PublishOut(
        update=UpdateOut.model_validate(result.update),
        broadcast_id=result.broadcast_id,
        eta=_etas(session, result.update) if result.broadcast_id else [],
    )


@router.post(
    "/updates/{update_id}/reject",
    response_model=UpdateOut,
    responses={
        403: {"model": ErrorOut, "description": "The requester cannot reject their own request, or no publish scope."},
        404: {"model": ErrorOut, "description": "No such update."},
        409: {"model": ErrorOut, "description": "The update is not waiting for approval (`not_pending`)."},
    },
    openapi_extra=doors.not_a_door("returns a pending update to draft"),
)
def reject_update(update_id: IdPath, body: RejectIn, session: SessionDep, who: Publisher) -> UpdateOut:
    """Reject a pending update with a comment: it returns to draft and shows `rejection: {by, at, comment}`.

    Someone other than the requester (an approver, the publish scope) rejects; the author edits and asks again."""
    return UpdateOut.model_validate(approval.reject(session, update_id, who.actor, body.comment))


@router.post(
    "/updates/{update_id}/preview",
    response_model=PreviewOut,
    tags=["channels"],
    responses={
        200: {"headers": {"ETag": {"description": approval.ETAG_DOC, "schema": {"type": "string"}, "required": True}}}
    },
    openapi_extra=doors.not_a_door("renders what would be sent; nothing is stored"),
)
def preview_update(update_id: IdPath, session: SessionDep, who: Reader, response: Response) -> PreviewOut:
    """Exactly what each channel would send for this update (per locale), with warnings and counts.

    The `ETag` header (and `etag` field) identifies this exact content; approving needs it in `If-Match`.
    """
    update = service.get_update(session, update_id)
    out = build_preview(session, update, get_settings())
    out.etag = approval.content_etag(session, update, out)
    response.headers["ETag"] = out.etag
    return out


@router.post(
    "/preview",
    response_model=PreviewOut,
    tags=["channels"],
    openapi_extra=doors.not_a_door("renders a draft; nothing is stored"),
)
def preview_draft(body: DraftPreviewIn, session: SessionDep, who: Reader) -> PreviewOut:
    """Preview an unsaved update (nothing is stored)."""
    update = drafts.draft_update(session, body)
    return build_preview(session, update, get_settings())
