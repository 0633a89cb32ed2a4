"""What an approval binds besides the rendered text (`schemas.Binding`).

Who the update reaches: its audience (categories, tags, languages, the test group), the category's `reach` and
the incident's affected services that exist (their followers are reached); and what the features add through
`hooks.content_binding`: the named areas with a version (hash) of each one's geometry and the update's own
polygon or circle (areas), the question with its *effective* escalation, i.e. its own rules or else its
category's from the routing map, with every summary recipient (responses).

The preview shows it, `approval.content_etag` hashes it, and `parts` splits it into the fields a change made
elsewhere (the routing map, an area, a service, the question) is audited under when it voids a pending approval.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster import hooks
from broadcaster.models import Update
from broadcaster.models.services import Service
from broadcaster.publishing.schemas import Binding


def binding(session: Session, update: Update) -> Binding:
    """What approving `update` binds besides its rendered text (module docstring)."""
    incident = update.incident
    audience = update.audience or {}
    named = list(incident.affected_services or [])
    services = sorted(session.scalars(select(Service.slug).where(Service.slug.in_(named)))) if named else []
    values: dict[str, Any] = {
        "categories": sorted(audience.get("categories") or [incident.category.slug]),
        "tags": sorted(audience.get("tags") or []),
        "locales": sorted(audience.get("locales") or []),
        "test_group_only": bool(update.test),
        "reach": incident.category.reach or "either",
        "services": services,
    }
    for contribute in hooks.content_binding.functions():
        values.update(contribute(session, update) or {})
    return Binding.model_validate(values)


def parts(bound: Binding) -> dict[str, Any]:
    """The binding's parts that can change outside the update's and incident's own fields, by the name a void
    is audited under: the question (text, options), its escalation, the areas, services and reach."""
    data = bound.bound()
    question = data.get("question") or None
    return {
        "question": {k: v for k, v in question.items() if k != "escalation"} if question else None,
        "escalation": question.get("escalation") if question else None,
        "areas": data["areas"],
        "services": data["services"],
        "reach": data["reach"],
    }
