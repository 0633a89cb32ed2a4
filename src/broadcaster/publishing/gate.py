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

Routes declare their door with `door(...)` / `not_a_door(...)` (an OpenAPI extension, `x-door`), runners and CLI
commands in their own tables; tests/core/test_doors.py enumerates them all, so a new one cannot appear unseen.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.delivery.audience import audience_counts
from broadcaster.domain import Severity
from broadcaster.models import Incident, Update
from broadcaster.publishing import approval
from broadcaster.settings import get_settings


class Decision(StrEnum):
    now = "now"
    second_person = "second_person"
    refused = "refused"


@dataclass(frozen=True)
class Door:
    """One way into what people receive or what the public sees."""

    name: str
    #: what it does, in a comms officer's words
    what: str
    #: who may use it alone, and what needs a second person (docs/doors.md)
    rule: str


#: every door (tests/core/test_doors.py checks each route, runner and CLI command names one of these, or says
#: why it is not a door)
DOORS: dict[str, Door] = {
    d.name: d
    for d in (
        Door(
            "update.publish",
            "publish an update (a correction or retraction too): every channel of its routing",
            "publish scope alone when below APPROVAL_SEVERITY and the audience threshold; a second person otherwise; "
            "an editor's live update always waits for a second person",
        ),
        Door(
            "update.test",
            "send an update to the test group only, visibly marked as a test",
            "write scope alone (nothing reaches anyone outside the test group)",
        ),
        Door(
            "update.approve",
            "approve exactly the content a second person previewed, and publish it",
            "publish scope; never the requester, never a role or key granted less than APPROVER_GRANT_DELAY ago; "
            "If-Match must be the content ETag",
        ),
        Door(
            "alerts.api",
            "an ops script's alert (POST /v1/alerts, `broadcaster alert`): incident, update and publish in one call",
            "the send rule: below APPROVAL_SEVERITY and the audience threshold at once, otherwise it waits for a "
            "second person (202)",
        ),
        Door(
            "alerts.rule",
            "an inbound alert (Alertmanager, Grafana, webhook) published by a routing-map alert rule",
            "the send rule; `two_person_rule: automation_allowed` counts only from a routing-map version a second "
            "person approved",
        ),
        Door(
            "maintenance.notice",
            "a scheduled maintenance notice (created, reminders, start, end, moved, cancelled)",
            "the schedule is approved once by a second person when any notice reaches APPROVAL_SEVERITY or the "
            "audience threshold; any later change to the window or its incident voids the approval of notices "
            "not yet sent",
        ),
        Door(
            "question.escalation",
            "a question's re-sends and threshold summaries",
            "exactly what the update's approval covered (its effective escalation, summary recipients included)",
        ),
        Door(
            "question.close",
            "close a question: escalations stop, CAP no longer asks",
            "publish scope alone (it only stops sending)",
        ),
        Door(
            "incident.edit",
            "change an incident's public fields (title, severity, status, category, public, sites)",
            "write scope alone below APPROVAL_SEVERITY; at or above it, only through an approved update or an "
            "approved change request",
        ),
        Door(
            "service.state",
            "create, change or remove a public service (component) or its state",
            "write scope alone, audited",
        ),
        Door(
            "routing.map",
            "change the routing map: categories, contacts, channels, alert rules, escalation rules",
            "write scope alone for changes that do not loosen safety; a loosening version (alert-rule automation, "
            "escalation rules and recipients, contacts shown on live incidents) is proposed by an admin and "
            "applied when a second person approves its diff",
        ),
        Door(
            "area.edit",
            "import, change or remove a named area",
            "write scope alone; a change voids pending approvals of updates targeting the area",
        ),
        Door(
            "static.publish",
            "copy the public pages to the static target",
            "the runner only mirrors what is already public",
        ),
    )
}

#: the OpenAPI extension naming a route's door
EXTENSION = "x-door"


def door(name: str) -> dict[str, Any]:
    """`openapi_extra` of a route that is a door (merge with `|` when the route has other extras)."""
    if name not in DOORS:
        raise KeyError(f"unknown door {name!r}")
    return {EXTENSION: name}


def not_a_door(reason: str) -> dict[str, Any]:
    """`openapi_extra` of a state-changing route that neither sends to people nor changes what the public sees."""
    return {EXTENSION: f"none: {reason}"}


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
    within APPROVAL_DOWNGRADE_WINDOW, or one channel would reach more than APPROVAL_AUDIENCE_THRESHOLD people.
    `APPROVAL_SEVERITY=none` turns both rules off."""
    settings = get_settings()
    if settings.approval_severity == "none":
        return None
    level = Severity(settings.approval_severity)
    if Severity(incident.severity).rank >= level.rank:
        return f"severity {incident.severity} reaches APPROVAL_SEVERITY ({level.value})"
    if approval.recently_at_level(incident, level):
        return f"the incident was at {level.value} or above within APPROVAL_DOWNGRADE_WINDOW"
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
