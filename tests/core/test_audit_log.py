"""`GET /v1/audit` (issue 11): who, what, when, before and after; filters, keyset pages, newest first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from .helpers import assert_error


def _audit(client, admin: dict[str, str], **params: Any) -> dict[str, Any]:
    resp = client.get("/v1/audit", headers=admin, params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


def _one(client, admin: dict[str, str], action: str) -> dict[str, Any]:
    [entry] = _audit(client, admin, action=action)["items"]
    return entry


def test_incident_and_update_edits_record_before_and_after(client, admin, make_incident, make_update):
    incident = make_incident(severity="major")
    created = _one(client, admin, "incident.create")
    assert created["after"]["title"] == "Water main break" and created["before"] is None
    assert client.patch(f"/v1/incidents/{incident['id']}", headers=admin, json={"severity": "minor"}).status_code == 200
    edited = _one(client, admin, "incident.update")
    assert edited["before"] == {"severity": "major"} and edited["after"] == {"severity": "minor"}
    assert edited["actor"].startswith("key:") and edited["target_id"] == str(incident["id"])

    update = make_update(incident["id"], body="Crews are on site.")
    assert _one(client, admin, "update.create")["after"]["body"] == "Crews are on site."
    resp = client.patch(f"/v1/updates/{update['id']}", headers=admin, json={"body": "Crews left.", "summary": "x"})
    assert resp.status_code == 200, resp.text
    entry = _one(client, admin, "update.edit")
    assert entry["before"] == {"body": "Crews are on site.", "summary": "Crews on site"}
    assert entry["after"] == {"body": "Crews left.", "summary": "x"}

    assert client.delete(f"/v1/updates/{update['id']}", headers=admin).status_code == 204
    deleted = _one(client, admin, "update.delete")
    assert deleted["before"]["body"] == "Crews left." and deleted["after"] is None


def test_publish_and_cancel_record_state_changes(client, admin, make_incident, make_update):
    incident = make_incident(severity="minor")
    update = make_update(incident["id"], channels=["webhook"])
    resp = client.post(f"/v1/updates/{update['id']}/publish", headers=admin)
    assert resp.status_code == 200, resp.text
    entry = _one(client, admin, "update.publish")
    assert entry["before"]["state"] == "draft" and entry["after"]["state"] == "published"
    broadcast_id = resp.json()["broadcast_id"]
    assert broadcast_id is not None and entry["after"]["broadcast_id"] == broadcast_id
    assert client.post(f"/v1/broadcasts/{broadcast_id}/cancel", headers=admin).status_code == 200
    cancel = _one(client, admin, "broadcast.cancel")
    assert cancel["before"] == {"state": "planning"} and cancel["after"]["state"] == "cancelled"


def test_category_and_routing_map_changes(client, admin, emergency_category):
    resp = client.patch("/v1/categories/emergency", headers=admin, json={"name": "Emergencies"})
    assert resp.status_code == 200, resp.text
    entry = _one(client, admin, "category.update")
    assert entry["before"] == {"name": emergency_category["name"]} and entry["after"] == {"name": "Emergencies"}
    routing_map = client.get("/v1/routing-map", headers=admin).json()
    assert client.put("/v1/routing-map", headers=admin, json=routing_map).status_code == 200
    replaced = _one(client, admin, "routing_map.replace")
    assert replaced["before"] == replaced["after"]


def test_key_revoke_and_subscriber_edits_never_store_secrets(client, admin, make_key):
    key = make_key("read", name="script")
    [row] = [k for k in client.get("/v1/keys", headers=admin).json() if k["name"] == "script"]
    assert client.delete(f"/v1/keys/{row['id']}", headers=admin).status_code == 204
    entry = _one(client, admin, "key.revoke")
    assert entry["before"]["revoked_at"] is None and entry["after"]["revoked_at"]
    assert entry["after"]["key"].endswith("_****")
    secret = key.split("_", 2)[2]
    assert secret not in str(_audit(client, admin))

    sub = client.post("/v1/subscribers", headers=admin, json={"phone": "+15550001111", "name": "Ann"})
    assert sub.status_code == 201, sub.text
    sid = sub.json()["id"]
    assert client.patch(f"/v1/subscribers/{sid}", headers=admin, json={"name": "Anne"}).status_code == 200
    entry = _one(client, admin, "subscriber.update")
    assert entry["before"] == {"name": "Ann"} and entry["after"] == {"name": "Anne"}
    assert client.delete(f"/v1/subscribers/{sid}", headers=admin).status_code == 204
    assert _one(client, admin, "subscriber.delete")["before"]["phone"] == "+15550001111"


def test_secrets_are_masked_in_before_and_after():
    from broadcaster.audit import safe

    out = safe(
        {
            "key_hash": "0123456789abcdef",
            "nested": {"auth_token": "tok-abcdef-1234", "password": "hunter2hunter2"},
            "hook": "https://user:pw@hooks.example.org/services/T000/B000/XXXXSECRET",
            "signed": "https://example.org/cb?token=s3cr3tvalue",
            "link": "https://status.example.org/incidents/1",
            "when": datetime(2026, 1, 2, tzinfo=UTC),
        }
    )
    assert out is not None
    assert out["key_hash"] == "****cdef"
    assert out["nested"] == {"auth_token": "****1234", "password": "****ter2"}
    assert "pw" not in out["hook"] and "XXXXSECRET" not in out["hook"]
    assert "s3cr3t" not in out["signed"]
    assert out["link"] == "https://status.example.org/incidents/1"
    assert out["when"] == "2026-01-02T00:00:00+00:00"


def test_filters_pages_and_order(client, admin, auth, make_incident):
    first = make_incident(title="First")
    second = make_incident(title="Second")
    reader = auth("read", "write")
    third = client.post(
        "/v1/incidents", headers=reader, json={"title": "Third", "category": "emergency", "severity": "minor"}
    ).json()
    everything = _audit(client, admin)["items"]
    ids = [e["id"] for e in everything]
    assert ids == sorted(ids, reverse=True)  # newest first

    mine = _audit(client, admin, action="incident.create")["items"]
    assert [e["target_id"] for e in mine] == [str(third["id"]), str(second["id"]), str(first["id"])]
    by_actor = _audit(client, admin, actor=mine[0]["actor"])["items"]
    assert [e["target_id"] for e in by_actor] == [str(third["id"])]
    assert _audit(client, admin, action="incident.*")["items"] == mine
    target = _audit(client, admin, target_type="incident", target_id=str(first["id"]))["items"]
    assert [e["action"] for e in target] == ["incident.create"]
    assert _audit(client, admin, target_type="update")["items"] == []

    page1 = _audit(client, admin, action="incident.create", limit=2)
    assert [e["target_id"] for e in page1["items"]] == [str(third["id"]), str(second["id"])]
    page2 = _audit(client, admin, action="incident.create", limit=2, cursor=page1["next_cursor"])
    assert [e["target_id"] for e in page2["items"]] == [str(first["id"])] and page2["next_cursor"] is None

    now = datetime.now(UTC)
    assert len(_audit(client, admin, since=(now - timedelta(minutes=5)).isoformat())["items"]) == len(everything)
    assert _audit(client, admin, since=(now + timedelta(minutes=5)).isoformat())["items"] == []
    assert _audit(client, admin, until=(now - timedelta(minutes=5)).isoformat())["items"] == []
    naive = (now + timedelta(minutes=5)).replace(tzinfo=None).isoformat()
    assert len(_audit(client, admin, until=naive)["items"]) == len(everything)


def test_audit_needs_the_admin_scope(client, auth):
    assert_error(client.get("/v1/audit", headers=auth("read", "write", "publish")), 403, "forbidden")
    assert_error(client.get("/v1/audit"), 401)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"action": "Drop Table"}, "action"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
        ({"limit": 0}, "limit"),
        ({"cursor": "abc"}, "cursor"),
        ({"actor": "x" * 121}, "actor"),
    ],
)
def test_bad_filters_are_422_naming_the_field(client, admin, params, field):
    assert_error(client.get("/v1/audit", headers=admin, params=params), 422, field=field)


def test_openapi_documents_the_audit_api(client):
    doc = client.get("/openapi.json").json()
    op = doc["paths"]["/v1/audit"]["get"]
    assert {"200", "401", "403"} <= set(op["responses"])
    names = {p["name"] for p in op["parameters"]}
    assert {"actor", "action", "target_type", "target_id", "since", "until", "limit", "cursor"} <= names
    assert {"before", "after", "detail"} <= set(doc["components"]["schemas"]["AuditOut"]["properties"])


def test_cli_key_create_and_routing_import_are_audited_with_after(client, admin, tmp_path):
    from typer.testing import CliRunner

    from broadcaster.cli import app as cli

    runner = CliRunner()
    result = runner.invoke(cli, ["keys", "create", "--name", "pager", "--scopes", "alerts"])
    assert result.exit_code == 0, result.output
    plaintext = result.stdout.strip().splitlines()[0]
    entry = _one(client, admin, "key.create")
    assert entry["actor"].startswith("cli:") and entry["before"] is None
    assert entry["after"]["name"] == "pager" and entry["after"]["scopes"] == ["alerts"]
    assert entry["after"]["key"].endswith("_****") and plaintext.split("_", 2)[2] not in str(entry)

    plan = tmp_path / "plan.yaml"
    plan.write_text("categories:\n  - slug: outage\n    name: Outage\n    channels: {critical: [sms]}\n")
    result = runner.invoke(cli, ["routing", "import", str(plan)])
    assert result.exit_code == 0, result.output
    entry = _one(client, admin, "routing_map.replace")
    assert entry["before"]["categories"] == [] and [c["slug"] for c in entry["after"]["categories"]] == ["outage"]
