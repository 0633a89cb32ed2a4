"""Signals: what one alert group (or one generic webhook call) reports, from the senders' payloads, and what the
rule templates see of it."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from broadcaster.alertrules.schemas import AlertmanagerPayload, GrafanaPayload, GroupBy, WebhookMapping
from broadcaster.alertrules.templating import Deadline, OverBudget, TemplateProblem, render_many
from broadcaster.errors import Unprocessable

log = logging.getLogger(__name__)

#: one notification's templates render within this, all together (a slow template cannot hold a request)
RENDER_SECONDS = 10.0


@dataclass
class Signal:
    """One group's state as the sender reports it."""

    key: str
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    alerts: list[dict[str, Any]] = field(default_factory=list)
    group_labels: dict[str, str] = field(default_factory=dict)
    external_url: str = ""
    #: label sets tried against the rules, in order
    match_sets: list[dict[str, str]] = field(default_factory=list)

    def content_hash(self) -> str:
        alerts = sorted(
            json.dumps([a.get("fingerprint") or a["labels"], a["status"], a.get("annotations", {})], sort_keys=True)
            for a in self.alerts
        )
        doc = [self.status, self.labels, self.annotations, alerts]
        return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()

    def context(self) -> dict[str, Any]:
        """What templates see."""
        return {
            "status": self.status,
            "labels": self.labels,
            "annotations": self.annotations,
            "alerts": self.alerts,
            "group_labels": self.group_labels,
            "external_url": self.external_url,
            "firing": [a for a in self.alerts if a["status"] == "firing"],
            "resolved": [a for a in self.alerts if a["status"] == "resolved"],
        }


def json_body(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise Unprocessable(f"The body is not valid JSON: {exc}", field="body", code="malformed_json") from exc


def _alert_dict(alert: Any) -> dict[str, Any]:
    return {
        "status": alert.status.value,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": alert.startsAt.isoformat(),
        "fingerprint": alert.fingerprint,
        "generatorURL": alert.generatorURL,
    }


def group_signals(payload: AlertmanagerPayload | GrafanaPayload, group_by: GroupBy) -> list[Signal]:
    """One signal per group (groupKey), or per alert (fingerprint)."""
    alerts = [_alert_dict(a) for a in payload.alerts]
    if group_by is GroupBy.fingerprint:
        out = []
        for a in alerts:
            key = a["fingerprint"] or hashlib.sha256(json.dumps(a["labels"], sort_keys=True).encode()).hexdigest()
            out.append(
                Signal(
                    key=f"fingerprint:{key}",
                    status=a["status"],
                    labels=a["labels"],
                    annotations=a["annotations"],
                    alerts=[a],
                    group_labels=dict(payload.groupLabels),
                    external_url=payload.externalURL,
                    match_sets=[a["labels"]],
                )
            )
        return out
    first = alerts[0]
    labels = first["labels"] | dict(payload.commonLabels)
    return [
        Signal(
            key=payload.groupKey,
            status=payload.status.value,
            labels=labels,
            annotations=first["annotations"] | dict(payload.commonAnnotations),
            alerts=alerts,
            group_labels=dict(payload.groupLabels),
            external_url=payload.externalURL,
            match_sets=[dict(payload.commonLabels), *(a["labels"] for a in alerts)],
        )
    ]


def _path_present(body: Any, path: str) -> bool:
    node = body
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def webhook_signal(mapping: WebhookMapping, body: bytes) -> Signal:
    """The generic webhook's body through its mapping (templates over `body`); 422 naming what is missing."""
    raw = json_body(body)
    if not isinstance(raw, dict):
        raise Unprocessable("The body must be a JSON object.", field="body")
    for path in mapping.required:
        if not _path_present(raw, path):
            raise Unprocessable(f"{path}: field required (by this integration's mapping)", field=path)
    fields = [("key", mapping.key), ("status", mapping.status)]
    fields += [(f"labels.{k}", v) for k, v in mapping.labels.items()]
    fields += [(f"annotations.{k}", v) for k, v in mapping.annotations.items()]
    deadline = Deadline(RENDER_SECONDS, "this notification's templates")
    results = render_many([source for _, source in fields], {"body": raw}, strict=True, deadline=deadline)
    rendered = {name: result for (name, _), result in zip(fields, results, strict=True)}

    def one(name: str) -> str:
        result = rendered[name]
        if isinstance(result, OverBudget):
            log.warning("alerts: mapping %s: %s is over its template budget (%s)", mapping.name, name, result.reason)
            raise Unprocessable(f"{name}: the mapping's template is over its budget ({result.reason})", field=name)
        if isinstance(result, TemplateProblem):
            raise Unprocessable(f"{name}: the mapping could not read the body ({result})", field=name)
        return result

    key = one("key")
    if not key:
        raise Unprocessable("key: the mapping rendered an empty key", field="key")
    status = one("status").lower()
    if status not in ("firing", "resolved"):
        raise Unprocessable(f"status: the mapping rendered {status!r}; expected firing or resolved", field="status")
    labels = {k: one(f"labels.{k}") for k in mapping.labels}
    annotations = {k: one(f"annotations.{k}") for k in mapping.annotations}
    alert = {"status": status, "labels": labels, "annotations": annotations, "fingerprint": key}
    return Signal(key=key, status=status, labels=labels, annotations=annotations, alerts=[alert], match_sets=[labels])
