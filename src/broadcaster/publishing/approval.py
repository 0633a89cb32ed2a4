"""The two-person rule's bookkeeping: content ETags, recent severity downgrades, cancelled approval requests.

- An approval is for exact content. `content_etag` hashes everything that decides what is sent and to whom:
  the incident's and the update's fields, the resolved channels and audience, every channel's rendered text
  per locale (templates and routing-map contacts included), and the binding the preview shows
  (publishing/binding.py: the category's reach and the services reached, each named area's geometry version,
  the question with its effective escalation and every summary recipient). The preview returns it; approve
  needs it back in `If-Match`.
- Any change to a pending update or its incident returns the update to draft (`cancel_pending`), audited
  with the fields that changed; so does a change made elsewhere to what it binds (`watch` before the change,
  `Watch.void` after it: the routing map's escalation rules or reach, an area's geometry, a service removed).
- Lowering an incident's severity does not skip approval: `Incident.severity_lowered_at` keeps, for each
  severity above the current one, the instant the incident last dropped below it, and `recently_at_level`
  reads it against `APPROVAL_DOWNGRADE_WINDOW`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import Header
from sqlalchemy import select
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.delivery.audience import resolved_channels
from broadcaster.domain import Severity, UpdateState
from broadcaster.errors import AppError, Conflict, ErrorOut, Forbidden, NotFound
from broadcaster.models import Incident, Update, utcnow
from broadcaster.publishing import binding as content_binding
from broadcaster.publishing.preview import preview as build_preview
from broadcaster.publishing.schemas import PreviewOut
from broadcaster.settings import get_settings

#: incident fields that change what is sent (all of them: title/severity/category/status are rendered,
#: sites/public decide where the banner and status page show it, affected services are in the payloads)
INCIDENT_FIELDS = ("title", "category", "severity", "status", "affected_services", "sites", "public")
#: update fields that change what is sent
UPDATE_FIELDS: tuple[str, ...] = ("kind", "corrects_id", "status", "body", "summary", "locale", "translations")
UPDATE_FIELDS += ("links", "channels", "audience", "test")
UPDATE_FIELDS += ("service_states",)
UPDATE_FIELDS += ("area",)


#: how the OpenAPI document describes the content ETag
ETAG_DOC = (
    "Content ETag: a hash over exactly what publishing this update would send and to whom (incident and update "
    "fields, resolved channels and audience, rendered text, and the preview's `binding`: services, areas with their "
    "geometry versions, the question with its effective escalation and summary recipients). Approve with "
    "`If-Match` set to it."
)


class PreconditionFailed(AppError):
    status_code, code = 412, "precondition_failed"


class PreconditionRequired(AppError):
    status_code, code = 428, "precondition_required"


# --- content ETag --------------------------------------------------------------------------------------


def _incident_values(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "title": incident.title,
        "category": incident.category.slug,
        "severity": incident.severity,
        "status": incident.status,
        "affected_services": list(incident.affected_services or []),
        "sites": list(incident.sites or []),
        "public": bool(incident.public),
    }


def content_etag(session: Session, update: Update, preview: PreviewOut | None = None) -> str:
    """A strong ETag (quoted) over exactly the content publishing `update` would send.

    Recipient counts and warnings are left out: subscribers joining do not change the message.
    """
    if preview is None:
        preview = build_preview(session, update, get_settings(), with_counts=False)
    audience = dict(update.audience or {})
    rendered = [
        {
            "channel": ch.channel,
            "kind": ch.kind,
            "locales": {
                r.locale: [r.subject, r.text, r.html]
                for r in [ch, *(ch.translations[k] for k in sorted(ch.translations))]
            },
        }
        for ch in preview.channels
    ]
    document = {
        "incident": _incident_values(update.incident),
        "update": {"id": update.id, **{name: getattr(update, name) for name in UPDATE_FIELDS}},
        "channels": resolved_channels(session, update),
        "audience": {
            "categories": sorted(audience.get("categories") or [update.incident.category.slug]),
            "tags": sorted(audience.get("tags") or []),
            "locales": sorted(audience.get("locales") or []),
            "test_group_only": bool(update.test),
        },
        "rendered": rendered,
        "binding": (preview.binding or content_binding.binding(session, update)).bound(),
    }
    raw = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return '"' + hashlib.sha256(raw.encode()).hexdigest()[:40] + '"'


def _opaque(tag: str) -> str:
    return tag.strip().strip('"')


def check_if_match(if_match: str | None, current: str) -> None:
    """428 when `If-Match` is missing (or `*`), 412 when no entity-tag in it is `current` (strong compare)."""
    if if_match is None or not if_match.strip() or if_match.strip() == "*":
        raise PreconditionRequired(
            "Approving needs the If-Match header carrying the ETag of the content you reviewed: "
            "POST /v1/updates/{id}/preview (or GET /v1/updates/{id} while pending) returns it in the ETag header "
            "and the `etag` field.",
            field="If-Match",
        )
    tags = [t.strip() for t in if_match.split(",")]
    if not any(not t.startswith("W/") and _opaque(t) == _opaque(current) for t in tags):
        raise PreconditionFailed(
            "The content changed since the preview you approved (If-Match does not match the current ETag); "
            "preview the update again and approve what it shows.",
            field="If-Match",
            current_etag=current,
        )


#: the `If-Match` header of every approve endpoint (updates, change requests, maintenance schedules, routing-map
#: versions): the ETag of exactly what the approver reviewed
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="Required: the ETag of what you reviewed (the preview of an update or a maintenance schedule, "
        "a change request, a routing-map proposal: each answers it in its `ETag` header). Without it the answer is "
        "428; when what it covers changed since, 412.",
    ),
]


def approve_responses(reviewed: str, *, not_found: str | None = None) -> dict[int | str, dict[str, Any]]:
    """The documented refusals of an approve endpoint, in the order it checks them (one contract for updates,
    change requests, maintenance schedules and routing-map versions)."""
    responses: dict[int | str, dict[str, Any]] = {
        403: {
            "model": ErrorOut,
            "description": "The requester cannot approve their own request; or a new approver (a role or key granted "
            "less than APPROVER_GRANT_DELAY ago, `approver_grant_delay`, with `may_approve_from`); or no publish "
            "scope.",
        },
        409: {"model": ErrorOut, "description": "Nothing is waiting for approval there (`not_pending`)."},
        412: {
            "model": ErrorOut,
            "description": f"{reviewed[0].upper()}{reviewed[1:]} changed since the ETag you sent.",
        },
        428: {"model": ErrorOut, "description": f"If-Match is missing: send the ETag of {reviewed}."},
    }
    if not_found:
        responses[404] = {"model": ErrorOut, "description": not_found}
    return responses


# --- locks ---------------------------------------------------------------------------------------------


def lock_incident(session: Session, incident_id: int) -> None:
    """Hold the incident's row until commit, so an edit and an approval of its updates never interleave.

    A no-op UPDATE takes the row lock on PostgreSQL and the write lock on SQLite before anything is read.
    """
    session.execute(
        sql_update(Incident)
        .where(Incident.id == incident_id)
        .values(updated_at=Incident.updated_at)
        .execution_options(synchronize_session=False)
    )


def lock_update(session: Session, update_id: int) -> Update:
    """Lock the update's incident, then load the update (and its incident) fresh."""
    incident_id = session.scalar(select(Update.incident_id).where(Update.id == update_id))
    if incident_id is None:
        raise NotFound(f"Update {update_id} does not exist.", field="update_id")
    lock_incident(session, incident_id)
    update = session.get(Update, update_id, populate_existing=True)
    if update is None:  # deleted between the two statements
        raise NotFound(f"Update {update_id} does not exist.", field="update_id")
    session.get(Incident, incident_id, populate_existing=True)
    return update


