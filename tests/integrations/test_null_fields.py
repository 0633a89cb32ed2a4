"""Alertmanager-compatible senders write `null` for an optional object or text they have nothing in: it reads as
empty (not a 422). Required fields and the entries of a label set still refuse `null`."""

from __future__ import annotations

import pytest
from tests.core.helpers import assert_error, row_counts

from . import payloads
from .conftest import bearer

AM = "/v1/inbound/alertmanager/prometheus"
GRAFANA = "/v1/inbound/grafana/grafana"


@pytest.fixture
def tokens(set_map, integration) -> dict[str, str]:
    set_map()
    return {
        "am": integration("prometheus", "alertmanager")["secret"],
        "grafana": integration("grafana", "grafana")["secret"],
    }


def test_alertmanager_nulls_read_as_empty(client, tokens, admin):
    body = payloads.alertmanager()
    for name in ("commonAnnotations", "commonLabels", "groupLabels", "externalURL", "receiver", "truncatedAlerts"):
        body[name] = None
    body["alerts"][0].update(generatorURL=None, fingerprint=None)
    resp = client.post(AM, json=body, headers=bearer(tokens["am"]))
    assert resp.status_code == 200, resp.text
    result = resp.json()["results"][0]
    # the rule still matched on the alert's own labels, and its template read the alert's annotations
    assert (result["action"], result["rule"]) == ("created", "database-down"), result
    incident = client.get(f"/v1/incidents/{result['incident_id']}", headers=admin).json()
    assert incident["title"] == "billing-db is down"
    assert "DatabaseDown: billing-db is unreachable (1 instance)" in repr(incident)


def test_alert_annotations_null_and_fields_absent(client, tokens):
    body = payloads.alertmanager("Other")
    for name in ("commonAnnotations", "groupLabels", "externalURL", "truncatedAlerts", "receiver"):
        body.pop(name)
    body["alerts"][0]["annotations"] = None
    resp = client.post(AM, json=body, headers=bearer(tokens["am"]))
    assert resp.status_code == 200, resp.text
    assert resp.json()["results"][0]["action"] == "ignored"  # no rule for alertname=Other: parsed, not refused


def test_grafana_nulls_read_as_empty(client, tokens):
    body = payloads.grafana()
    body.update(commonAnnotations=None, groupLabels=None, externalURL=None, title=None, message=None, state=None)
    for name in ("silenceURL", "dashboardURL", "panelURL", "imageURL", "valueString", "generatorURL", "fingerprint"):
        body["alerts"][0][name] = None
    body["alerts"][0]["annotations"] = None
    body["alerts"][0]["values"] = None
    resp = client.post(GRAFANA, json=body, headers=bearer(tokens["grafana"]))
    assert resp.status_code == 200, resp.text
    assert resp.json()["results"][0]["action"] == "created"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.update(groupKey=None), "groupKey"),
        (lambda b: b.update(status=None), "status"),
        (lambda b: b.update(alerts=None), "alerts"),
        (lambda b: b["alerts"][0].update(labels=None), "alerts.0.labels"),
        (lambda b: b["alerts"][0].update(startsAt=None), "alerts.0.startsAt"),
        (lambda b: b["commonLabels"].update(severity=None), "commonLabels.severity"),
        (lambda b: b["alerts"][0]["annotations"].update(summary=None), "alerts.0.annotations.summary"),
        (lambda b: b.update(commonAnnotations=[]), "commonAnnotations"),
        (lambda b: b.update(truncatedAlerts=-1), "truncatedAlerts"),
    ],
)
def test_required_fields_still_refuse_null(client, tokens, mutate, field):
    body = payloads.alertmanager()
    mutate(body)
    before = row_counts()
    assert_error(client.post(AM, json=body, headers=bearer(tokens["am"])), 422, field=field)
    assert row_counts() == before
