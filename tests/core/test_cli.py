"""The `broadcaster` CLI: keys, db upgrade, routing import/export (the crisis plan), alert."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import select
from typer.testing import CliRunner

from broadcaster.cli import app as cli

PLAN = Path(__file__).resolve().parents[2] / "examples" / "crisis-plan.yaml"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_keys_create_prints_the_key_once_and_stores_a_hash(runner, db_url, client):
    result = runner.invoke(cli, ["keys", "create", "--name", "ops-script", "--scopes", "alerts,read"])
    assert result.exit_code == 0, result.output
    plaintext = result.stdout.strip()
    assert plaintext.startswith("bk_") and len(plaintext.splitlines()) == 1
    assert "shown once" in result.stderr

    from broadcaster.db import session_scope
    from broadcaster.models import ApiKey, AuditEntry
    from broadcaster.security import hash_key

    with session_scope() as session:
        (row,) = session.scalars(select(ApiKey)).all()
        assert (row.name, row.scopes) == ("ops-script", ["alerts", "read"])
        assert row.key_hash == hash_key(plaintext) and plaintext not in (row.key_hash, row.prefix)
        audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "key.create")).one()
        assert plaintext not in str(audit.detail)

    assert client.get("/v1/incidents", headers={"Authorization": f"Bearer {plaintext}"}).status_code == 200

    listed = runner.invoke(cli, ["keys", "list"])
    assert listed.exit_code == 0 and "ops-script" in listed.stdout and plaintext not in listed.stdout
    assert runner.invoke(cli, ["keys", "revoke", str(row.id)]).exit_code == 0
    assert client.get("/v1/incidents", headers={"Authorization": f"Bearer {plaintext}"}).status_code == 401
    with session_scope() as session:  # audited like DELETE /v1/keys/{id}, by who ran the CLI
        revoked = session.scalars(select(AuditEntry).where(AuditEntry.action == "key.revoke")).one()
        assert revoked.actor.startswith("cli:") and revoked.target_id == str(row.id)
        assert revoked.after["revoked_at"] and not revoked.before["revoked_at"] and plaintext not in str(revoked.after)


def test_keys_create_rejects_unknown_scope(runner, db_url):
    result = runner.invoke(cli, ["keys", "create", "--scopes", "read,superuser"])
    assert result.exit_code == 2
    assert "superuser" in result.output


def test_keys_revoke_unknown_is_exit_1(runner, db_url):
    result = runner.invoke(cli, ["keys", "revoke", "999"])
    assert result.exit_code == 1 and "no key 999" in result.output


def test_db_upgrade_and_check(runner, tmp_path, monkeypatch):
    from broadcaster.db import reset_engine
    from broadcaster.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/fresh.db")
    get_settings.cache_clear()
    reset_engine()
    try:
        result = runner.invoke(cli, ["db", "upgrade"])
        assert result.exit_code == 0, result.output
        assert "database at head" in result.stdout
        check = runner.invoke(cli, ["db", "check"])
        assert check.exit_code == 0 and "agree" in check.stdout
    finally:
        get_settings.cache_clear()
        reset_engine()


def test_routing_import_export_round_trip(runner, db_url, tmp_path):
    imported = runner.invoke(cli, ["routing", "import", str(PLAN)])
    assert imported.exit_code == 0, imported.output
    assert "imported 4 categories" in imported.stdout

    out = tmp_path / "exported.yaml"
    assert runner.invoke(cli, ["routing", "export", str(out)]).exit_code == 0
    exported = yaml.safe_load(out.read_text())
    original = yaml.safe_load(PLAN.read_text())
    assert [c["slug"] for c in exported["categories"]] == [c["slug"] for c in original["categories"]]
    for before, after in zip(original["categories"], exported["categories"], strict=True):
        assert after["channels"] == before["channels"]
        assert after["name"] == before["name"]
        assert {k: str(v).rstrip("/") for k, v in after["contact"].items()} == {
            k: str(v).rstrip("/") for k, v in before["contact"].items()
        }

    again = runner.invoke(cli, ["routing", "import", str(out)])
    assert again.exit_code == 0
    stdout = runner.invoke(cli, ["routing", "export"])
    assert yaml.safe_load(stdout.stdout) == exported


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("categories: [unclosed", "not valid YAML"),
        ("- a\n- b\n", "must be a mapping"),
        ("categories:\n  - {slug: a, name: A, channels: {critical: [pigeon]}}\n", "unknown channel 'pigeon'"),
        ("categories:\n  - {slug: Bad Slug, name: A}\n", "categories.0.slug"),
    ],
)
def test_routing_import_bad_yaml_is_exit_1(runner, db_url, tmp_path, text, message):
    assert runner.invoke(cli, ["routing", "import", str(PLAN)]).exit_code == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    result = runner.invoke(cli, ["routing", "import", str(bad)])
    assert result.exit_code == 1
    assert message in result.stderr and "Traceback" not in result.output
    from broadcaster.db import session_scope
    from broadcaster.routing.service import list_categories

    with session_scope() as session:
        assert len(list_categories(session)) == 4  # the stored map is untouched


def test_routing_import_of_a_loosening_map_needs_an_admin_proposer(runner, db_url, tmp_path):
    """A map that switches on alert-rule automation loosens safety. The server's shell names nobody, so without
    --proposer it is refused (exit 1, nothing stored, the reasons and how to propose it printed). With
    `--proposer ADMIN_EMAIL` it is that admin's proposal: exit 0, nothing changes, a second person must approve it
    (the admin's own key or session cannot: tests/core/test_one_person.py). ROUTING_MAP_FILE at start-up names
    nobody either: the service keeps the stored map and says why."""
    from broadcaster.cli import _import_map
    from broadcaster.db import session_scope
    from broadcaster.routing import service, versions
    from broadcaster.users.service import create_user

    assert runner.invoke(cli, ["routing", "import", str(PLAN)]).exit_code == 0
    plan = yaml.safe_load(PLAN.read_text())
    plan["alert_rules"] = [
        {
            "name": "disk-full",
            "match": {"alertname": "DiskFull"},
            "category": "technical-issue",
            "publish": "auto",
            "two_person_rule": "automation_allowed",
        }
    ]
    path = tmp_path / "automation.yaml"
    path.write_text(yaml.safe_dump(plan))
    refused = runner.invoke(cli, ["routing", "import", str(path)])
    assert refused.exit_code == 1, refused.output
    assert "loosens safety and was not applied" in refused.stderr
    assert "alert_rules[disk-full]: two_person_rule: automation_allowed" in refused.stderr
    assert "--proposer ADMIN_EMAIL" in refused.stderr
    not_admin = runner.invoke(cli, ["routing", "import", str(path), "--proposer", "nobody@example.org"])
    assert not_admin.exit_code == 1 and "is not an active admin account" in not_admin.stderr

    with session_scope() as session:
        admin_id = create_user(session, "ada@example.org", "Ada", ["admin"], None).id
    result = runner.invoke(cli, ["routing", "import", str(path), "--proposer", "ada@example.org"])
    assert result.exit_code == 0, result.output
    assert "stored as routing-map version 2, a proposal: nothing" in result.stdout
    assert "A second person (an approver or admin, not you) must approve its diff first" in result.stdout
    assert "alert_rules[disk-full]: two_person_rule: automation_allowed" in result.stdout
    assert 'POST /v1/routing-map/versions/2/approve with If-Match: "' in result.stdout
    assert "imported" not in result.stdout
    at_start = _import_map(path, actor="serve:ROUTING_MAP_FILE", source="startup", admin=False, exit_on_refusal=False)
    assert at_start is None
    with session_scope() as session:
        assert service.export_map(session).alert_rules == []
        states = [(v.number, v.state, v.proposed_by) for v in versions.list_versions(session, limit=10)]
    assert states == [(2, "proposed", f"user:{admin_id}"), (1, "applied", states[1][2])]


def test_routing_import_missing_file_is_exit_1(runner, db_url, tmp_path):
    result = runner.invoke(cli, ["routing", "import", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1 and "cannot read" in result.stderr


def test_alert_requires_a_key(runner, db_url, monkeypatch):
    monkeypatch.delenv("BROADCASTER_API_KEY", raising=False)
    result = runner.invoke(cli, ["alert", "--category", "emergency", "--message", "x"])
    assert result.exit_code == 2 and "API key is required" in result.output


def test_alert_unreachable_service_is_exit_1(runner, db_url):
    result = runner.invoke(
        cli, ["alert", "--category", "x", "--message", "y", "--key", "k", "--url", "http://127.0.0.1:9"]
    )
    assert result.exit_code == 1 and "cannot reach" in result.stderr


def test_alert_rejects_non_http_url(runner, db_url):
    result = runner.invoke(cli, ["alert", "--category", "x", "--message", "y", "--key", "k", "--url", "file:///etc"])
    assert result.exit_code == 2


def test_serve_refuses_several_processes_on_sqlite(runner, tmp_path, monkeypatch):
    from broadcaster.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/x.db")
    get_settings.cache_clear()
    try:
        result = runner.invoke(cli, ["serve", "--workers", "2"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2 and "PostgreSQL" in result.output
    assert not (tmp_path / "x.db").exists()  # refused before touching the database


def test_bad_setting_is_a_short_error_naming_it_not_a_traceback(runner, monkeypatch):
    from broadcaster.settings import get_settings

    monkeypatch.setenv("LOG_LEVEL", "trace")
    monkeypatch.setenv("TWILIO_SMS_RATE_PER_SECOND", "fast")
    get_settings.cache_clear()
    try:
        result = runner.invoke(cli, ["keys", "list"])
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "Invalid configuration" in result.stderr
    assert "LOG_LEVEL: Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR'" in result.stderr
    assert "TWILIO_SMS_RATE_PER_SECOND" in result.stderr and "fast" not in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("name", ["x" * 121, "   ", "a\x00b"])
def test_keys_create_rejects_a_bad_name_and_writes_nothing(runner, db_url, name):
    from broadcaster.db import session_scope
    from broadcaster.models import ApiKey

    result = runner.invoke(cli, ["keys", "create", "--name", name, "--scopes", "read"])
    assert result.exit_code == 2 and "--name" in result.output
    with session_scope() as session:
        assert session.scalars(select(ApiKey)).all() == []
