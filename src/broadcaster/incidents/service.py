"""Incident and update operations. Services take a session and never commit."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, selectinload

from broadcaster.areas.service import validate_update_area
from broadcaster.domain import IncidentStatus, Severity, UpdateKind, UpdateState
from broadcaster.errors import AppError, Conflict, Forbidden, NotFound, Unprocessable
from broadcaster.incidents import changes, edits
from broadcaster.incidents.schemas import IncidentIn, IncidentPatch, UpdateIn, UpdatePatch
from broadcaster.models import Incident, Update
from broadcaster.models.changes import ChangeRequest
from broadcaster.publishing import gate
from broadcaster.publishing.approval import (
    cancel_pending,
    changed_fields,
    content_fields,
    lock_incident,
    lock_update,
)
from broadcaster.routing.service import get_category


def create_incident(session: Session, data: IncidentIn, actor: str) -> Incident:
    category = get_category(session, data.category, field="category")
    incident = Incident(
        title=data.title,
        category_id=category.id,
        severity=data.severity.value,
        affected_services=data.affected_services,
        sites=data.sites,
        public=data.public,
    )
    incident.set_status(data.status)
    incident.category = category
    session.add(incident)
    session.flush()
    if data.update is not None:
        try:
            add_update(session, incident, data.update, actor)
        except AppError as exc:  # name the field as the client sent it
            exc.field = f"update.{exc.field}" if exc.field else "update"
            raise
    return incident


def get_incident(session: Session, incident_id: int) -> Incident:
    incident = session.get(Incident, incident_id, options=[selectinload(Incident.updates)])
    if incident is None:
        raise NotFound(f"Incident {incident_id} does not exist.", field="incident_id")
    return incident


def list_incidents(
    session: Session,
    *,
    status: IncidentStatus | None = None,
    severity: Severity | None = None,
    category: str | None = None,
    active: bool | None = None,
    since: datetime | None = None,
    limit: int = 50,
    cursor: int | None = None,
) -> list[Incident]:
    stmt: Select[Incident] = select(Incident).order_by(Incident.id.desc()).limit(limit + 1)
    if status is not None:
        stmt = stmt.where(Incident.status == status.value)
    if severity is not None:
        stmt = stmt.where(Incident.severity == severity.value)
    if category is not None:
        stmt = stmt.where(Incident.category_id == get_category(session, category, field="category").id)
    if active is True:
        stmt = stmt.where(Incident.status != IncidentStatus.resolved.value)
    elif active is False:
        stmt = stmt.where(Incident.status == IncidentStatus.resolved.value)
    if since is not None:
        stmt = stmt.where(Incident.started_at >= since)
    if cursor is not None:
        stmt = stmt.where(Incident.id < cursor)
    return list(session.scalars(stmt))


@dataclass
class IncidentEdit:
    """What a PATCH did: applied at once (`previous`: the old value of each field that changed), or asked a
    second person (`change_request`)."""

    incident: Incident
    verdict: gate.Verdict
    previous: dict[str, Any] = field(default_factory=dict)
    change_request: ChangeRequest | None = None


def update_incident(session: Session, incident_id: int, patch: IncidentPatch, who: gate.Authority) -> IncidentEdit:
    """Change an incident's public fields as the gate decides (`gate.decide_incident_edit`, door
    `incident.edit`): at once (incidents/edits.py: pending approvals cancelled, a lowered severity remembered,
    caches invalidated), or as a change request a second person approves. The decision is taken under the
    incident's lock and audited (`gate.decision`) whenever something would change."""
    lock_incident(session, incident_id)
    incident = get_incident(session, incident_id)
    wanted = edits.requested(session, incident, patch)
    verdict = gate.decide_incident_edit(session, incident, wanted, who)
    if wanted:
        gate.record(session, verdict, who.actor, "incident", incident.id, fields=sorted(wanted))
    if verdict.decision is gate.Decision.refused:
        raise Forbidden(verdict.reason, field="Authorization", code="refused_by_gate", door=verdict.door)
    if verdict.decision is gate.Decision.second_person:
        row = changes.request(session, incident, wanted, who.actor, verdict.reason)
        return IncidentEdit(incident, verdict, change_request=row)
    return IncidentEdit(incident, verdict, previous=edits.apply(session, incident, wanted, who.actor))


