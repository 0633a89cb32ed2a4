"""Notification bodies exactly as the senders document them.

- Alertmanager: the `webhook_config` payload format (version 4) from
  https://prometheus.io/docs/alerting/latest/configuration/#webhook_config, every documented field present.
- Grafana: the example body of the webhook contact point documentation, verbatim
  (https://grafana.com/docs/grafana/latest/alerting/configure-notifications/manage-contact-points/integrations/webhook-notifier/).
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any


def alertmanager(
    group: str = "DatabaseDown",
    *,
    status: str = "firing",
    instances: tuple[str, ...] = ("db-1:9100",),
    severity: str = "page",
    service: str = "billing-db",
) -> dict[str, Any]:
    """An Alertmanager v4 notification for group alertname=<group> (one alert per instance)."""
    alerts = [
        {
            "status": status,
            "labels": {
                "alertname": group,
                "instance": inst,
                "job": "node",
                "severity": severity,
                "service": service,
            },
            "annotations": {
                "summary": f"{group}: {service} is unreachable",
                "description": f"{inst} has not answered for 5 minutes.",
            },
            "startsAt": "2026-11-30T09:52:26.739266876+02:00",
            "endsAt": "2026-11-30T10:02:26.739266876+02:00" if status == "resolved" else "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example.org:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1",
            "fingerprint": hashlib.sha256(f"{group}/{inst}".encode()).hexdigest()[:16],
        }
        for inst in instances
    ]
    common = {"alertname": group, "job": "node", "severity": severity, "service": service}
    if len(instances) == 1:
        common["instance"] = instances[0]
    return {
        "version": "4",
        "groupKey": f'{{}}/{{severity="{severity}"}}:{{alertname="{group}"}}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "broadcaster",
        "groupLabels": {"alertname": group},
        "commonLabels": common,
        "commonAnnotations": {"summary": f"{group}: {service} is unreachable"},
        "externalURL": "http://alertmanager.example.org:9093",
        "alerts": alerts,
    }


GRAFANA_DOC = json.loads(
    r"""
{
  "receiver": "My Super Webhook",
  "status": "firing",
  "orgId": 1,
  "alerts": [
    {
      "status": "firing",
      "labels": {
        "alertname": "High memory usage",
        "team": "blue",
        "zone": "us-1"
      },
      "annotations": {
        "description": "The system has high memory usage",
        "runbook_url": "https://myrunbook.com/runbook/1234",
        "summary": "This alert was triggered for zone us-1"
      },
      "startsAt": "2021-10-12T09:51:03.157076+02:00",
      "endsAt": "0001-01-01T00:00:00Z",
      "generatorURL": "https://play.grafana.org/alerting/1afz29v7z/edit",
      "fingerprint": "c6eadffa33fcdf37",
      "silenceURL": "https://play.grafana.org/alerting/silence/new?alertmanager=grafana&matchers=alertname%3DT2%2Cteam%3Dblue%2Czone%3Dus-1",
      "dashboardURL": "",
      "panelURL": "",
      "values": {
        "B": 44.23943737541908,
        "C": 1
      }
    },
    {
      "status": "firing",
      "labels": {
        "alertname": "High CPU usage",
        "team": "blue",
        "zone": "eu-1"
      },
      "annotations": {
        "description": "The system has high CPU usage",
        "runbook_url": "https://myrunbook.com/runbook/1234",
        "summary": "This alert was triggered for zone eu-1"
      },
      "startsAt": "2021-10-12T09:56:03.157076+02:00",
      "endsAt": "0001-01-01T00:00:00Z",
      "generatorURL": "https://play.grafana.org/alerting/d1rdpdv7k/edit",
      "fingerprint": "bc97ff14869b13e3",
      "silenceURL": "https://play.grafana.org/alerting/silence/new?alertmanager=grafana&matchers=alertname%3DT1%2Cteam%3Dblue%2Czone%3Deu-1",
      "dashboardURL": "",
      "panelURL": "",
      "values": {
        "B": 44.23943737541908,
        "C": 1
      }
    }
  ],
  "groupLabels": {},
  "commonLabels": {
    "team": "blue"
  },
  "commonAnnotations": {},
  "externalURL": "https://play.grafana.org/",
  "version": "1",
  "groupKey": "{}:{}",
  "truncatedAlerts": 0,
  "title": "[FIRING:2]  (blue)",
  "state": "alerting",
  "message": "**Firing**\n\nLabels:\n - alertname = T2\n - team = blue\n - zone = us-1\nAnnotations:\n - description = This is the alert rule checking the second system\n - runbook_url = https://myrunbook.com\n - summary = This is my summary\nSource: https://play.grafana.org/alerting/1afz29v7z/edit\nSilence: https://play.grafana.org/alerting/silence/new?alertmanager=grafana&matchers=alertname%3DT2%2Cteam%3Dblue%2Czone%3Dus-1\n\nLabels:\n - alertname = T1\n - team = blue\n - zone = eu-1\nAnnotations:\nSource: https://play.grafana.org/alerting/d1rdpdv7k/edit\nSilence: https://play.grafana.org/alerting/silence/new?alertmanager=grafana&matchers=alertname%3DT1%2Cteam%3Dblue%2Czone%3Deu-1\n"
}
"""  # noqa: E501 (the documented body, verbatim)
)


def grafana(status: str = "firing") -> dict[str, Any]:
    body = copy.deepcopy(GRAFANA_DOC)
    if status == "resolved":
        body["status"] = "resolved"
        for alert in body["alerts"]:
            alert["status"] = "resolved"
            alert["endsAt"] = "2021-10-12T10:20:03.157076+02:00"
    return body