# --- cancelling a pending approval ---------------------------------------------------------------------


def snapshot(obj: Incident | Update) -> dict[str, Any]:
    """The content fields of an incident or update, to compare before and after an edit."""
    if isinstance(obj, Incident):
        return _incident_values(obj)
    return {name: getattr(obj, name) for name in UPDATE_FIELDS}


def content_fields(session: Session, update: Update) -> dict[str, Any]:
    """`snapshot(update)` and the parts of its binding that change outside its own fields (its question and
    effective escalation, the areas' geometry, services, reach): compared before and after an edit."""
    return {**snapshot(update), **content_binding.parts(content_binding.binding(session, update))}


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(k for k in after if before.get(k) != after[k])


@dataclass
class Watch:
    """Pending updates and what they bind, taken before a change made elsewhere (the routing map, an area, a
    service); `void` after the change returns those whose binding changed to draft."""

    before: dict[int, tuple[Update, dict[str, Any]]] = field(default_factory=dict)

    def void(self, session: Session, actor: str, *, cause: str) -> list[int]:
        """Cancel the pending approvals whose binding changed (audited with the parts that did); their ids."""
        session.flush()
        cancelled: list[int] = []
        for update, before in self.before.values():
            after = content_binding.parts(content_binding.binding(session, update))
            cancelled += cancel_pending(session, [update], actor, changed_fields(before, after), cause=cause)
        return cancelled


