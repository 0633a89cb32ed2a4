"""The one gate: for every door, whether an action may take effect now, needs a second person, or is refused.

A door is anything that sends to people or changes what the public sees (`DOORS`, the table docs/doors.md
shows). Every door asks this module and nothing else; each decision is recorded in the audit log
(`gate.decision`: the door, the decision, the reason). No caller skips a decision on its own authority: what a
caller may bring is an `Authority` (who asks, whether they hold the publish scope, and an automation allowance
that a second person approved in the routing map).

The send rule (publish, corrections and retractions, the alerts API, alert rules, maintenance notices):
- a test send goes to the test group only: now;
- a live send by someone without the publish scope (an editor): a second person;
- a high-impact send (the incident's severity reaches APPROVAL_SEVERITY, or did within
  APPROVAL_DOWNGRADE_WINDOW; or one channel would reach more than APPROVAL_AUDIENCE_THRESHOLD people): a second
  person, unless an approved routing-map version allows this automation;
- anything else: now.

The schedule rule (maintenance notices, `decide_schedule`): a schedule of sends planned ahead is decided once,
as a whole, when it is planned or changed: a second person when any of its sends is high impact (as above), when
its author lacks the publish scope or when a change from outside voided its approval; now otherwise. Its sends
then go through the send rule with an Authority naming that approval.

The incident edit rule (`incident.edit`: title, severity, status, category, public flag, sites, affected
services), `decide_incident_edit`:
- while the incident is live (public, not resolved, with a published non-test update) before or after the
  edit, and its severity reaches APPROVAL_SEVERITY before or after it, or did within APPROVAL_DOWNGRADE_WINDOW:
  a second person (a change request), whoever asks, unless an approved routing-map version allows the
  automation that asks;
- anything else (below the level before and after, or nothing public): now, audited.

The routing-map rule (`decide_map_change`): a change that does not loosen safety takes effect now; a loosening one
(alert-rule automation, escalation rules and their recipients, channels, contacts shown on live incidents) is
proposed by an admin and applied when a second person approves its diff (routing/versions.py); anyone else is
refused.

The doors themselves are listed in broadcaster/doors.py; routes declare theirs with `doors.door(...)` /
`doors.not_a_door(...)` (an OpenAPI extension, `x-door`), runners with a `door` attribute, CLI commands in
cli.COMMAND_DOORS; tests/core/test_doors.py enumerates them all, so a new one cannot appear unseen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.delivery.audience import audience_counts
from broadcaster.domain import IncidentStatus, Severity, UpdateState
from broadcaster.doors import DOORS
from broadcaster.models import Incident, Update
from broadcaster.publishing import approval
from broadcaster.publishing.binding import binding
from broadcaster.settings import get_settings


class Decision(StrEnum):
    now = "now"
    second_person = "second_person"
    refused = "refused"


@dataclass(frozen=True)
class Authority:
    """Who asks a door, and what they may do alone."""

    actor: str
    #: holds the publish scope (an editor does not: their live sends wait for an approver)
    can_publish: bool = True
    #: an automation allowance from an approved routing-map version (e.g. "alert_rules[disk-full] in version 7");
    #: None when the caller has none
    automation: str | None = None


@dataclass(frozen=True)
class Verdict:
    door: str
    decision: Decision
    reason: str

    @property
    def now(self) -> bool:
        return self.decision is Decision.now


def high_impact(session: Session, incident: Incident, update: Update) -> str | None:
    """Why a send is high impact (None when it is not): the incident's severity reaches APPROVAL_SEVERITY or did
    within APPROVAL_DOWNGRADE_WINDOW; its question's escalation mails the non-responders' details to a summary
    group (personal data leaving the audience); or one channel would reach more than APPROVAL_AUDIENCE_THRESHOLD
    people. `APPROVAL_SEVERITY=none` turns these rules off."""
    settings = get_settings()
    if settings.approval_severity == "none":
        return None
    level = Severity(settings.approval_severity)
    if Severity(incident.severity).rank >= level.rank:
        return f"severity {incident.severity} reaches APPROVAL_SEVERITY ({level.value})"
    if approval.recently_at_level(incident, level):
        return f"the incident was at {level.value} or above within APPROVAL_DOWNGRADE_WINDOW"
    question = binding(session, update).question
    escalation = question.escalation if question is not None else None
    if escalation is not None and escalation.threshold is not None:
        return "the question's escalation sends the non-responders' names and addresses to a summary group"
    if settings.approval_audience_threshold > 0:
        counts = audience_counts(session, update)
        widest = max(counts.values(), default=0)
        if widest > settings.approval_audience_threshold:
            return f"{widest} recipients on one channel exceed APPROVAL_AUDIENCE_THRESHOLD"
    return None


def decide_send(session: Session, door_name: str, update: Update, who: Authority) -> Verdict:
    """The send rule (module docstring) for `update` through `door_name`."""
    DOORS[door_name]
    if update.test:
        return Verdict("update.test", Decision.now, "a test send reaches the test group only")
    if not who.can_publish:
        return Verdict(door_name, Decision.second_person, "a live send by someone without the publish scope")
    why = high_impact(session, update.incident, update)
    if why is None:
        return Verdict(door_name, Decision.now, "below APPROVAL_SEVERITY and the audience threshold")
    if who.automation:
        return Verdict(door_name, Decision.now, f"{why}; allowed by {who.automation}")
    return Verdict(door_name, Decision.second_person, why)


def decide_schedule(
    session: Session,
    door_name: str,
    incident: Incident,
    sends: Sequence[tuple[str, Update]],
    who: Authority,
    *,
    voided: str | None = None,
) -> Verdict:
    """The schedule rule (maintenance notices): a schedule of sends planned ahead is decided once, as a whole,
    when it is planned or changed, so that no send waits for a second person at its own moment.

    `sends` are the schedule's unsaved updates, each with a label naming it. A second person when `who` lacks
    the publish scope, when a change from outside the schedule voided its approval (`voided`: e.g. an edit of
    its incident, whose author's scopes are not known there), or when any send would be high impact
    (`high_impact`); now otherwise. An automation allowance counts for nothing here."""
    DOORS[door_name]
    if not who.can_publish:
        return Verdict(door_name, Decision.second_person, "planned by someone without the publish scope")
    if voided:
        return Verdict(door_name, Decision.second_person, f"the approval was voided: {voided}")
    reasons: dict[str, list[str]] = {}
    for label, update in sends:
        why = high_impact(session, incident, update)
        if why is not None:
            reasons.setdefault(why, []).append(label)
    if reasons:
        return Verdict(
            door_name,
            Decision.second_person,
            "; ".join(f"{why} ({', '.join(labels)})" for why, labels in reasons.items()),
        )
    return Verdict(door_name, Decision.now, "no send reaches APPROVAL_SEVERITY or the audience threshold")


def _has_public_update(session: Session, incident: Incident) -> bool:
    """A published non-test update of the incident exists (what puts it on the public surfaces)."""
    stmt = select(
        exists().where(
            Update.incident_id == incident.id,
            Update.state == UpdateState.published.value,
            Update.test.is_(False),
        )
    )
    return bool(session.scalar(stmt))


def is_live(session: Session, incident: Incident, changes: Mapping[str, Any] | None = None) -> bool:
    """Whether the incident (after `changes`, when given) shows on the banner, status page and feeds: public,
    not resolved, with a published non-test update (public/queries.active_incidents; stricter: a retracted
    incident or a planned maintenance window's still counts)."""
    changes = changes or {}
    public = bool(changes.get("public", incident.public))
    status = changes.get("status", incident.status)
    if not public or status == IncidentStatus.resolved.value:
        return False
    return _has_public_update(session, incident)


def _edit_reaches_level(incident: Incident, changes: Mapping[str, Any], level: Severity) -> str | None:
    """Why an edit of `incident` is at the approval level (None when below it before and after)."""
    if Severity(incident.severity).rank >= level.rank:
        return f"severity {incident.severity} reaches APPROVAL_SEVERITY ({level.value})"
    if "severity" in changes and Severity(changes["severity"]).rank >= level.rank:
        return f"raising the severity to {changes['severity']} reaches APPROVAL_SEVERITY ({level.value})"
    if approval.recently_at_level(incident, level):
        return f"the incident was at {level.value} or above within APPROVAL_DOWNGRADE_WINDOW"
    return None


def decide_incident_edit(session: Session, incident: Incident, changes: Mapping[str, Any], who: Authority) -> Verdict:
    """The incident edit rule (module docstring) for `changes` ({public field: new value}, only the fields that
    change) to `incident`, asked by `who`."""
    door_name = "incident.edit"
    if not changes:
        return Verdict(door_name, Decision.now, "nothing changes")
    settings = get_settings()
    if settings.approval_severity == "none":
        return Verdict(door_name, Decision.now, "APPROVAL_SEVERITY=none")
    why = _edit_reaches_level(incident, changes, Severity(settings.approval_severity))
    if why is None:
        return Verdict(door_name, Decision.now, "below APPROVAL_SEVERITY before and after the edit")
    if not (is_live(session, incident) or is_live(session, incident, changes)):
        return Verdict(door_name, Decision.now, "not public content: not public, resolved, or nothing published")
    if who.automation:
        return Verdict(door_name, Decision.now, f"{why}; allowed by {who.automation}")
    return Verdict(door_name, Decision.second_person, f"{why}, and the incident's content is live")


def decide_map_change(loosens: Sequence[str], *, admin: bool) -> Verdict:
    """The routing-map rule: a change that does not loosen safety takes effect now (write scope, audited); one that
    loosens it (`routing.mapdiff.loosening` says why) is proposed by an admin and waits for a second person to
    approve its diff; anyone else is refused."""
    if not loosens:
        return Verdict("routing.map", Decision.now, "the change does not loosen safety")
    why = "; ".join(loosens)
    if not admin:
        return Verdict(
            "routing.map", Decision.refused, f"only an admin may propose a change that loosens safety: {why}"
        )
    return Verdict("routing.map", Decision.second_person, f"loosens safety: {why}")


def record(session: Session, verdict: Verdict, actor: str, target_type: str, target_id: Any, **detail: Any) -> None:
    """Audit the decision (`gate.decision`)."""
    audit.record(
        session,
        actor,
        "gate.decision",
        target_type,
        target_id,
        door=verdict.door,
        decision=verdict.decision.value,
        reason=verdict.reason,
        **detail,
    )
