"""Changing an incident's public fields: what a patch would change, and applying changes (a PATCH the gate lets
through at once, or an approved change request: one code path).

Changes are `{field: value}` in the stored form (category slug, severity and status names), only the fields that
differ from the incident: the same shape a change request keeps (models/changes.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from broadcaster import audit, hooks
from broadcaster.domain import IncidentStatus
from broadcaster.incidents.schemas import IncidentPatch
from broadcaster.invalidation import content_changed
from broadcaster.models import Incident, utcnow
from broadcaster.publishing import changes as change_requests
from broadcaster.publishing.approval import cancel_pending, changed_fields, note_severity_change, snapshot
from broadcaster.publishing.changes import FIELDS
from broadcaster.routing.service import get_category


def requested(session: Session, incident: Incident, patch: IncidentPatch) -> dict[str, Any]:
    """The fields `patch` would change, with their new values (a field sent as null is left alone; an unknown
    category is a 422 naming `category`)."""
    values = patch.model_dump(exclude_unset=True, mode="json")
    current = snapshot(incident)
    out: dict[str, Any] = {}
    for name in FIELDS:
        value = values.get(name)
        if value is None:
            continue
        if name == "category":
            value = get_category(session, value, field="category").slug
        if value != current[name]:
            out[name] = value
    return out


def apply(
    session: Session, incident: Incident, changes: dict[str, Any], actor: str, *, keep: int | None = None
) -> dict[str, Any]:
    """Apply `changes` to the incident; returns the previous value of each field that changed.

    A change cancels the approval requests of the incident's pending updates (their content changed), voids
    its other pending change requests (`keep`: the one being applied) and the approvals bound to it through
    `hooks.incident_changed` (a maintenance window's schedule); a lowered severity is remembered so
    publishing soon after still needs approval; resolving restores the affected services; the public caches
    are invalidated after the commit.
    """
    before = snapshot(incident)
    if changes.get("category") is not None:
        incident.category = get_category(session, changes["category"], field="category")
        incident.category_id = incident.category.id
    if changes.get("severity") is not None:
        note_severity_change(incident, incident.severity, changes["severity"])
        incident.severity = changes["severity"]
    if changes.get("status") is not None:
        incident.set_status(changes["status"])
    for key in ("title", "affected_services", "sites", "public"):
        if changes.get(key) is not None:
            setattr(incident, key, changes[key])
    changed = changed_fields(before, snapshot(incident))
    cancel_pending(session, incident.updates, actor, changed, cause="incident edited")
    change_requests.void_pending(session, incident.id, actor, changed, cause="incident edited", keep=keep)
    if changed:
        for void in hooks.incident_changed.functions():  # e.g. a maintenance window's approved schedule
            void(session, incident, changed, actor)
    if "status" in changed and incident.status == IncidentStatus.resolved.value:
        from broadcaster.services.service import restore_after_resolution

        restore_after_resolution(session, incident, actor)
    if changed:  # a PATCH that changes nothing leaves the incident (and its public pages) alone
        incident.updated_at = utcnow()
        if "title" in changed:  # the feeds' entries carry the title (public/feeds.py)
            incident.title_changed_at = incident.updated_at
        content_changed(session)
    session.flush()
    return {name: before[name] for name in changed}


def audit_applied(session: Session, actor: str, incident: Incident, previous: dict[str, Any], **detail: Any) -> None:
    """Audit an applied edit (`incident.update`: before and after of the fields that changed; `severity: {from,
    to}` kept for the record of downgrades, see APPROVAL_DOWNGRADE_WINDOW)."""
    detail["changed"] = sorted(previous)
    if "severity" in previous:
        detail["severity"] = {"from": previous["severity"], "to": incident.severity}
    after = {name: value for name, value in snapshot(incident).items() if name in previous}
    audit.record(session, actor, "incident.update", "incident", incident.id, before=previous, after=after, **detail)
