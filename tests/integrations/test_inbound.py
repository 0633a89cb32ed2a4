"""Inbound alerts: authentication, the senders' documented payloads, rules, dedup, flapping, resolution."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from tests.approving import confirm
from tests.core.helpers import assert_error, row_counts

from . import payloads
from .conftest import bearer

AM = "/v1/inbound/alertmanager/prometheus"


def _db():
    from broadcaster.db import session_scope

    return session_scope()


def _incidents() -> list:
    from broadcaster.models import Incident

    with _db() as s:
        return [
            (i.id, i.title, i.severity, i.status, list(i.affected_services))
            for i in s.scalars(select(Incident).order_by(Incident.id))
        ]


def _updates(state: str | None = None) -> list:
    from broadcaster.models import Update

    with _db() as s:
        stmt = select(Update).order_by(Update.id)
        if state:
            stmt = stmt.where(Update.state == state)
        return [(u.id, u.incident_id, u.state, u.status, u.body) for u in s.scalars(stmt)]


def _audit(action: str) -> list[dict]:
    from broadcaster.models import AuditEntry

    with _db() as s:
        return [e.detail for e in s.scalars(select(AuditEntry).where(AuditEntry.action == action))]


@pytest.fixture
def prometheus(set_map, integration) -> str:
    set_map()
    return integration("prometheus", "alertmanager")["secret"]


# --- authentication --------------------------------------------------------------------------------------------


def test_bad_or_missing_token_is_401_and_writes_nothing(client, prometheus, integration):
    other = integration("grafana", "grafana")["secret"]
    body = payloads.alertmanager()
    before = row_counts()
    for headers in ({}, bearer("wrong-token-0123456789"), bearer(other), {"Authorization": prometheus}):
        assert_error(client.post(AM, json=body, headers=headers), 401, "unauthorized", "Authorization")
    # the right token on another kind's endpoint, or an unknown integration: the same 401
    assert_error(client.post("/v1/inbound/grafana/prometheus", json=body, headers=bearer(prometheus)), 401)
    assert_error(client.post("/v1/inbound/alertmanager/nope", json=body, headers=bearer(prometheus)), 401)
    # a bad token with a bad body: 401 first (nothing about the body is revealed)
    assert_error(client.post(AM, content=b"{not json", headers=bearer("x" * 20)), 401)
    assert row_counts() == before


def test_basic_auth_password_is_the_token(client, prometheus):
    basic = base64.b64encode(f"grafana:{prometheus}".encode()).decode()
    resp = client.post(AM, json=payloads.alertmanager(), headers={"Authorization": f"Basic {basic}"})
    assert resp.status_code == 200, resp.text


def test_hmac_signature(client, set_map, integration):
    set_map()
    secret = integration("grafana", "grafana", auth="hmac", secret="s3cret-s3cret-s3cret")["secret"]
    raw = json.dumps(payloads.grafana()).encode()
    sig = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    url = "/v1/inbound/grafana/grafana"
    before = row_counts()
    assert_error(client.post(url, content=raw, headers={"X-Grafana-Alerting-Signature": "0" * 64}), 401)
    assert_error(client.post(url, content=raw + b" ", headers={"X-Grafana-Alerting-Signature": sig}), 401)
    stale = str(int(time.time()) - 3600)
    stale_sig = hmac.new(secret.encode(), stale.encode() + b":" + raw, hashlib.sha256).hexdigest()
    headers = {"X-Grafana-Alerting-Signature": stale_sig, "X-Grafana-Alerting-Timestamp": stale}
    assert_error(client.post(url, content=raw, headers=headers), 401)
    assert row_counts() == before
    ok = client.post(url, content=raw, headers={"X-Grafana-Alerting-Signature": sig})
    assert ok.status_code == 200, ok.text
    now = str(int(time.time()))
    ts_sig = hmac.new(secret.encode(), now.encode() + b":" + raw, hashlib.sha256).hexdigest()
    ok2 = client.post(
        url, content=raw, headers={"X-Broadcaster-Signature": f"sha256={ts_sig}", "X-Broadcaster-Timestamp": now}
    )
    assert ok2.status_code == 200 and ok2.json()["results"][0]["action"] == "repeat"


def test_secret_shown_once_and_never_listed(client, admin, prometheus):
    listed = client.get("/v1/integrations", headers=admin).json()
    assert listed[0]["name"] == "prometheus" and "secret" not in listed[0]
    assert listed[0]["url"].endswith("/v1/inbound/alertmanager/prometheus")
    assert prometheus not in json.dumps(client.get("/v1/audit", headers=admin).json())


# --- schema validation -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.pop("groupKey"), "groupKey"),
        (lambda b: b.update(version="3"), "version"),
        (lambda b: b["alerts"][0].update(status="exploded"), "alerts.0.status"),
        (lambda b: b["alerts"][0].pop("labels"), "alerts.0.labels"),
        (lambda b: b["alerts"][0].update(startsAt="yesterday"), "alerts.0.startsAt"),
        (lambda b: b.update(alerts=[]), "alerts"),
        (lambda b: b["commonLabels"].update(severity=3), "commonLabels.severity"),
    ],
)
def test_alertmanager_body_is_validated(client, prometheus, mutate, field):
    body = payloads.alertmanager()
    mutate(body)
    before = row_counts()
    assert_error(client.post(AM, json=body, headers=bearer(prometheus)), 422, field=field)
    assert row_counts() == before


def test_malformed_json_is_422(client, prometheus):
    assert_error(client.post(AM, content=b"{", headers=bearer(prometheus)), 422, "malformed_json", "body")
    assert_error(client.post(AM, json=[1], headers=bearer(prometheus)), 422, field="body")


def test_grafana_body_is_validated(client, set_map, integration):
    set_map()
    token = integration("grafana", "grafana")["secret"]
    body = payloads.grafana()
    del body["orgId"]
    assert_error(client.post("/v1/inbound/grafana/grafana", json=body, headers=bearer(token)), 422, field="orgId")


# --- Alertmanager: create, repeat, change, resolve -------------------------------------------------------------


def test_firing_group_creates_and_publishes_one_incident(client, prometheus):
    resp = client.post(AM, json=payloads.alertmanager(), headers=bearer(prometheus))
    assert resp.status_code == 200, resp.text
    [result] = resp.json()["results"]
    assert (result["action"], result["rule"], result["update_state"]) == ("created", "database-down", "published")
    [(iid, title, severity, status, services)] = _incidents()
    assert (title, severity, status, services) == ("billing-db is down", "major", "investigating", ["billing-db"])
    [(_, _, state, _, body)] = _updates()
    assert state == "published" and body == "DatabaseDown: billing-db is unreachable (1 instance)"
    banner = client.get("/v1/banner").json()["banners"]
    assert [b["title"] for b in banner] == ["billing-db is down"]


def test_repeats_update_the_group_without_resending(client, prometheus):
    from broadcaster.models.delivery import Broadcast
    from broadcaster.models.integrations import AlertGroup

    for _ in range(5):
        assert client.post(AM, json=payloads.alertmanager(), headers=bearer(prometheus)).status_code == 200
    assert len(_incidents()) == 1 and len(_updates()) == 1
    with _db() as s:
        assert s.scalar(select(func.count()).select_from(Broadcast)) == 1
        assert s.scalar(select(AlertGroup.changes)) == 1  # repeats write nothing


def test_change_in_the_window_is_deferred_then_flushed(client, prometheus):
    from broadcaster.integrations import service
    from broadcaster.models import utcnow

    client.post(AM, json=payloads.alertmanager(), headers=bearer(prometheus))
    grown = payloads.alertmanager(instances=("db-1:9100", "db-2:9100"))
    flaps = [client.post(AM, json=grown, headers=bearer(prometheus)).json()["results"][0] for _ in range(3)]
    # flapping: back to one instance, then two again, all within the window
    client.post(AM, json=payloads.alertmanager(), headers=bearer(prometheus))
    last = client.post(AM, json=grown, headers=bearer(prometheus)).json()["results"][0]
    assert flaps[0]["action"] == "deferred" and last["action"] == "deferred"
    assert len(_updates()) == 1  # nothing public yet
    with _db() as s:
        assert service.due_groups(s, utcnow()) == []  # not yet due
        due = service.due_groups(s, utcnow() + timedelta(minutes=11))
        assert len(due) == 1
        result = service.flush_group(s, due[0], utcnow() + timedelta(minutes=11))
        assert result is not None and result.action == "updated"
    ups = _updates()
    assert len(ups) == 2 and ups[1][2] == "published" and ups[1][4].endswith("(2 instances)")
    with _db() as s:  # flushing again does nothing
        assert service.due_groups(s, utcnow() + timedelta(minutes=30)) == []


def test_resolved_moves_incident_to_resolved_with_update(client, set_map, integration):
    set_map(**{"database-down": {"min_update_minutes": 0}})
    token = integration("prometheus", "alertmanager")["secret"]
    client.post(AM, json=payloads.alertmanager(), headers=bearer(token))
    resp = client.post(AM, json=payloads.alertmanager(status="resolved"), headers=bearer(token))
    [result] = resp.json()["results"]
    assert result["action"] == "resolved" and result["update_state"] == "published"
    [(_, _, _, status, _)] = _incidents()
    assert status == "resolved"
    assert _updates()[-1][3:] == ("resolved", "billing-db is back.")
    assert client.get("/v1/banner").json()["banners"] == []
    # the resolved notification repeated: nothing more
    again = client.post(AM, json=payloads.alertmanager(status="resolved"), headers=bearer(token)).json()
    assert again["results"][0]["action"] == "repeat" and len(_updates()) == 2


def test_resolved_silently_when_the_rule_says_so(client, set_map, integration):
    set_map(**{"database-down": {"min_update_minutes": 0, "on_resolve": "silent"}})
    token = integration("prometheus", "alertmanager")["secret"]
    client.post(AM, json=payloads.alertmanager(), headers=bearer(token))
    client.post(AM, json=payloads.alertmanager(status="resolved"), headers=bearer(token))
    assert _incidents()[0][3] == "resolved" and len(_updates()) == 1


def test_fires_again_after_resolution_opens_a_new_incident(client, set_map, integration):
    set_map(**{"database-down": {"min_update_minutes": 0}})
    token = integration("prometheus", "alertmanager")["secret"]
    for status in ("firing", "resolved", "firing"):
        client.post(AM, json=payloads.alertmanager(status=status), headers=bearer(token))
    assert [i[3] for i in _incidents()] == ["resolved", "investigating"]


def test_unmatched_alert_is_ignored_and_writes_nothing(client, prometheus):
    before = row_counts()
    resp = client.post(AM, json=payloads.alertmanager(group="DiskFull"), headers=bearer(prometheus))
    assert resp.json()["results"][0]["action"] == "ignored"
    after = row_counts()
    assert {t: n for t, n in after.items() if n != before[t]} == {}


# --- publish modes and the two-person rule -----------------------------------------------------------------------


def test_critical_auto_publish_waits_for_approval(client, prometheus, admin):
    resp = client.post(AM, json=payloads.alertmanager(severity="critical"), headers=bearer(prometheus))
    [result] = resp.json()["results"]
    assert result["update_state"] == "pending_approval"
    [audit] = _audit("alert.auto_publish")
    assert audit["two_person_rule"].startswith("applied") and audit["severity"] == "critical"
    assert client.get("/v1/banner").json()["banners"] == []
    # a person approves what the integration asked for
    uid = result["update_id"]
    etag = client.get(f"/v1/updates/{uid}", headers=admin).headers["etag"]
    ok = client.post(f"/v1/updates/{uid}/approve", json=confirm(uid), headers=admin | {"If-Match": etag})
    assert ok.status_code == 200, ok.text
    assert ok.json()["update"]["state"] == "published"


def test_critical_auto_publish_when_the_rule_allows_automation(client, set_map, integration, admin):
    # the map loosens safety: set_map's admin proposes it and a second person approves (routing-map versions)
    set_map(**{"database-down": {"two_person_rule": "automation_allowed"}})
    [version] = client.get("/v1/routing-map/versions", headers=admin).json()["items"]
    assert version["state"] == "applied" and version["approved_by"].startswith("key:test-read-publish")
    token = integration("prometheus", "alertmanager")["secret"]
    resp = client.post(AM, json=payloads.alertmanager(severity="critical"), headers=bearer(token))
    assert resp.json()["results"][0]["update_state"] == "published"
    [audit] = _audit("alert.auto_publish")
    assert audit["two_person_rule"] == "bypassed: the rule allows automation" and audit["rule"] == "database-down"
    assert audit["allowed_by"] == (
        f"alert_rules[database-down] of routing-map version {version['number']}, approved by {version['approved_by']}"
    )


def test_draft_mode_leaves_it_to_a_person(client, set_map, integration):
    set_map(**{"database-down": {"publish": "draft"}})
    token = integration("prometheus", "alertmanager")["secret"]
    resp = client.post(AM, json=payloads.alertmanager(), headers=bearer(token))
    assert resp.json()["results"][0]["update_state"] == "draft"
    assert _updates("published") == [] and len(_audit("alert.draft")) == 1


# --- Grafana ---------------------------------------------------------------------------------------------------


def test_grafana_documented_payload_groups_into_one_incident(client, set_map, integration):
    set_map()
    token = integration("grafana", "grafana")["secret"]
    url = "/v1/inbound/grafana/grafana"
    first = client.post(url, json=payloads.grafana(), headers=bearer(token))
    assert first.status_code == 200, first.text
    assert first.json()["results"][0]["action"] == "created"
    [(_, title, severity, _, _)] = _incidents()
    assert (title, severity) == ("Team blue: 2 alerts", "minor")
    assert _updates()[0][4] == "This alert was triggered for zone us-1\nThis alert was triggered for zone eu-1"
    assert client.post(url, json=payloads.grafana(), headers=bearer(token)).json()["results"][0]["action"] == "repeat"
    done = client.post(url, json=payloads.grafana("resolved"), headers=bearer(token)).json()["results"][0]
    assert done["action"] == "resolved" and _incidents()[0][3] == "resolved"


def test_grafana_by_fingerprint_makes_one_incident_per_alert(client, set_map, integration):
    set_map(**{"grafana-blue": {"group_by": "fingerprint", "title": "{{ labels.alertname }} in {{ labels.zone }}"}})
    token = integration("grafana", "grafana")["secret"]
    resp = client.post("/v1/inbound/grafana/grafana", json=payloads.grafana(), headers=bearer(token))
    assert [r["action"] for r in resp.json()["results"]] == ["created", "created"]
    assert sorted(i[1] for i in _incidents()) == ["High CPU usage in eu-1", "High memory usage in us-1"]


# --- generic webhook ---------------------------------------------------------------------------------------------


def test_generic_webhook_through_its_mapping(client, set_map, integration):
    set_map()
    token = integration("uptime", "webhook")["secret"]
    url = "/v1/inbound/webhook/uptime"
    down = {"monitor": {"id": 7, "name": "Website"}, "state": "down", "message": "HTTP 503 from www"}
    before = row_counts()
    missing = {"monitor": {"id": 7}, "state": "down"}
    assert_error(client.post(url, json=missing, headers=bearer(token)), 422, field="monitor.name")
    assert row_counts() == before
    resp = client.post(url, json=down, headers=bearer(token))
    assert resp.json()["results"][0]["action"] == "created", resp.text
    assert _incidents()[0][1] == "Website is down" and _updates()[0][4] == "HTTP 503 from www"
    up = client.post(url, json=down | {"state": "up"}, headers=bearer(token)).json()["results"][0]
    assert up["action"] == "resolved"


def test_generic_webhook_without_mapping_is_422(client, set_map, integration):
    set_map()
    token = integration("other", "webhook")["secret"]
    assert_error(
        client.post("/v1/inbound/webhook/other", json={"a": 1}, headers=bearer(token)), 422, field="webhook_mappings"
    )


# --- the routing map's sections ------------------------------------------------------------------------------------


def test_rules_round_trip_through_yaml(client, admin, set_map):
    set_map()
    text = client.get("/v1/routing-map?format=yaml", headers=admin).text
    assert "alert_rules:" in text and "webhook_mappings:" in text
    resp = client.put("/v1/routing-map", headers=admin | {"Content-Type": "application/yaml"}, content=text)
    assert resp.status_code == 200, resp.text
    assert [r["name"] for r in resp.json()["alert_rules"]] == ["database-down", "grafana-blue", "uptime"]


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"template": "{{ labels.x "}, "alert_rules.0.template"),
        ({"category": "nope"}, "alert_rules.0.category"),
        ({"match_re": {"x": "("}}, "alert_rules.0.match_re"),
        ({"severity_map": {"x": "huge"}}, "alert_rules.0.severity_map.x"),
        ({"name": "grafana-blue"}, "alert_rules.1.name"),
    ],
)
def test_invalid_rules_are_422_naming_the_field(client, admin, patch, field):
    from .conftest import BASE_MAP

    data = json.loads(json.dumps(BASE_MAP))
    data["alert_rules"][0].update(patch)
    resp = client.put("/v1/routing-map", headers=admin, json=data)
    assert_error(resp, 422, field=field)


def test_templates_are_sandboxed(client, set_map, integration):
    set_map(**{"database-down": {"template": "{{ labels.__class__.__mro__ }}{{ ''.__class__.__subclasses__() }}"}})
    token = integration("prometheus", "alertmanager")["secret"]
    resp = client.post(AM, json=payloads.alertmanager(), headers=bearer(token))
    assert resp.status_code == 422 and "alert_rules" in resp.json()["field"]
    assert _incidents() == []


def test_the_runner_beside_the_worker_sends_due_deferred_updates(client, prometheus):
    from broadcaster.integrations.runner import AlertFlushRunner
    from broadcaster.models import utcnow
    from broadcaster.models.integrations import AlertGroup

    client.post(AM, json=payloads.alertmanager(), headers=bearer(prometheus))
    resolved = client.post(AM, json=payloads.alertmanager(status="resolved"), headers=bearer(prometheus)).json()
    assert resolved["results"][0]["action"] == "deferred"
    assert AlertFlushRunner().run_once() == 0  # not due yet
    with _db() as s:
        s.scalars(select(AlertGroup)).one().due_at = utcnow() - timedelta(seconds=1)
    assert AlertFlushRunner().run_once() == 1
    assert _incidents()[0][3] == "resolved" and _updates()[-1][3] == "resolved"
    assert AlertFlushRunner().run_once() == 0
