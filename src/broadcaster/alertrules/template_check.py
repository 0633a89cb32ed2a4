"""The upload check: every alert-rule and webhook-mapping template of a routing map is rendered on the sample
notifications (`samples`) under the render budget before the map is stored; the first one over budget is a
422 naming its field, and nothing is written.

Only going over the budget is refused here: other render errors may depend on the labels a real sender sends
(and are reported when a real alert comes). At run time the same budget holds again, on the real alert."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from broadcaster.alertrules import samples
from broadcaster.alertrules.schemas import AlertmanagerPayload, AlertRule, GrafanaPayload, GroupBy
from broadcaster.alertrules.signals import Signal, group_signals
from broadcaster.alertrules.templating import Deadline, OverBudget, render_many
from broadcaster.errors import Unprocessable

if TYPE_CHECKING:
    from broadcaster.routing.schemas import RoutingMap

#: the whole check of one map renders within this (a map of many slow templates is refused, not waited for)
CHECK_SECONDS = 10.0


@lru_cache(maxsize=1)
def sample_contexts() -> tuple[tuple[str, dict[str, Any]], ...]:
    """(name, what a rule's templates see) for each sample notification."""
    out: list[tuple[str, dict[str, Any]]] = []
    for name, payload in (
        ("Alertmanager (1 alert)", AlertmanagerPayload.model_validate(samples.alertmanager())),
        ("Alertmanager (3 alerts)", AlertmanagerPayload.model_validate(samples.alertmanager(3))),
        ("Alertmanager (resolved)", AlertmanagerPayload.model_validate(samples.alertmanager(status="resolved"))),
        ("Grafana", GrafanaPayload.model_validate(samples.grafana())),
    ):
        out += [(name, s.context()) for s in group_signals(payload, GroupBy.group_key)]
    webhook = samples.WEBHOOK_SIGNAL
    signal = Signal(
        key=webhook["key"],
        status=webhook["status"],
        labels=webhook["labels"],
        annotations=webhook["annotations"],
        alerts=[{**webhook, "fingerprint": webhook["key"]}],
    )
    out.append(("generic webhook", signal.context()))
    return tuple(out)


def rule_templates(rule: AlertRule) -> list[tuple[str, str]]:
    """(field, template) of each template of a rule."""
    fields = [("title", rule.title), ("template", rule.template)]
    if rule.summary:
        fields.append(("summary", rule.summary))
    fields.append(("resolved_template", rule.resolved_template))
    fields += [(f"affected_services.{i}", source) for i, source in enumerate(rule.affected_services)]
    return fields


def _refuse(field: str, whose: str, sample: str, reason: str) -> Unprocessable:
    return Unprocessable(
        f"{field}: the template of {whose} is over its budget: {reason} (rendered on the sample {sample} "
        "notification; see 'Template budget' in docs/integrations.md).",
        field=field,
        code="template_over_budget",
    )


def _check(
    prefix: str,
    whose: str,
    fields: list[tuple[str, str]],
    contexts: tuple[tuple[str, dict[str, Any]], ...],
    deadline: Deadline,
    seen: set[tuple[str, int]],
) -> None:
    for index, (sample, context) in enumerate(contexts):
        todo = [(field, source) for field, source in fields if (source, index) not in seen]
        results = render_many([source for _, source in todo], context, check=True, deadline=deadline)
        for (field, source), result in zip(todo, results, strict=False):
            if isinstance(result, OverBudget):
                raise _refuse(f"{prefix}.{field}", whose, sample, result.reason)
            seen.add((source, index))


def check_templates(routing_map: RoutingMap) -> None:
    """422 naming the first template of the map over its budget on the sample notifications."""
    deadline = Deadline(CHECK_SECONDS, "the routing map's templates")
    seen: set[tuple[str, int]] = set()
    rule_contexts = sample_contexts()
    for i, rule in enumerate(routing_map.alert_rules):
        _check(f"alert_rules.{i}", f"rule {rule.name!r}", rule_templates(rule), rule_contexts, deadline, seen)
    body_context = (("generic webhook", {"body": samples.WEBHOOK_BODY}),)
    seen = set()
    for i, mapping in enumerate(routing_map.webhook_mappings):
        fields = [("key", mapping.key), ("status", mapping.status)]
        fields += [(f"labels.{k}", v) for k, v in mapping.labels.items()]
        fields += [(f"annotations.{k}", v) for k, v in mapping.annotations.items()]
        _check(f"webhook_mappings.{i}", f"mapping {mapping.name!r}", fields, body_context, deadline, seen)
