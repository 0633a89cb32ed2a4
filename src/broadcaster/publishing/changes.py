"""Change requests' bookkeeping below the incidents feature: their content ETag, and voiding the pending ones
when the incident's public content changes another way (an applied edit, an update that moves the status).

The workflow (request, approve, reject) is incidents/changes.py; the decision is gate.decide_incident_edit.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.models import Incident, utcnow
from broadcaster.models.changes import ChangeRequest
from broadcaster.publishing.approval import PreconditionFailed, PreconditionRequired, snapshot
from broadcaster.publishing.approval import check_if_match as check_content_tag

PENDING = "pending"
#: the incident fields a change request may change, in the order its diff shows them (all of them show
#: publicly: banner, status page, feeds, CAP, the Statuspage-style JSON)
FIELDS = ("title", "severity", "status", "category", "public", "sites", "affected_services")


def content_etag(request: ChangeRequest, incident: Incident) -> str:
    """A strong ETag (quoted) over the request (its id, its changes, the content they were asked against) and the
    incident's public fields now: an approval is for exactly the diff the approver saw."""
    document = {
        "id": request.id,
        "incident_id": request.incident_id,
        "changes": request.changes,
        "base": request.base,
        "current": snapshot(incident),
    }
    raw = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return '"' + hashlib.sha256(raw.encode()).hexdigest()[:40] + '"'


def pending(session: Session, incident_id: int) -> list[ChangeRequest]:
    """The incident's pending change requests, oldest first."""
    stmt = (
        select(ChangeRequest)
        .where(ChangeRequest.incident_id == incident_id, ChangeRequest.state == PENDING)
        .order_by(ChangeRequest.id)
    )
    return list(session.scalars(stmt))


def close_pending(
    session: Session,
    incident_id: int,
    actor: str,
    *,
    state: str,
    cause: str,
    fields: list[str] | None = None,
    keep: int | None = None,
) -> list[int]:
    """Close the incident's pending change requests (but `keep`) as `state` (`superseded` or `voided`), each
    audited as `incident.change_<state>` with the cause. The ids closed."""
    closed: list[int] = []
    for row in pending(session, incident_id):
        if row.id == keep:
            continue
        row.state = state
        row.decided_by = actor
        row.decided_at = utcnow()
        row.comment = cause
        detail: dict[str, Any] = {"change_request": row.id, "requester": row.requested_by, "cause": cause}
        if fields is not None:
            detail["fields"] = fields
        audit.record(
            session,
            actor,
            f"incident.change_{state}",
            "incident",
            incident_id,
            before={"state": PENDING},
            after={"state": state},
            **detail,
        )
        closed.append(row.id)
    return closed


def void_pending(
    session: Session, incident_id: int, actor: str, fields: list[str], *, cause: str, keep: int | None = None
) -> list[int]:
    """The incident's public fields changed: its pending change requests were asked against other content, so
    none of them can be approved any more (`voided`). Nothing happens when no field changed."""
    if not fields:
        return []
    return close_pending(session, incident_id, actor, state="voided", cause=cause, fields=fields, keep=keep)


def check_if_match(if_match: str | None, current: str) -> None:
    """`approval.check_if_match` (428 without If-Match, 412 when it is not `current`), worded for a change
    request."""
    try:
        check_content_tag(if_match, current)
    except PreconditionRequired:
        raise PreconditionRequired(
            "Approving a change needs the If-Match header carrying the ETag of the change you reviewed: "
            "GET /v1/incidents/{id}/change-requests/{change_id} returns it in the ETag header and the `etag` field.",
            field="If-Match",
        ) from None
    except PreconditionFailed:
        raise PreconditionFailed(
            "The change or the incident changed since you reviewed it (If-Match does not match the current ETag); "
            "look at the change request again and approve what it shows.",
            field="If-Match",
            current_etag=current,
        ) from None
