"""Fixtures for inbound alert tests: a routing map with alert rules, and configured integrations."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

BASE_MAP: dict[str, Any] = {
    "categories": [
        {
            "slug": "outage",
            "name": "Service outage",
            "contact": {"live_chat_url": "https://chat.example.org/"},
            "channels": {"critical": ["banner"], "major": ["banner"], "minor": ["banner"]},
        }
    ],
    "alert_rules": [
        {
            "name": "database-down",
            "integrations": [],
            "match": {"alertname": "DatabaseDown"},
            "category": "outage",
            "severity": "major",
            "severity_label": "severity",
            "severity_map": {"page": "major", "critical": "critical", "warning": "minor"},
            "affected_services": ["{{ labels.service }}"],
            "title": "{{ labels.service }} is down",
            "template": "{{ annotations.summary }} ({{ alerts | length }} instance{{ 's' if alerts | length != 1 }})",
            "summary": "{{ labels.service }} down",
            "resolved_template": "{{ labels.service }} is back.",
            "publish": "auto",
            "min_update_minutes": 10,
        },
        {
            "name": "grafana-blue",
            "match": {"team": "blue"},
            "category": "outage",
            "severity": "minor",
            "title": "Team {{ labels.team }}: {{ alerts | length }} alerts",
            "template": "{% for a in alerts %}{{ a.annotations.summary }}\n{% endfor %}",
            "publish": "auto",
            "min_update_minutes": 0,
        },
        {
            "name": "uptime",
            "integrations": ["uptime"],
            "match_re": {"check": ".+"},
            "category": "outage",
            "severity": "major",
            "title": "{{ labels.check }} is down",
            "template": "{{ annotations.message }}",
            "publish": "auto",
            "min_update_minutes": 0,
        },
    ],
    "webhook_mappings": [
        {
            "name": "uptime",
            "required": ["monitor.name", "state"],
            "key": "{{ body.monitor.id }}",
            "status": "{{ 'resolved' if body.state == 'up' else 'firing' }}",
            "labels": {"check": "{{ body.monitor.name }}"},
            "annotations": {"message": "{{ body.message }}"},
        }
    ],
}


@pytest.fixture
def set_map(client, admin, auth) -> Callable[..., dict]:
    """PUT the routing map (BASE_MAP with `rules` patched by name: {rule name: {field: value}}). Automatic alert
    rules loosen safety: the admin's PUT is a proposal (202), which a second person (an approver) approves."""
    approver = auth("read", "publish")

    def put(**patches: dict[str, Any]) -> dict:
        data = copy.deepcopy(BASE_MAP)
        for rule in data["alert_rules"]:
            rule.update(patches.get(rule["name"], {}))
        resp = client.put("/v1/routing-map", headers=admin, json=data)
        if resp.status_code == 202:
            number = resp.json()["number"]
            approved = client.post(
                f"/v1/routing-map/versions/{number}/approve", headers=approver | {"If-Match": resp.headers["ETag"]}
            )
            assert approved.status_code == 200, approved.text
            assert approved.json()["state"] == "applied"
            resp = client.get("/v1/routing-map", headers=admin)
        assert resp.status_code == 200, resp.text
        return resp.json()

    return put


@pytest.fixture
def integration(client, admin) -> Callable[..., dict]:
    """Create an integration; returns its JSON with the one-time `secret`."""

    def make(name: str, kind: str, auth: str = "token", secret: str | None = None, **more: str) -> dict:
        body: dict[str, Any] = {"name": name, "kind": kind, "auth": auth, **more}
        if secret:
            body["secret"] = secret
        resp = client.post("/v1/integrations", headers=admin, json=body)
        assert resp.status_code == 201, resp.text
        return resp.json()

    return make


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}
