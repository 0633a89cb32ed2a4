"""Routing-map versions: every change of the map is recorded as a version; one that loosens safety needs an admin
to propose it and a second person to approve its diff (docs/core.md, "Routing-map versions").

- `submit` is the one way a change enters (PUT /v1/routing-map, the category endpoints, `broadcaster routing
  import`, ROUTING_MAP_FILE at start-up): it compares the new map with the stored one (`mapdiff.loosening`),
  asks the gate (`gate.decide_map_change`) and records its decision, then applies the change at once (a new
  applied version) or stores a proposal (nothing changes). A newer change supersedes older pending proposals.
- `approve` applies a proposal atomically: a second person (publish or admin scope, not the proposer, not
  waiting out APPROVER_GRANT_DELAY) with the proposal's ETag in If-Match. `reject` turns it down with a comment.
- `allowance` is how an alert rule's `two_person_rule: automation_allowed` counts: only while the rule is exactly
  as it was in a version a second person approved.
Services take a session and never commit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.domain import IncidentStatus, Severity, UpdateState
from broadcaster.errors import Conflict, NotFound
from broadcaster.models import Category, Incident, Update, utcnow
from broadcaster.models.routing import APPLIED, PROPOSED, REJECTED, SUPERSEDED, RoutingMapVersion
from broadcaster.publishing import approval, approvers, gate
from broadcaster.routing import mapdiff, service
from broadcaster.security import Principal
from broadcaster.settings import get_settings

# --- reading -------------------------------------------------------------------------------------------------


def current(session: Session) -> RoutingMapVersion | None:
    """The version in force: the newest applied one (None before the first change of a new install)."""
    return session.scalars(
        select(RoutingMapVersion)
        .where(RoutingMapVersion.state == APPLIED)
        .order_by(RoutingMapVersion.number.desc())
        .limit(1)
    ).first()


def get(session: Session, number: int) -> RoutingMapVersion:
    row = session.scalar(select(RoutingMapVersion).where(RoutingMapVersion.number == number))
    if row is None:
        raise NotFound(f"Routing-map version {number} does not exist.", field="number", code="unknown_version")
    return row


def list_versions(session: Session, *, limit: int, cursor: int | None = None) -> list[RoutingMapVersion]:
    """Newest first; `cursor` is the last number seen. One more than `limit` when there is a next page."""
    stmt = select(RoutingMapVersion).order_by(RoutingMapVersion.number.desc()).limit(limit + 1)
    if cursor is not None:
        stmt = stmt.where(RoutingMapVersion.number < cursor)
    return list(session.scalars(stmt))


def pending(session: Session) -> list[RoutingMapVersion]:
    """Proposals waiting for a second person (at most one: a newer change supersedes older ones)."""
    return list(
        session.scalars(
            select(RoutingMapVersion)
            .where(RoutingMapVersion.state == PROPOSED)
            .order_by(RoutingMapVersion.number.desc())
        )
    )


def etag(row: RoutingMapVersion) -> str:
    """The proposal's content ETag (quoted): its number, the version it was compared with, and the whole map."""
    document = {"number": row.number, "base": row.base_number, "map": row.document}
    raw = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return '"' + hashlib.sha256(raw.encode()).hexdigest()[:40] + '"'


def document_of(session: Session, number: int | None) -> dict[str, Any]:
    """The map of version `number` (None: the empty map)."""
    if number is None:
        return {"categories": [], "alert_rules": [], "webhook_mappings": []}
    return dict(get(session, number).document)