def watch(session: Session, keep: Callable[[Update], bool] | None = None, *, category_id: int | None = None) -> Watch:
    """Before a change made elsewhere: the pending updates (of incidents in `category_id`, and for which `keep`
    says yes) with their binding's parts. Their incidents are locked first (in id order), so an approval cannot
    publish one of them between this look and `Watch.void`. Few updates wait for approval at any time."""
    stmt = select(Update.id, Update.incident_id).where(Update.state == UpdateState.pending_approval.value)
    if category_id is not None:
        stmt = stmt.join(Incident, Incident.id == Update.incident_id).where(Incident.category_id == category_id)
    rows = session.execute(stmt.order_by(Update.id)).all()
    for incident_id in sorted({incident_id for _, incident_id in rows}):
        lock_incident(session, incident_id)
        session.get(Incident, incident_id, populate_existing=True)
    watched = Watch()
    for update_id, _ in rows:
        update = session.get(Update, update_id, populate_existing=True)
        if update is None or update.state != UpdateState.pending_approval.value or (keep and not keep(update)):
            continue
        watched.before[update.id] = (update, content_binding.parts(content_binding.binding(session, update)))
    return watched


def cancel_pending(
    session: Session, updates: Iterable[Update], actor: str, fields: list[str], *, cause: str
) -> list[int]:
    """Return pending updates to draft because their content changed; each is audited. The ids cancelled."""
    cancelled: list[int] = []
    if not fields:
        return cancelled
    for update in updates:
        if update.state != UpdateState.pending_approval.value:
            continue
        requester = update.published_by
        update.state = UpdateState.draft.value
        update.published_by = None
        update.approval_etag = None
        audit.record(
            session,
            actor,
            "update.approval_cancelled",
            "update",
            update.id,
            incident_id=update.incident_id,
            fields=fields,
            cause=cause,
            requester=requester,
            before={"state": UpdateState.pending_approval.value, "requested_by": requester},
            after={"state": update.state, "requested_by": None},
        )
        cancelled.append(update.id)
    return cancelled


# --- rejecting a pending update ------------------------------------------------------------------------


def reject(session: Session, update_id: int, actor: str, comment: str) -> Update:
    """An approver turns a pending update down: it returns to draft with who, when and why on it, audited.

    The requester cannot reject their own request (they edit it instead); 409 when nothing is pending.
    """
    update = lock_update(session, update_id)
    if update.state != UpdateState.pending_approval.value:
        raise Conflict(
            f"Update {update_id} is not waiting for approval (state {update.state}); only a pending update can be "
            "rejected.",
            field="update_id",
            code="not_pending",
        )
    requester = update.published_by
    if requester == actor:
        raise Forbidden(
            "The requester cannot reject their own approval request; edit the update instead (that returns it to "
            "draft).",
            field="Authorization",
        )
    before = rejection_state(update)
    update.state = UpdateState.draft.value
    update.published_by = None
    update.approval_etag = None
    update.rejected_by = actor
    update.rejected_at = utcnow()
    update.rejection_comment = comment
    audit.record(
        session,
        actor,
        "update.reject",
        "update",
        update.id,
        before=before,
        after=rejection_state(update),
        incident_id=update.incident_id,
        requester=requester,
        comment=comment,
    )
    session.flush()
    return update


def rejection_state(update: Update) -> dict[str, Any]:
    """The approval fields of an update, for the audit log's before/after."""
    return {
        "state": update.state,
        "requested_by": update.published_by if update.state == UpdateState.pending_approval.value else None,
        "approval_etag": update.approval_etag,
        "rejected_by": update.rejected_by,
        "rejected_at": update.rejected_at,
        "rejection_comment": update.rejection_comment,
    }


# --- severity downgrades -------------------------------------------------------------------------------


def note_severity_change(incident: Incident, old: str, new: str, now: datetime | None = None) -> None:
    """Remember when the incident dropped below each severity it held (for `recently_at_level`)."""
    old_rank, new_rank = Severity(old).rank, Severity(new).rank
    if old_rank == new_rank:
        return
    now = now or utcnow()
    lowered = {k: v for k, v in (incident.severity_lowered_at or {}).items() if Severity(k).rank > new_rank}
    for level in Severity:
        if new_rank < level.rank <= old_rank:
            lowered[level.value] = now.isoformat()
    incident.severity_lowered_at = lowered  # a new dict: the JSON column sees the change


def recently_at_level(incident: Incident, level: Severity, now: datetime | None = None) -> bool:
    """Whether the incident held `level` or higher within the last `APPROVAL_DOWNGRADE_WINDOW`."""
    window = get_settings().approval_downgrade_window
    if not window:
        return False
    since = (now or utcnow()) - window
    for name, at in (incident.severity_lowered_at or {}).items():
        if Severity(name).rank >= level.rank and datetime.fromisoformat(at) > since:
            return True
    return False
