"""The doors: every way into what people receive or what the public sees (docs/doors.md shows this table).

Declarations only: publishing/gate.py decides for each door. A state-changing route names its door in its
OpenAPI description (`openapi_extra=door("update.publish")`, or `not_a_door("why")`), a background runner in its
`door` attribute, a CLI command in `cli.COMMAND_DOORS`; tests/core/test_doors.py enumerates all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
            "publish scope alone when below APPROVAL_SEVERITY and the audience threshold; a second person otherwise "
            "(also when its question's escalation mails the non-responders' details to a summary group); an "
            "editor's live update always waits for a second person",
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
            "publish scope plans, moves and cancels a window; its whole schedule is decided once then: at once below "
            "APPROVAL_SEVERITY and the audience threshold, else a second person approves the previewed schedule "
            "(GET /v1/maintenance/{id}/preview, POST .../approve with If-Match); any later change to the window or "
            "its incident voids the approval of notices not yet sent, and the worker re-checks each notice against "
            "its approved digest right before sending",
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
            "change an incident's public fields (title, severity, status, category, public, sites, affected services)",
            "write scope alone below APPROVAL_SEVERITY (before and after the edit) or while nothing of it is public; "
            "a live incident at or above it (or raised to it, recently at it, or made live by the edit) changes only "
            "through an approved update or a change request approved by someone else (202, then POST "
            "/v1/incidents/{id}/change-requests/{change_id}/approve with If-Match)",
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
            "escalation rules and recipients, channels added, contacts shown on live incidents) is proposed by an "
            "admin (202; anyone else: 403) and applied when a second person approves its diff (POST "
            "/v1/routing-map/versions/{n}/approve with If-Match); the CLI proposes one only with --proposer "
            "ADMIN_EMAIL (that person cannot approve it), and refuses it otherwise, as ROUTING_MAP_FILE does",
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
