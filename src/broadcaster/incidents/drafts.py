"""Unsaved drafts: the transient Incident and Update a draft preview renders (POST /v1/preview), before anything
is stored."""

from __future__ import annotations

from sqlalchemy.orm import Session

from broadcaster.areas.service import validate_update_area
from broadcaster.errors import Unprocessable
from broadcaster.incidents.schemas import DraftPreviewIn
from broadcaster.models import Category, Incident, Update
from broadcaster.responses.service import attach_draft_question
from broadcaster.routing.service import get_category


def draft_update(session: Session, data: DraftPreviewIn) -> Update:
    """Transient Incident/Update objects for an unsaved draft; nothing is added to the session."""
    if data.incident_id is not None:
        existing = session.get(Incident, data.incident_id)
        if existing is None:
            raise Unprocessable(
                f"Incident {data.incident_id} does not exist.", field="incident_id", code="unknown_incident"
            )
        category: Category = existing.category
        incident = Incident(
            id=existing.id,
            title=existing.title,
            severity=data.severity.value if data.severity else existing.severity,
            status=existing.status,
            category_id=category.id,
            affected_services=list(existing.affected_services or []),  # who a services reach targets
        )
    else:
        assert data.category is not None and data.severity is not None
        category = get_category(session, data.category, field="category")
        incident = Incident(
            title=data.title, severity=data.severity.value, status="investigating", category_id=category.id
        )
    incident.category = category
    body = data.update
    update = Update(
        kind=body.kind.value,
        corrects_id=body.corrects,
        state="draft",
        status=body.status.value if body.status else None,
        body=body.body,
        summary=body.summary,
        locale=body.locale,
        translations={k: v.model_dump() for k, v in body.translations.items()},
        links=[{"title": ln.title, "url": str(ln.url)} for ln in body.links],
        channels=body.channels,
        audience=body.audience.model_dump(exclude_none=True) if body.audience else None,
        test=body.test,
        area=body.area.stored() if body.area else None,
    )
    if body.area is not None:
        validate_update_area(session, update.area, field="update.area")
    update.incident = incident
    update.incident_id = incident.id
    if body.question is not None:
        attach_draft_question(update, body.question)
    return update
