"""The routing map's `alert_rules` and `webhook_mappings` sections: consistency checks, storage, matching."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from broadcaster.alertrules.schemas import AlertRule, WebhookMapping
from broadcaster.domain import Severity
from broadcaster.models.integrations import AlertRuleRow

if TYPE_CHECKING:
    from broadcaster.routing.schemas import RoutingMap

RULES, MAPPINGS = "alert_rules", "webhook_mappings"


def check_map_sections(routing_map: RoutingMap) -> None:
    """Rule names unique, every rule's category in the map, one mapping per integration (ValueError)."""
    slugs = {c.slug for c in routing_map.categories}
    seen: set[str] = set()
    for i, rule in enumerate(routing_map.alert_rules):
        if rule.name in seen:
            raise ValueError(f"alert_rules.{i}.name: duplicate rule name {rule.name!r}")
        seen.add(rule.name)
        if rule.category not in slugs:
            raise ValueError(f"alert_rules.{i}.category: {rule.category!r} is not a category of this map")
    names: set[str] = set()
    for i, mapping in enumerate(routing_map.webhook_mappings):
        if mapping.name in names:
            raise ValueError(f"webhook_mappings.{i}.name: duplicate mapping for integration {mapping.name!r}")
        names.add(mapping.name)


def export_sections(session: Session) -> dict[str, list[Any]]:
    rows = list(session.scalars(select(AlertRuleRow).order_by(AlertRuleRow.section, AlertRuleRow.position)))
    return {
        RULES: [AlertRule.model_validate(r.spec) for r in rows if r.section == RULES],
        MAPPINGS: [WebhookMapping.model_validate(r.spec) for r in rows if r.section == MAPPINGS],
    }


def replace_sections(session: Session, routing_map: RoutingMap) -> None:
    session.execute(delete(AlertRuleRow))
    sections: list[tuple[str, list[AlertRule] | list[WebhookMapping]]] = [
        (RULES, routing_map.alert_rules),
        (MAPPINGS, routing_map.webhook_mappings),
    ]
    for section, items in sections:
        for position, item in enumerate(items):
            spec = item.model_dump(mode="json")
            session.add(AlertRuleRow(section=section, name=spec["name"], position=position, spec=spec))
    session.flush()


#: validated rules by their stored JSON (validation compiles templates: done once per rule text and process)
_PARSED: dict[str, AlertRule] = {}


_RULE_SPECS = text("SELECT spec FROM alert_rules WHERE section = 'alert_rules' ORDER BY position")


def _parsed(raw: str | dict[str, Any]) -> AlertRule:
    key = raw if isinstance(raw, str) else json.dumps(raw, sort_keys=True)
    rule = _PARSED.get(key)
    if rule is None:
        if len(_PARSED) > 1000:
            _PARSED.clear()
        rule = _PARSED[key] = AlertRule.model_validate(json.loads(raw) if isinstance(raw, str) else raw)
    return rule


def load_rules(session: Session) -> list[AlertRule]:
    """The rules in order (read on every notification: a plain statement; each distinct rule is validated once per
    process, keyed by its stored JSON, so an edited map applies at once)."""
    return [_parsed(raw) for raw in session.execute(_RULE_SPECS).scalars()]


def load_mapping(session: Session, integration: str) -> WebhookMapping | None:
    spec = session.scalar(
        select(AlertRuleRow.spec).where(AlertRuleRow.section == MAPPINGS, AlertRuleRow.name == integration)
    )
    return None if spec is None else WebhookMapping.model_validate(spec)


def matches(rule: AlertRule, integration: str, labels: dict[str, str]) -> bool:
    if rule.integrations and integration not in rule.integrations:
        return False
    if any(labels.get(k) != v for k, v in rule.match.items()):
        return False
    return all(re.fullmatch(p, labels.get(k, "")) is not None for k, p in rule.match_re.items())


def first_match(rules: list[AlertRule], integration: str, *label_sets: dict[str, str]) -> AlertRule | None:
    """The first rule matching any of the label sets (tried in order: common labels, then each alert's)."""
    for labels in label_sets:
        for rule in rules:
            if matches(rule, integration, labels):
                return rule
    return None


def severity_of(rule: AlertRule, labels: dict[str, str]) -> Severity:
    if rule.severity_label:
        value = labels.get(rule.severity_label)
        if value is not None and value in rule.severity_map:
            return rule.severity_map[value]
    return rule.severity


def fallback_text(field: str, context: dict[str, Any]) -> str:
    """What a rule's field says when its template could not be rendered within the budget: the alert's own
    words (its summary, then its name), as the default templates would say them."""
    labels = context.get("labels") or {}
    annotations = context.get("annotations") or {}
    name = str(labels.get("alertname") or "")
    summary = str(annotations.get("summary") or "")
    if field == "title":
        return name or summary or "Alert"
    if field == "template":
        return summary or str(annotations.get("description") or "") or name or "Alert"
    if field == "summary":
        return summary or name
    if field == "resolved_template":
        return f"Resolved: {name}" if name else "Resolved"
    return ""  # an affected service: none named