def delete_incident(session: Session, incident_id: int) -> None:
    incident = get_incident(session, incident_id)
    if any(u.state == UpdateState.published.value for u in incident.updates):
        raise Conflict(
            "An incident with published updates is part of the delivery record and cannot be deleted; "
            "resolve it instead.",
            field="incident_id",
        )
    session.delete(incident)
    session.flush()


def _update_values(data: UpdateIn | UpdatePatch) -> dict[str, Any]:
    values = data.model_dump(exclude_unset=True, mode="json")
    values.pop("question", None)  # stored in its own table (broadcaster.responses)
    if values.get("area") is not None and data.area is not None:
        values["area"] = data.area.stored()
    if "translations" in values and values["translations"] is not None:
        values["translations"] = {
            k: {"body": v["body"], "summary": v.get("summary", "")} for k, v in values["translations"].items()
        }
    if "links" in values and values["links"] is not None:
        values["links"] = [{"title": link["title"], "url": link["url"]} for link in values["links"]]
    if "audience" in values and values["audience"] is not None:
        values["audience"] = {k: v for k, v in values["audience"].items() if v is not None}
    return values


def _check_service_states(session: Session, states: dict[str, str] | None) -> None:
    """An update's `service_states` must name defined services (422 naming `service_states`)."""
    if states:
        from broadcaster.services.service import check_slugs

        check_slugs(session, states, field="service_states", always=True)


def add_update(session: Session, incident: Incident, data: UpdateIn, actor: str) -> Update:
    """Add a draft update to the timeline; a correction/cancel must target a published update here."""
    if data.corrects is not None:
        target = session.get(Update, data.corrects)
        if target is None or target.incident_id != incident.id:
            raise Unprocessable(f"Update {data.corrects} is not an update of incident {incident.id}.", field="corrects")
        if target.state != UpdateState.published.value:
            raise Unprocessable(f"Update {data.corrects} is not published; edit the draft instead.", field="corrects")
    values = _update_values(data)
    _check_service_states(session, values.get("service_states"))
    validate_update_area(session, values.get("area"))
    update = Update(
        incident_id=incident.id,
        kind=data.kind.value,
        corrects_id=data.corrects,
        state=UpdateState.draft.value,
        status=values.get("status"),
        body=data.body,
        summary=data.summary,
        locale=data.locale,
        translations=values.get("translations", {}),
        links=values.get("links", []),
        channels=data.channels,
        audience=values.get("audience"),
        test=data.test,
        service_states=values.get("service_states"),
        area=values.get("area"),
        created_by=actor,
    )
    session.add(update)
    session.flush()
    if data.question is not None:
        from broadcaster.responses.service import set_question

        set_question(session, update, data.question)
    return update


def get_update(session: Session, update_id: int) -> Update:
    update = session.get(Update, update_id)
    if update is None:
        raise NotFound(f"Update {update_id} does not exist.", field="update_id")
    return update


def list_updates(session: Session, incident_id: int) -> list[Update]:
    get_incident(session, incident_id)
    return list(session.scalars(select(Update).where(Update.incident_id == incident_id).order_by(Update.id)))


def _require_draft(update: Update) -> None:
    if update.state == UpdateState.published.value:
        raise Conflict(
            f"Update {update.id} is published and cannot change; post a correction instead.",
            field="update_id",
            code="already_published",
        )


def edit_update(session: Session, update_id: int, patch: UpdatePatch, actor: str) -> Update:
    """Edit a draft or pending update; a change returns a pending update to draft (its approval is void): to its
    fields, or to what it binds (its question and the question's escalation, the named areas it targets)."""
    update = lock_update(session, update_id)
    _require_draft(update)
    pending = update.state == UpdateState.pending_approval.value
    before = content_fields(session, update) if pending else {}
    values = _update_values(patch)
    _check_service_states(session, values.get("service_states"))
    validate_update_area(session, values.get("area"))
    for key, value in values.items():
        if value is not None or key in ("status", "channels", "audience", "service_states", "area"):
            setattr(update, key, value)
    if "question" in patch.model_fields_set:
        from broadcaster.responses.service import set_question

        set_question(session, update, patch.question)
        session.expire(update, ["question"])
    if pending:
        after = content_fields(session, update)
        cancel_pending(session, [update], actor, changed_fields(before, after), cause="update edited")
    session.flush()
    return update


def delete_update(session: Session, update_id: int) -> None:
    update = get_update(session, update_id)
    _require_draft(update)
    session.delete(update)
    session.flush()


def is_retraction(update: Update) -> bool:
    return update.kind == UpdateKind.cancel.value