def live_categories(session: Session) -> set[str]:
    """Slugs of the categories with a live incident at or above APPROVAL_SEVERITY (or there within
    APPROVAL_DOWNGRADE_WINDOW): public, unresolved, with a published update. Their contact and name are on the
    banner and the status page."""
    settings = get_settings()
    if settings.approval_severity == "none":
        return set()
    level = Severity(settings.approval_severity)
    shown = exists().where(
        Update.incident_id == Incident.id, Update.state == UpdateState.published.value, Update.test.is_(False)
    )
    rows = session.execute(
        select(Category.slug, Incident)
        .join(Incident, Incident.category_id == Category.id)
        .where(Incident.public.is_(True), Incident.status != IncidentStatus.resolved.value, shown)
    ).all()
    return {
        slug
        for slug, incident in rows
        if Severity(incident.severity).rank >= level.rank or approval.recently_at_level(incident, level)
    }


# --- automation allowances -----------------------------------------------------------------------------------


def _carried(doc: dict[str, Any], previous: RoutingMapVersion | None) -> dict[str, Any]:
    """The allowances of `previous` whose rule is unchanged in `doc` (a change applied at once keeps them)."""
    before = dict(previous.allowances or {}) if previous is not None else {}
    out = {}
    for rule in mapdiff.automation_rules(doc):
        held = before.get(rule["name"])
        if held and held.get("spec") == mapdiff.rule_hash(rule):
            out[rule["name"]] = held
    return out


def _granted(doc: dict[str, Any], number: int, approver: str) -> dict[str, Any]:
    """Every automation rule of a version a second person approved."""
    return {
        rule["name"]: {"version": number, "approved_by": approver, "spec": mapdiff.rule_hash(rule)}
        for rule in mapdiff.automation_rules(doc)
    }


def _unapproved_automation(doc: dict[str, Any], previous: RoutingMapVersion | None) -> list[str]:
    """Names of the automation rules of `doc` without an allowance carried from `previous`."""
    held = _carried(doc, previous)
    return [rule["name"] for rule in mapdiff.automation_rules(doc) if rule["name"] not in held]


def _unapproved_reasons(names: list[str], reasons: list[str]) -> list[str]:
    """A reason for each rule of `names` that `reasons` do not name yet."""
    return [
        f"alert_rules[{name}]: two_person_rule: automation_allowed has no second person's approval yet (approving "
        "this version approves it)"
        for name in names
        if not any(r.startswith(f"alert_rules[{name}]:") for r in reasons)
    ]


def allowance(session: Session, name: str, spec: dict[str, Any]) -> str | None:
    """Which approved version lets the alert rule `name` (as `spec`, its JSON) publish a high-impact alert alone,
    e.g. "alert_rules[disk-full] of routing-map version 7, approved by user:3"; None when none does (never
    approved, changed since, or only in the baseline of an upgraded install)."""
    allowances = session.scalar(
        select(RoutingMapVersion.allowances)
        .where(RoutingMapVersion.state == APPLIED)
        .order_by(RoutingMapVersion.number.desc())
        .limit(1)
    )
    held = (allowances or {}).get(name)
    if not held or held.get("spec") != mapdiff.rule_hash(spec):
        return None
    return f"alert_rules[{name}] of routing-map version {held['version']}, approved by {held['approved_by']}"


