"""Inbound alerts: integrations (who may send), authentication, and turning notifications into incidents.

A notification becomes one or more *signals* (one per Alertmanager/Grafana group, or per alert with
`group_by: fingerprint`, or one per generic webhook call). Each signal is matched against the routing map's
`alert_rules`; its group row (`alert_groups`, unique per integration and key) is inserted-or-got and locked for
the rest of the transaction, so concurrent deliveries of the same group serialise and make one incident.

Then, per group:
- same content as last time (a repeat): nothing is sent; the group counts the notification;
- new firing group: an incident and its first update, published or drafted as the rule says;
- a change (new alerts in the group, resolved, fired again soon after resolving): an update, at most one per
  incident per `min_update_minutes` (ALERT_MIN_UPDATE_MINUTES); a change inside that window is kept and goes
  out when the window ends (the runner beside the worker flushes due groups), so a flapping alert makes at most
  one public update per window and the last state wins.
Services take a session and never commit.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.alertrules import rules as rulebook
from broadcaster.alertrules.schemas import (
    AlertmanagerPayload,
    AlertRule,
    GrafanaPayload,
    GroupBy,
    PublishMode,
    TwoPersonRule,
)
from broadcaster.alertrules.signals import RENDER_SECONDS, Signal, group_signals, webhook_signal
from broadcaster.alertrules.templating import Deadline, OverBudget, TemplateProblem, render_many
from broadcaster.domain import IncidentStatus
from broadcaster.errors import Conflict, NotFound, Unauthorized, Unprocessable, field_name
from broadcaster.incidents import service as incidents
from broadcaster.incidents.schemas import IncidentIn, IncidentPatch, UpdateIn
from broadcaster.integrations.schemas import GroupResult, IntegrationAuth, IntegrationIn, IntegrationKind
from broadcaster.models import Incident, Update, utcnow
from broadcaster.models.base import UTCDateTime
from broadcaster.models.integrations import AlertGroup, Integration
from broadcaster.publishing import gate
from broadcaster.publishing import service as publishing
from broadcaster.routing import versions as routing_versions
from broadcaster.settings import get_settings

#: Grafana's signature header when its contact point's HMAC "Header" field is blank: `defaultHeaderName =
#: "X-Grafana-Alert-Signature"` in grafana/alerting http/hmac.go (commit fdde1a13fb092b2f83219aa70a8ff169c83434ad).
#: There, `HMACRoundTripper.sign` writes hex(HMAC-SHA256(secret, [timestamp ":"] body)), lowercase, no prefix; the
#: timestamp (`strconv.FormatInt(clk.Now().Unix(), 10)`, Unix seconds) is sent and signed only when the
#: "Timestamp header" field names a header: Grafana has no default timestamp header name.
GRAFANA_DEFAULT_SIGNATURE_HEADER = "x-grafana-alert-signature"
#: headers carrying an HMAC-SHA256 of the body (hex, optionally `sha256=`-prefixed); the integration's own
#: `hmac_header` is read first. Besides Grafana's default: the name its form shows as a placeholder
#: ("X-Grafana-Alerting-Signature", receivers/webhook/v1/config.go), ours, and GitHub-style.
SIGNATURE_HEADERS = (
    GRAFANA_DEFAULT_SIGNATURE_HEADER,
    "x-grafana-alerting-signature",
    "x-broadcaster-signature",
    "x-hub-signature-256",
)
#: timestamp headers read when the integration names none: when present the signature covers
#: `<timestamp>:<body>` and must be recent
TIMESTAMP_HEADERS = ("x-broadcaster-timestamp", "x-grafana-alerting-timestamp")
TIMESTAMP_TOLERANCE_SECONDS = 300
MAX_TITLE = 300
#: the templates of one notification (all its groups) render within this; those not rendered by then are over
#: longest text kept per field of a rule (an affected service: per service)
FIELD_LIMITS = {"title": MAX_TITLE, "template": 10_000, "summary": 320, "resolved_template": 10_000}
SERVICE_LIMIT = 200

log = logging.getLogger(__name__)


# --- integrations ------------------------------------------------------------------------------------------


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_integration(session: Session, data: IntegrationIn) -> tuple[Integration, str]:
    """A new integration and its secret (shown once)."""
    if session.scalar(select(Integration.id).where(Integration.name == data.name)) is not None:
        raise Conflict(f"Integration {data.name!r} already exists.", field="name", code="duplicate")
    for field in ("signature_header", "timestamp_header"):
        if getattr(data, field) and data.auth is not IntegrationAuth.hmac:
            raise Unprocessable(f"{field}: only an HMAC integration (auth: hmac) reads it.", field=field)
    sig, stamp = data.signature_header, data.timestamp_header
    if sig and stamp and sig.lower() == stamp.lower():
        raise Unprocessable("timestamp_header: must differ from signature_header.", field="timestamp_header")
    secret = data.secret or secrets.token_urlsafe(32)
    row = Integration(
        name=data.name,
        kind=data.kind.value,
        auth=data.auth.value,
        hmac_header=sig or None,
        hmac_timestamp_header=stamp or None,
    )
    if data.auth is IntegrationAuth.token:
        row.token_hash = _hash(secret)
    else:
        row.hmac_secret = secret
    session.add(row)
    session.flush()
    return row, secret


def list_integrations(session: Session) -> list[Integration]:
    return list(session.scalars(select(Integration).order_by(Integration.name)))


def get_integration(session: Session, name: str) -> Integration:
    row = session.scalar(select(Integration).where(Integration.name == name))
    if row is None:
        raise NotFound(f"Integration {name!r} does not exist.", field="name")
    return row


def delete_integration(session: Session, name: str) -> None:
    session.delete(get_integration(session, name))
    session.flush()


# --- authentication ----------------------------------------------------------------------------------------


def _denied() -> Unauthorized:
    # one answer for an unknown integration, a wrong kind and a wrong secret: nothing to probe
    return Unauthorized(
        "Missing or invalid integration credentials (Authorization: Bearer <token>, or the HMAC signature header).",
        field="Authorization",
    )


def _presented_token(headers: Any) -> str | None:
    raw = headers.get("authorization") or ""
    scheme, _, value = raw.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if scheme.lower() == "basic" and value.strip():  # Grafana's basic auth option: the password is the token
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


def _signature_ok(
    secret: str, headers: Any, body: bytes, header: str | None = None, timestamp_header: str | None = None
) -> bool:
    """Whether a signature header holds hex HMAC-SHA256(secret, [timestamp ":"] body), as Grafana signs.

    `header`/`timestamp_header`: the names configured on the integration. Every signature header present is tried
    (a proxy may add its own). With `timestamp_header` configured the timestamp is required; without, the first of
    TIMESTAMP_HEADERS present is used. A timestamp (Unix seconds, or milliseconds) must be within
    TIMESTAMP_TOLERANCE_SECONDS of now."""
    names = dict.fromkeys(n.lower() for n in (header, *SIGNATURE_HEADERS) if n)
    presented = [v.strip().removeprefix("sha256=").lower() for v in (headers.get(n) for n in names) if v]
    if not presented:
        return False
    if timestamp_header:
        stamp = headers.get(timestamp_header)
        if not stamp:
            return False
    else:
        stamp = next((headers.get(h) for h in TIMESTAMP_HEADERS if headers.get(h)), None)
    message = body
    if stamp is not None:
        stamp = stamp.strip()
        try:
            at = float(stamp)
        except ValueError:
            return False
        if not abs(time.time() - (at / 1000 if at > 1e11 else at)) <= TIMESTAMP_TOLERANCE_SECONDS:
            return False
        message = stamp.encode() + b":" + body
    expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest().encode()
    # bytes (a non-ASCII header is a mismatch, not an error); every candidate is compared, no early exit
    return sum(hmac.compare_digest(expected, p.encode()) for p in presented) > 0


@dataclass(frozen=True)
class Sender:
    """The authenticated integration (a plain row read: this runs for every notification)."""

    id: int
    name: str
    kind: str
    last_used_at: datetime | None


_SENDER = text(
    "SELECT id, name, kind, auth, token_hash, hmac_secret, hmac_header, hmac_timestamp_header, disabled, "
    "last_used_at FROM integrations WHERE name = :name"
).columns(last_used_at=UTCDateTime())


def authenticate(session: Session, name: str, kind: IntegrationKind, headers: Any, body: bytes) -> Sender:
    """The enabled integration `name` of `kind` whose secret the request proves; 401 otherwise (nothing written)."""
    row = session.execute(_SENDER, {"name": name}).first()
    if row is None or row.disabled or row.kind != kind.value:
        raise _denied()
    if row.auth == IntegrationAuth.token.value:
        token = _presented_token(headers)
        if token is None or row.token_hash is None or not hmac.compare_digest(_hash(token), row.token_hash):
            raise _denied()
    elif row.hmac_secret is None or not _signature_ok(
        row.hmac_secret, headers, body, row.hmac_header, row.hmac_timestamp_header
    ):
        raise _denied()
    return Sender(int(row.id), row.name, row.kind, row.last_used_at)


# --- parsing: notification -> signals --------------------------------------------------------------------------


def _validation_error(exc: ValidationError) -> Unprocessable:
    err = exc.errors()[0]
    loc = field_name(err["loc"], whole="body")
    return Unprocessable(f"{loc}: {err['msg']}", field=loc)


def parse_alertmanager(body: bytes, kind: IntegrationKind) -> AlertmanagerPayload | GrafanaPayload:
    """The notification, parsed and validated in one pass by pydantic-core; 422 naming the field."""
    model = AlertmanagerPayload if kind is IntegrationKind.alertmanager else GrafanaPayload
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        if err["type"] == "json_invalid":
            raise Unprocessable(
                f"The body is not valid JSON: {err['msg']}", field="body", code="malformed_json"
            ) from exc
        if err["type"] == "model_type" and not err["loc"]:
            raise Unprocessable("The body must be a JSON object (the sender's notification).", field="body") from exc
        raise _validation_error(exc) from exc


# --- groups ------------------------------------------------------------------------------------------------------


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


_FIND = text(
    "SELECT id, incident_id, content_hash FROM alert_groups "
    "WHERE integration_id = :integration_id AND key_hash = :key_hash"
)


def find_group(session: Session, integration_id: int, key: str) -> tuple[int, int | None, str] | None:
    """The hot path of repeats: (id, incident id, content hash) of the group, read without a lock or a write (a
    repeat changes nothing, so it never waits for SQLite's write lock); None when the group is new."""
    row = session.execute(_FIND, {"integration_id": integration_id, "key_hash": _key_hash(key)}).first()
    return None if row is None else (int(row[0]), row[1], str(row[2]))


def lock_group(session: Session, integration_id: int, key: str, *, exists: bool = False) -> AlertGroup:
    """Insert-or-get the group row, then hold it until commit (concurrent deliveries of one group serialise here).

    `INSERT ... ON CONFLICT DO NOTHING` on the unique (integration, key hash): a second transaction inserting the
    same new group waits for the first to commit, then finds its row. The no-op UPDATE takes the row lock on
    PostgreSQL and the write lock on SQLite before anything is read."""
    now = utcnow()
    dialect = session.get_bind().dialect.name
    insert: Any = pg_insert if dialect == "postgresql" else sqlite_insert
    key_hash = _key_hash(key)
    if not exists:
        session.execute(
            insert(AlertGroup)
            .values(
                integration_id=integration_id,
                key_hash=key_hash,
                group_key=key,
                created_at=now,
                updated_at=now,
                status="firing",
                content_hash="",
                published_hash="",
                last_payload={},
                pending=False,
                changes=0,
                rule="",
            )
            .on_conflict_do_nothing(index_elements=[AlertGroup.integration_id, AlertGroup.key_hash])
        )
    where = (AlertGroup.integration_id == integration_id, AlertGroup.key_hash == key_hash)
    session.execute(
        update(AlertGroup)
        .where(*where)
        .values(changes=AlertGroup.changes + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    group = session.scalars(select(AlertGroup).where(*where).execution_options(populate_existing=True)).one()
    return group


# --- rendering and publishing --------------------------------------------------------------------------------


def _actor(integration: str) -> str:
    return f"integration:{integration}"


def _min_update(rule: AlertRule) -> timedelta:
    minutes = rule.min_update_minutes
    if minutes is None:
        minutes = get_settings().alert_min_update_minutes
    return timedelta(minutes=minutes)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


@dataclass
class RuleTexts:
    """A rule's templates rendered for one signal (a field over budget holds its fallback text)."""

    texts: dict[str, str]
    services: list[str]
    #: (field, reason) of each template over its budget
    over_budget: list[tuple[str, str]]

    def detail(self) -> str:
        if not self.over_budget:
            return ""
        failed = "; ".join(f"{name}: {reason}" for name, reason in self.over_budget)
        return f"template over budget ({failed}); the fallback text was used"


def _rule_texts(
    session: Session, actor: str, rule: AlertRule, signal: Signal, names: Sequence[str], deadline: Deadline
) -> RuleTexts:
    """Render the rule's templates `names` (affected_services: each of them) in one round trip to the rendering
    process. A template over its budget gets the fallback text and an audit entry (`alert.template_over_budget`);
    any other render error (e.g. a sandbox refusal) is a 422 naming the rule, as the template compiled when the
    map was saved."""
    ctx = signal.context()
    fields: list[tuple[str, str]] = []
    for name in names:
        if name == "affected_services":
            fields += [(name, source) for source in rule.affected_services]
        elif name != "summary" or rule.summary:
            fields.append((name, getattr(rule, name)))
    results = render_many([source for _, source in fields], ctx, deadline=deadline)
    out = RuleTexts({name: "" for name in names}, [], [])
    for (name, _), result in zip(fields, results, strict=True):
        if isinstance(result, OverBudget):
            out.over_budget.append((name, result.reason))
            text = rulebook.fallback_text(name, ctx)
        elif isinstance(result, TemplateProblem):
            raise Unprocessable(
                f"alert_rules[{rule.name}].{name}: {result}", field=f"alert_rules.{rule.name}.{name}"
            ) from result
        else:
            text = result
        if name == "affected_services":
            text = _cut(text, SERVICE_LIMIT)
            if text and text not in out.services:
                out.services.append(text)
        else:
            out.texts[name] = _cut(text, FIELD_LIMITS[name])
    out.services = out.services[:100]
    for name, reason in out.over_budget:
        log.warning(
            "alerts: rule %s: %s is over its template budget (%s); used the fallback text", rule.name, name, reason
        )
        audit.record(
            session,
            actor,
            "alert.template_over_budget",
            "alert_rule",
            rule.name,
            field=name,
            reason=reason,
            group_key=signal.key[:200],
            fallback=out.texts.get(name, "")[:200],
        )
    return out


def automation_allowance(session: Session, rule: AlertRule) -> str | None:
    """The approved routing-map version whose `two_person_rule: automation_allowed` lets `rule` publish a
    high-impact alert alone (e.g. "alert_rules[disk-full] of routing-map version 7, approved by user:3"), or
    None: the rule does not allow automation, or no second person approved it as it is now (the baseline
    version of an upgraded install counts as approved by nobody)."""
    if rule.two_person_rule is not TwoPersonRule.automation_allowed:
        return None
    return routing_versions.allowance(session, rule.name, rule.model_dump(mode="json"))


def _publish(session: Session, update_row: Update, rule: AlertRule, actor: str) -> str:
    """Publish (auto) or leave as a draft; the two-person-rule decision is audited. The update's state."""
    if rule.publish is PublishMode.draft:
        audit.record(session, actor, "alert.draft", "update", update_row.id, rule=rule.name)
        return update_row.state
    # `automation_allowed` lets a high-impact alert out alone only from a routing-map version a second person
    # approved (publishing/gate.py); the gate decides, and audits the decision
    who = gate.Authority(actor, automation=automation_allowance(session, rule))
    result = publishing.publish(session, update_row.id, who, door="alerts.rule")
    if result.approval_required:
        decision = "applied: waiting for a person's approval"
    elif who.automation and gate.high_impact(session, update_row.incident, update_row):
        decision = "bypassed: the rule allows automation"
    else:
        decision = "not needed"
    audit.record(
        session,
        actor,
        "alert.auto_publish",
        "update",
        update_row.id,
        rule=rule.name,
        category=update_row.incident.category.slug,
        severity=update_row.incident.severity,
        two_person_rule=decision,
        allowed_by=who.automation if decision.startswith("bypassed") else None,
        state=result.update.state,
    )
    return result.update.state


def _add_update(
    session: Session,
    incident: Incident,
    rule: AlertRule,
    actor: str,
    body: str,
    summary: str,
    status: IncidentStatus | None,
) -> Update:
    data = UpdateIn(body=body or "(no text)", summary=summary, status=status, channels=rule.channels)
    return incidents.add_update(session, incident, data, actor)


def _create(
    session: Session, integration: Sender, rule: AlertRule, signal: Signal, group: AlertGroup, deadline: Deadline
) -> GroupResult:
    actor = _actor(integration.name)
    severity = rulebook.severity_of(rule, signal.labels)
    rendered = _rule_texts(
        session, actor, rule, signal, ("title", "affected_services", "template", "summary"), deadline
    )
    title = rendered.texts["title"] or "Alert"
    incident = incidents.create_incident(
        session,
        IncidentIn(title=title, category=rule.category, severity=severity, affected_services=rendered.services),
        actor,
    )
    body, summary = rendered.texts["template"], rendered.texts["summary"]
    upd = _add_update(session, incident, rule, actor, body, summary, None)
    state = _publish(session, upd, rule, actor)
    audit.record(
        session, actor, "alert.incident_created", "incident", incident.id, rule=rule.name, group_key=signal.key[:200]
    )
    group.incident_id = incident.id
    return GroupResult(
        group_key=signal.key,
        action="created",
        incident_id=incident.id,
        update_id=upd.id,
        update_state=state,
        detail=rendered.detail(),
    )


def _change(
    session: Session, integration: Sender, rule: AlertRule, signal: Signal, incident: Incident, deadline: Deadline
) -> GroupResult:
    """Apply the signal to its existing incident now (the flapping window has passed)."""
    actor = _actor(integration.name)
    if signal.status == "resolved":
        if incident.status == IncidentStatus.resolved.value:
            return GroupResult(
                group_key=signal.key, action="repeat", incident_id=incident.id, detail="already resolved"
            )
        if rule.on_resolve == "silent":
            # the gate decides (door incident.edit): a live incident at APPROVAL_SEVERITY waits for a second person
            who = gate.Authority(actor, automation=automation_allowance(session, rule))
            edit = incidents.update_incident(session, incident.id, IncidentPatch(status=IncidentStatus.resolved), who)
            waiting: dict[str, Any] = {"change_request": edit.change_request.id} if edit.change_request else {}
            audit.record(
                session, actor, "alert.resolved", "incident", incident.id, rule=rule.name, update=False, **waiting
            )
            detail = f"waiting for approval: change request {waiting['change_request']}" if waiting else ""
            return GroupResult(group_key=signal.key, action="resolved", incident_id=incident.id, detail=detail)
        rendered = _rule_texts(session, actor, rule, signal, ("resolved_template",), deadline)
        upd = _add_update(
            session, incident, rule, actor, rendered.texts["resolved_template"], "", IncidentStatus.resolved
        )
        state = _publish(session, upd, rule, actor)
        audit.record(session, actor, "alert.resolved", "incident", incident.id, rule=rule.name, update_id=upd.id)
        return GroupResult(
            group_key=signal.key,
            action="resolved",
            incident_id=incident.id,
            update_id=upd.id,
            update_state=state,
            detail=rendered.detail(),
        )
    reopened = incident.status == IncidentStatus.resolved.value
    rendered = _rule_texts(session, actor, rule, signal, ("affected_services", "template", "summary"), deadline)
    services = rendered.services
    if services and set(services) - set(incident.affected_services or []):
        merged = list(dict.fromkeys([*(incident.affected_services or []), *services]))[:100]
        who = gate.Authority(actor, automation=automation_allowance(session, rule))
        incidents.update_incident(session, incident.id, IncidentPatch(affected_services=merged), who)
    body, summary = rendered.texts["template"], rendered.texts["summary"]
    upd = _add_update(session, incident, rule, actor, body, summary, IncidentStatus.investigating if reopened else None)
    state = _publish(session, upd, rule, actor)
    return GroupResult(
        group_key=signal.key,
        action="reopened" if reopened else "updated",
        incident_id=incident.id,
        update_id=upd.id,
        update_state=state,
        detail=rendered.detail(),
    )


def handle_signal(
    session: Session,
    integration: Sender,
    rules: list[AlertRule],
    signal: Signal,
    now: datetime | None = None,
    deadline: Deadline | None = None,
) -> GroupResult:
    """Apply one signal; its templates render within `deadline` (shared by the notification's signals)."""
    rule = rulebook.first_match(rules, integration.name, *signal.match_sets)
    if rule is None:
        return GroupResult(group_key=signal.key, action="ignored", detail="no alert rule matches these labels")
    now = now or utcnow()
    deadline = deadline or Deadline(RENDER_SECONDS, "this notification's templates")
    content = signal.content_hash()
    existing = find_group(session, integration.id, signal.key)
    if existing is not None and existing[1] is not None and existing[2] == content:
        # a repeat: nothing is sent again, nothing is written
        return GroupResult(group_key=signal.key, action="repeat", incident_id=existing[1], rule=rule.name)
    group = lock_group(session, integration.id, signal.key, exists=existing is not None)
    group.rule = rule.name
    incident = session.get(Incident, group.incident_id) if group.incident_id is not None else None
    result = GroupResult(group_key=signal.key, action="repeat", incident_id=group.incident_id, rule=rule.name)
    if incident is not None and content == group.content_hash:
        return result  # a repeat (its group was created by a concurrent delivery a moment ago)
    group.content_hash, group.status, group.last_payload = content, signal.status, asdict(signal)
    window = _min_update(rule)
    recently_resolved = (
        incident is not None
        and incident.status == IncidentStatus.resolved.value
        and incident.resolved_at is not None
        and now - incident.resolved_at < window
    )
    if signal.status == "firing" and (
        incident is None or (incident.status == IncidentStatus.resolved.value and not recently_resolved)
    ):
        result = _create(session, integration, rule, signal, group, deadline)
    elif incident is None:
        return GroupResult(
            group_key=signal.key, action="ignored", rule=rule.name, detail="resolved, but no incident for this group"
        )
    elif group.last_public_at is not None and now < group.last_public_at + window:
        group.pending, group.due_at = True, group.last_public_at + window
        return GroupResult(
            group_key=signal.key,
            action="deferred",
            incident_id=incident.id,
            rule=rule.name,
            detail=f"flapping limit: the next update may go out at {group.due_at.isoformat()}",
        )
    else:
        result = _change(session, integration, rule, signal, incident, deadline)
    result.rule = rule.name
    group.published_hash, group.last_public_at, group.pending, group.due_at = content, now, False, None
    return result


def _touch(session: Session, sender: Sender) -> None:
    """Record that the integration was used (at most once a minute: not a write per notification)."""
    now = utcnow()
    if sender.last_used_at is None or now - sender.last_used_at > timedelta(minutes=1):
        session.execute(update(Integration).where(Integration.id == sender.id).values(last_used_at=now))


def receive(session: Session, integration: Sender, body: bytes, kind: IntegrationKind) -> list[GroupResult]:
    """Process one authenticated notification (its body not yet parsed)."""
    rules = rulebook.load_rules(session)
    signals: list[Signal]
    if kind is IntegrationKind.webhook:
        mapping = rulebook.load_mapping(session, integration.name)
        if mapping is None:
            raise Unprocessable(
                f"No webhook_mappings entry for integration {integration.name!r} in the routing map.",
                field="webhook_mappings",
                code="not_configured",
            )
        signals = [webhook_signal(mapping, body)]
    else:
        payload = parse_alertmanager(body, kind)
        by_fingerprint = [
            r
            for r in rules
            if r.group_by is GroupBy.fingerprint and rulebook.matches(r, integration.name, dict(payload.commonLabels))
        ]
        signals = group_signals(payload, GroupBy.fingerprint if by_fingerprint else GroupBy.group_key)
    # lock groups in one order: two notifications touching the same groups never deadlock
    signals.sort(key=lambda s: _key_hash(s.key))
    deadline = Deadline(RENDER_SECONDS, "this notification's templates")
    results = [handle_signal(session, integration, rules, s, deadline=deadline) for s in signals]
    _touch(session, integration)  # last: its row lock (PostgreSQL) is held only until the commit that follows
    return results


# --- deferred updates (run beside the worker) -----------------------------------------------------------------


def due_groups(session: Session, now: datetime, limit: int = 100) -> list[int]:
    return list(
        session.scalars(
            select(AlertGroup.id)
            .where(AlertGroup.pending.is_(True), AlertGroup.due_at <= now)
            .order_by(AlertGroup.due_at)
            .limit(limit)
        )
    )


def flush_group(session: Session, group_id: int, now: datetime | None = None) -> GroupResult | None:
    """Send a deferred change whose flapping window has passed (the last state the sender reported)."""
    now = now or utcnow()
    session.execute(
        update(AlertGroup)
        .where(AlertGroup.id == group_id)
        .values(updated_at=now)
        .execution_options(synchronize_session=False)
    )
    group = session.get(AlertGroup, group_id, populate_existing=True)
    if group is None or not group.pending or group.due_at is None or group.due_at > now:
        return None
    group.pending, group.due_at = False, None
    row = session.get(Integration, group.integration_id)
    integration = None if row is None else Sender(row.id, row.name, row.kind, row.last_used_at)
    rule = next((r for r in rulebook.load_rules(session) if r.name == group.rule), None)
    incident = session.get(Incident, group.incident_id) if group.incident_id is not None else None
    if integration is None or rule is None or incident is None or group.published_hash == group.content_hash:
        return None
    signal = Signal(**group.last_payload)
    result = _change(session, integration, rule, signal, incident, Deadline(RENDER_SECONDS, "this update's templates"))
    group.published_hash, group.last_public_at = group.content_hash, now
    return result
