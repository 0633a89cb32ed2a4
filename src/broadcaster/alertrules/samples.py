"""Sample notifications, as the senders document them: every alert-rule template is rendered on these when the
routing map is uploaded (`template_check`), so a template over its budget is refused before any alert comes.

- Alertmanager: the `webhook_config` payload (version 4),
  https://prometheus.io/docs/alerting/latest/configuration/#webhook_config (one alert; three alerts; resolved).
- Grafana: the example body of the webhook contact point documentation,
  https://grafana.com/docs/grafana/latest/alerting/configure-notifications/manage-contact-points/integrations/webhook-notifier/
- A generic JSON webhook (an uptime monitor's), for the `webhook_mappings` templates, and the labels such a
  mapping makes, for the rules.
"""

from __future__ import annotations

from typing import Any


def _am_alert(instance: str, status: str, fingerprint: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {
            "alertname": "DatabaseDown",
            "instance": instance,
            "job": "node",
            "severity": "page",
            "service": "billing-db",
        },
        "annotations": {
            "summary": "DatabaseDown: billing-db is unreachable",
            "description": f"{instance} has not answered for 5 minutes.",
        },
        "startsAt": "2026-11-30T09:52:26.739266876+02:00",
        "endsAt": "2026-11-30T10:02:26.739266876+02:00" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example.org:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1",
        "fingerprint": fingerprint,
    }


def alertmanager(instances: int = 1, status: str = "firing") -> dict[str, Any]:
    """An Alertmanager v4 notification of group alertname=DatabaseDown with `instances` alerts."""
    alerts = [_am_alert(f"db-{i + 1}:9100", status, f"5b3a4f1e9c2d{i:04x}") for i in range(instances)]
    common = {"alertname": "DatabaseDown", "job": "node", "severity": "page", "service": "billing-db"}
    if instances == 1:
        common["instance"] = "db-1:9100"
    return {
        "version": "4",
        "groupKey": '{}/{severity="page"}:{alertname="DatabaseDown"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "broadcaster",
        "groupLabels": {"alertname": "DatabaseDown"},
        "commonLabels": common,
        "commonAnnotations": {"summary": "DatabaseDown: billing-db is unreachable"},
        "externalURL": "http://alertmanager.example.org:9093",
        "alerts": alerts,
    }


def _grafana_alert(name: str, zone: str, fingerprint: str, rule: str) -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": {"alertname": name, "team": "blue", "zone": zone},
        "annotations": {
            "description": f"The system has {name.lower()}",
            "runbook_url": "https://myrunbook.com/runbook/1234",
            "summary": f"This alert was triggered for zone {zone}",
        },
        "startsAt": "2021-10-12T09:51:03.157076+02:00",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": f"https://play.grafana.org/alerting/{rule}/edit",
        "fingerprint": fingerprint,
        "silenceURL": "https://play.grafana.org/alerting/silence/new?alertmanager=grafana&matchers=team%3Dblue",
        "dashboardURL": "",
        "panelURL": "",
        "values": {"B": 44.23943737541908, "C": 1},
    }


def grafana() -> dict[str, Any]:
    """Grafana's documented webhook body (two firing alerts of team blue)."""
    return {
        "receiver": "My Super Webhook",
        "status": "firing",
        "orgId": 1,
        "alerts": [
            _grafana_alert("High memory usage", "us-1", "c6eadffa33fcdf37", "1afz29v7z"),
            _grafana_alert("High CPU usage", "eu-1", "bc97ff14869b13e3", "d1rdpdv7k"),
        ],
        "groupLabels": {},
        "commonLabels": {"team": "blue"},
        "commonAnnotations": {},
        "externalURL": "https://play.grafana.org/",
        "version": "1",
        "groupKey": "{}:{}",
        "truncatedAlerts": 0,
        "title": "[FIRING:2]  (blue)",
        "state": "alerting",
        "message": "**Firing**\n\nLabels:\n - alertname = High memory usage\n - team = blue\n - zone = us-1\n",
    }


#: a generic webhook's body (what `webhook_mappings` templates read as `body`)
WEBHOOK_BODY: dict[str, Any] = {
    "monitor": {"id": 4711, "name": "Checkout API", "url": "https://shop.example.org/api/health"},
    "state": "down",
    "message": "Checkout API is down: HTTP 503 for 3 checks",
    "checked_at": "2026-11-30T09:52:26Z",
}

#: the labels and annotations a mapping of that body gives the rules
WEBHOOK_SIGNAL: dict[str, Any] = {
    "key": "4711",
    "status": "firing",
    "labels": {"alertname": "Checkout API down", "check": "Checkout API"},
    "annotations": {"summary": "Checkout API is down", "message": WEBHOOK_BODY["message"]},
}