# --- changing the map ----------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What became of a change: the gate's verdict, the version recorded (None when nothing changed or the change
    was refused), and the diff and reasons it was decided on."""

    verdict: gate.Verdict
    version: RoutingMapVersion | None
    reasons: list[str] = field(default_factory=list)
    changes: list[mapdiff.ItemChange] = field(default_factory=list)

    @property
    def proposed(self) -> bool:
        return self.version is not None and self.version.state == PROPOSED

    @property
    def refused(self) -> bool:
        return self.verdict.decision is gate.Decision.refused


def lock(session: Session) -> None:
    """Serialise changes of the map until commit: a no-op UPDATE of the newest version row (the write lock on
    SQLite; that row's lock on PostgreSQL, so two changes never interleave). With no version yet, the unique
    version number keeps two first changes apart."""
    newest = select(func.max(RoutingMapVersion.number)).scalar_subquery()
    session.execute(
        sql_update(RoutingMapVersion)
        .where(RoutingMapVersion.number == newest)
        .values(number=RoutingMapVersion.number)
        .execution_options(synchronize_session=False)
    )


def _next_number(session: Session) -> int:
    return int(session.scalar(select(func.max(RoutingMapVersion.number))) or 0) + 1


def _supersede(session: Session, number: int, actor: str) -> list[int]:
    """Pending proposals older than `number` are superseded by it; their numbers."""
    rows = [r for r in pending(session) if r.number < number]
    for row in rows:
        row.state, row.superseded_by = SUPERSEDED, number
        audit.record(
            session,
            actor,
            "routing_map.supersede",
            "routing_map_version",
            row.number,
            before={"state": PROPOSED},
            after={"state": SUPERSEDED, "superseded_by": number},
        )
    return [r.number for r in rows]


def _export(session: Session) -> dict[str, Any]:
    return service.export_map(session).model_dump(mode="json")


def stored_map(session: Session) -> dict[str, Any]:
    """Take the lock (`lock`), then read the map in force (JSON): what a change is compared with."""
    lock(session)
    return _export(session)


def submit(
    session: Session,
    stored: dict[str, Any],
    proposed: dict[str, Any],
    *,
    actor: str,
    admin: bool,
    source: str,
    apply: Callable[[], Any],
) -> Outcome:
    """Decide a change of the map from `stored` (`stored_map`: the map now, read under the lock) to `proposed`
    (JSON), and carry it out:

    - no change: `apply()` runs (it changes nothing) and no version is recorded; except when an admin resubmits
      a map holding automation no second person approved yet (an upgraded install re-approving it): a proposal;
    - not loosening: `apply()` makes the change; a new applied version holds the map it made;
    - loosening, by an admin: a proposal holding `proposed`; nothing changes (the same proposal again: the
      pending one is answered);
    - loosening, by anyone else: refused (the decision is recorded; nothing changes).
    Every decision is recorded (`gate.decision`)."""
    changes = mapdiff.diff_maps(stored, proposed)
    previous = current(session)
    reasons = mapdiff.loosening(stored, proposed, live_categories(session))
    unapproved = _unapproved_automation(proposed, previous)
    if reasons:
        reasons += _unapproved_reasons(unapproved, reasons)
    elif not changes and admin and unapproved:
        reasons = _unapproved_reasons(unapproved, [])
    elif not changes:
        apply()
        return Outcome(gate.Verdict("routing.map", gate.Decision.now, "no change"), None)
    base = previous.number if previous else None
    same = next((p for p in pending(session) if not mapdiff.diff_maps(p.document, proposed)), None)
    if reasons and admin and same is not None and same.base_number == base:
        verdict = gate.Verdict("routing.map", gate.Decision.second_person, "already proposed")
        return Outcome(verdict, same, list(same.reasons), changes)
    verdict = gate.decide_map_change(reasons, admin=admin)
    summary = mapdiff.summary(changes)
    if verdict.decision is gate.Decision.refused:
        gate.record(session, verdict, actor, "routing_map", "-", reasons=reasons, summary=summary, source=source)
        return Outcome(verdict, None, reasons, changes)
    number = _next_number(session)
    superseded = _supersede(session, number, actor)
    row = RoutingMapVersion(
        number=number,
        proposed_by=actor,
        proposed_at=utcnow(),
        source=source,
        base_number=base,
        summary=summary,
        loosens=bool(reasons),
        reasons=reasons,
        allowances={},
    )
    if verdict.now:
        apply()
        row.document = _export(session)
        row.state, row.applied_at = APPLIED, utcnow()
        row.allowances = _carried(row.document, previous)
    else:
        row.document, row.state = proposed, PROPOSED
    session.add(row)
    session.flush()
    gate.record(session, verdict, actor, "routing_map_version", number, reasons=reasons, summary=summary, source=source)
    if row.state == PROPOSED:
        audit.record(
            session,
            actor,
            "routing_map.propose",
            "routing_map_version",
            number,
            after={"state": PROPOSED, "base": base},
            reasons=reasons,
            summary=summary,
            superseded=superseded,
            source=source,
        )
    return Outcome(verdict, row, reasons, changes)


def _pending_row(session: Session, number: int) -> RoutingMapVersion:
    row = get(session, number)
    if row.state != PROPOSED:
        raise Conflict(
            f"Routing-map version {number} is not waiting for approval (state {row.state}); a newer change "
            "supersedes a proposal, and an approved or rejected one is final.",
            field="number",
            code="not_pending",
        )
    return row


def check_if_match(if_match: str | None, current_etag: str, number: int) -> None:
    """428 without If-Match (or `*`), 412 when no entity-tag in it is the proposal's ETag."""
    if if_match is None or not if_match.strip() or if_match.strip() == "*":
        raise approval.PreconditionRequired(
            "Approving needs the If-Match header carrying the ETag of the proposal you reviewed: "
            f"GET /v1/routing-map/versions/{number} returns it in the ETag header and the `etag` field.",
            field="If-Match",
        )
    tags = [t.strip() for t in if_match.split(",")]
    if not any(not t.startswith("W/") and t.strip('"') == current_etag.strip('"') for t in tags):
        raise approval.PreconditionFailed(
            f"If-Match is not the ETag of routing-map version {number}; review its diff again "
            f"(GET /v1/routing-map/versions/{number}) and approve what it shows.",
            field="If-Match",
            current_etag=current_etag,
        )


def approve(session: Session, number: int, who: Principal, if_match: str | None) -> RoutingMapVersion:
    """A second person approves proposal `number` with its ETag in If-Match: the stored map becomes its map, in
    this transaction. 403 for the proposer or an approver waiting out APPROVER_GRANT_DELAY, 409 when it is not
    pending (or the map changed under it), 428/412 for a missing or stale If-Match."""
    lock(session)
    row = _pending_row(session, number)
    approvers.check_second_person(session, who, row.proposed_by, asked="proposed")
    check_if_match(if_match, etag(row), number)
    previous = current(session)
    if (previous.number if previous else None) != row.base_number:
        raise Conflict(
            f"The routing map changed since version {number} was proposed; propose it again.",
            field="number",
            code="not_pending",
        )
    routing_map = service.parse_map(json.dumps(row.document), source="map", json_only=True)
    service.replace_map(session, routing_map, actor=who.actor)
    document = _export(session)
    now = utcnow()
    row.document, row.state, row.applied_at, row.approved_by = document, APPLIED, now, who.actor
    row.allowances = _carried(document, previous) | _granted(document, number, who.actor)
    gate.record(
        session,
        gate.Verdict("routing.map", gate.Decision.now, "a second person approved the diff they reviewed"),
        who.actor,
        "routing_map_version",
        number,
        proposer=row.proposed_by,
        reasons=row.reasons,
    )
    audit.record(
        session,
        who.actor,
        "routing_map.approve",
        "routing_map_version",
        number,
        before={"state": PROPOSED, "applied": row.base_number},
        after={"state": APPLIED, "applied": number, "approved_by": who.actor},
        proposer=row.proposed_by,
        reasons=row.reasons,
    )
    session.flush()
    return row


def reject(session: Session, number: int, who: Principal, comment: str) -> RoutingMapVersion:
    """Turn proposal `number` down with a comment (nothing changes); 409 when it is not pending."""
    lock(session)
    row = _pending_row(session, number)
    row.state, row.rejected_by, row.rejected_at, row.comment = REJECTED, who.actor, utcnow(), comment
    audit.record(
        session,
        who.actor,
        "routing_map.reject",
        "routing_map_version",
        number,
        before={"state": PROPOSED},
        after={"state": REJECTED, "rejected_by": who.actor},
        proposer=row.proposed_by,
        comment=comment,
    )
    session.flush()
    return row
