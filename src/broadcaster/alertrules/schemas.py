"""Schemas of alerts: the senders' documented payloads, the routing map's alert rules and generic webhook mappings.

Payloads follow the senders' documentation:
- Prometheus Alertmanager `webhook_config` (payload version 4):
  https://prometheus.io/docs/alerting/latest/configuration/#webhook_config
- Grafana alerting webhook contact point:
  https://grafana.com/docs/grafana/latest/alerting/configure-notifications/manage-contact-points/integrations/webhook-notifier/
Unknown extra fields are accepted (senders add fields over time); the documented ones are type-checked. Optional
objects and texts (label sets, annotations, URLs, Grafana's title/message) may be absent or `null`: read as empty.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from broadcaster.domain import Input, Severity, validate_slug

# --- the senders' payloads -----------------------------------------------------------------------------------


class AlertStatus(StrEnum):
    firing = "firing"
    resolved = "resolved"


class _Payload(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


def _null_is(empty: Callable[[], Any]) -> BeforeValidator:
    """JSON `null` reads as `empty()`: Alertmanager-compatible senders write `null` for an optional object or text
    they have nothing in (Go's nil map / pointer), where Alertmanager itself writes `{}` or `""`."""
    return BeforeValidator(lambda value: empty() if value is None else value)


#: optional label/annotation sets: absent or null = empty (the entries themselves are still text)
OptionalLabels = Annotated[dict[str, str], _null_is(dict)]
#: optional text (URLs, fingerprint, Grafana's title/message ...): absent or null = ""
OptionalText = Annotated[str, _null_is(str)]
#: optional count: absent or null = 0
OptionalCount = Annotated[int, _null_is(int), Field(ge=0)]


class AmAlert(_Payload):
    """One alert of an Alertmanager notification."""

    status: AlertStatus
    labels: dict[str, str]
    annotations: OptionalLabels = Field(default_factory=dict)
    startsAt: datetime
    endsAt: datetime | None = None
    generatorURL: OptionalText = ""
    fingerprint: OptionalText = ""


class AlertmanagerPayload(_Payload):
    """Alertmanager `webhook_config` payload, version 4."""

    version: Literal["4"]
    groupKey: str = Field(..., min_length=1, max_length=10_000)
    truncatedAlerts: OptionalCount = 0
    status: AlertStatus
    receiver: OptionalText = ""
    groupLabels: OptionalLabels = Field(default_factory=dict)
    commonLabels: OptionalLabels = Field(default_factory=dict)
    commonAnnotations: OptionalLabels = Field(default_factory=dict)
    externalURL: OptionalText = ""
    alerts: list[AmAlert] = Field(..., min_length=1, max_length=10_000)


class GrafanaAlert(AmAlert):
    """One alert of a Grafana webhook notification (Alertmanager's fields plus Grafana's own)."""

    silenceURL: OptionalText = ""
    dashboardURL: OptionalText = ""
    panelURL: OptionalText = ""
    imageURL: OptionalText = ""
    values: dict[str, Any] | None = None
    valueString: OptionalText = ""


class GrafanaPayload(_Payload):
    """Grafana alerting webhook contact point payload (version "1")."""

    receiver: OptionalText = ""
    status: AlertStatus
    orgId: int
    alerts: list[GrafanaAlert] = Field(..., min_length=1, max_length=10_000)
    groupLabels: OptionalLabels = Field(default_factory=dict)
    commonLabels: OptionalLabels = Field(default_factory=dict)
    commonAnnotations: OptionalLabels = Field(default_factory=dict)
    externalURL: OptionalText = ""
    version: str
    groupKey: str = Field(..., min_length=1, max_length=10_000)
    truncatedAlerts: OptionalCount = 0
    title: OptionalText = ""
    state: OptionalText = ""
    message: OptionalText = ""


# --- the routing map's sections ------------------------------------------------------------------------------


class PublishMode(StrEnum):
    auto = "auto"
    draft = "draft"


class TwoPersonRule(StrEnum):
    #: an auto-published update that needs approval waits for a person (the default)
    required = "required"
    #: this rule's updates publish without a second person, even when critical (audited as such)
    automation_allowed = "automation_allowed"


class GroupBy(StrEnum):
    #: one incident per notification group (Alertmanager/Grafana `groupKey`)
    group_key = "group_key"
    #: one incident per alert (its fingerprint)
    fingerprint = "fingerprint"


def _check_template(value: str) -> str:
    from broadcaster.alertrules.templating import compile_template

    compile_template(value)  # ValueError naming the problem
    return value


class AlertRule(Input):
    """How alerts matching some labels become an incident and its updates."""

    name: str = Field(..., max_length=64, description="Unique name (slug) of the rule.")
    integrations: list[str] = Field(
        default_factory=list, description="Names of the integrations this rule applies to (empty: all)."
    )
    match: dict[str, str] = Field(default_factory=dict, description="Labels that must equal these values.")
    match_re: dict[str, str] = Field(
        default_factory=dict, description="Labels that must fully match these regular expressions."
    )
    category: str = Field(..., description="Category (routing map slug) of the incident.")
    severity: Severity = Field(Severity.major, description="Severity, unless severity_label maps one.")
    severity_label: str | None = Field(None, description="Label whose value picks the severity via severity_map.")
    severity_map: dict[str, Severity] = Field(
        default_factory=dict, description="severity_label value -> severity, e.g. {warning: minor, page: critical}."
    )
    affected_services: list[str] = Field(
        default_factory=list, description="Affected services, each a template (e.g. '{{ labels.service }}')."
    )
    title: str = Field("{{ labels.alertname }}", max_length=2000, description="Incident title template.")
    template: str = Field(
        "{{ annotations.summary or annotations.description or labels.alertname }}",
        max_length=20_000,
        description="Update body template (Jinja2, sandboxed) over labels, annotations, alerts, status.",
    )
    summary: str = Field("", max_length=2000, description="Short summary template (SMS, banner); empty: none.")
    resolved_template: str = Field(
        "Resolved: {{ labels.alertname }}", max_length=20_000, description="Body template of the resolution update."
    )
    publish: PublishMode = Field(PublishMode.draft, description="auto: publish; draft: a person publishes.")
    two_person_rule: TwoPersonRule = Field(
        TwoPersonRule.required,
        description="automation_allowed: auto-published updates of this rule skip the two-person rule.",
    )
    on_resolve: Literal["update", "silent"] = Field(
        "update", description="update: publish a resolution update; silent: only mark the incident resolved."
    )
    group_by: GroupBy = GroupBy.group_key
    min_update_minutes: float | None = Field(
        None, ge=0, le=10_080, description="At most one public update per incident this often (default setting)."
    )
    channels: list[str] | None = Field(None, description="Channel override (default: the category's channels).")

    _slug = field_validator("name")(validate_slug)

    @field_validator("match_re")
    @classmethod
    def _regexes(cls, value: dict[str, str]) -> dict[str, str]:
        for label, pattern in value.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{label}: invalid regular expression ({exc})") from exc
        return value

    @field_validator("title", "template", "summary", "resolved_template")
    @classmethod
    def _template(cls, value: str) -> str:
        return _check_template(value)

    @field_validator("affected_services")
    @classmethod
    def _templates(cls, value: list[str]) -> list[str]:
        for item in value:
            _check_template(item)
        return value

    @model_validator(mode="after")
    def _severity_source(self) -> AlertRule:
        if self.severity_map and not self.severity_label:
            raise ValueError("severity_map needs severity_label (the label whose value it maps)")
        return self


class WebhookMapping(Input):
    """How a generic JSON webhook's body becomes an alert (labels, annotations, status, key): templates over `body`."""

    name: str = Field(..., max_length=64, description="The integration (of kind webhook) this mapping reads.")
    required: list[str] = Field(
        default_factory=list, description="Dotted paths that must be in the body (422 naming the first missing)."
    )
    key: str = Field(..., max_length=2000, description="Template of the dedup key (one incident per key).")
    status: str = Field(
        "firing", max_length=2000, description="Template that renders 'firing' or 'resolved' (e.g. from body.state)."
    )
    labels: dict[str, str] = Field(..., description="Label name -> template; matched by the alert rules.")
    annotations: dict[str, str] = Field(default_factory=dict, description="Annotation name -> template.")

    _slug = field_validator("name")(validate_slug)

    @field_validator("key", "status")
    @classmethod
    def _template(cls, value: str) -> str:
        return _check_template(value)

    @field_validator("labels", "annotations")
    @classmethod
    def _templates(cls, value: dict[str, str]) -> dict[str, str]:
        for item in value.values():
            _check_template(item)
        return value


# --- the integration API -------------------------------------------------------------------------------------
