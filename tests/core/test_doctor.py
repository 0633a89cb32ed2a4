"""`broadcaster doctor`: each check's OK and FAIL path, against real SQLite files and the fake provider server
over HTTP through the real SDKs; exit codes and --json."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from broadcaster import doctor
from broadcaster.doctor import Status

STRONG_KEY = "k" + "x7Qm2vR9pL4sT8wZ1yB6nC3dF5gH0jK" * 2


@pytest.fixture
def production(db_url: str, fake, monkeypatch: pytest.MonkeyPatch) -> str:
    """A healthy production-like deployment: https PUBLIC_URL, a strong SECRET_KEY, Twilio and SendGrid against
    the fake provider server (strict: it checks the credentials)."""
    env = fake.env(webhook=False)
    for name in ("TWILIO_BASE_URL", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER"):
        monkeypatch.setenv(name, env[name])
    for name in ("SENDGRID_BASE_URL", "SENDGRID_API_KEY", "SENDGRID_FROM_EMAIL"):
        monkeypatch.setenv(name, env[name])
    monkeypatch.setenv("PUBLIC_URL", "https://alerts.example.org")
    monkeypatch.setenv("SECRET_KEY", STRONG_KEY)
    _reload()
    return db_url


def _reload() -> None:
    from broadcaster.channels.registry import adapter_classes
    from broadcaster.db import reset_engine
    from broadcaster.settings import get_settings

    get_settings.cache_clear()
    adapter_classes.cache_clear()
    reset_engine()


def _settings():
    from broadcaster.settings import get_settings

    return get_settings()


def _by_check(findings: list[doctor.Finding]) -> dict[str, doctor.Finding]:
    return {f.check: f for f in findings}


def _cli(*args: str):
    from broadcaster.cli import app

    return CliRunner().invoke(app, ["doctor", *args])


def test_a_healthy_deployment_exits_0_and_asks_each_provider(production, fake):
    result = _cli()
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for check in ("PUBLIC_URL", "SECRET_KEY", "approval", "database", "worker", "clock", "disk", "twilio-sms"):
        assert any(line.startswith("OK") and f"  {check}:" in line for line in lines), (check, result.output)
    assert "sendgrid: API key accepted" in result.output
    assert lines[-1] == "Nothing to fix."
    # the harmless authenticated calls really reached the fake, through the SDKs
    assert fake.requests("sendgrid", "/v3/scopes")
    sid = fake.env()["TWILIO_ACCOUNT_SID"]
    assert [r for r in fake.requests("twilio") if r.path == f"/2010-04-01/Accounts/{sid}.json"]


def test_json_output_for_scripts(production, monkeypatch):
    result = _cli("--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["ok"] is True
    assert {f["status"] for f in body["findings"]} == {"OK"}
    assert {"check", "status", "message"} == set(body["findings"][0])

    monkeypatch.setenv("PUBLIC_URL", "http://alerts.example.org")
    _reload()
    result = _cli("--json")
    assert result.exit_code == 1
    body = json.loads(result.output)
    assert body["ok"] is False
    assert [f["check"] for f in body["findings"] if f["status"] == "FAIL"] == ["PUBLIC_URL"]


def test_bad_credentials_fail_naming_the_provider(production, fake, monkeypatch):
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "wrong-token")
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.wrong")
    _reload()
    result = _cli()
    assert result.exit_code == 1
    fails = [line for line in result.output.splitlines() if line.startswith("FAIL")]
    twilio = next(line for line in fails if "twilio-sms:" in line)
    assert "Twilio refused the check" in twilio and "401" in twilio and "TWILIO_AUTH_TOKEN" in twilio
    sendgrid = next(line for line in fails if "sendgrid:" in line)
    assert "SendGrid refused the check" in sendgrid and "401" in sendgrid and "SENDGRID_API_KEY" in sendgrid
    assert any("twilio-voice:" in line for line in fails)  # the same account serves voice
    assert result.output.splitlines()[-1] == "3 problem(s) to fix (FAIL lines above)."
    assert fake.requests("sendgrid", "/v3/scopes")  # it asked (and was refused), not guessed


def test_a_partly_configured_provider_names_the_missing_setting(production, monkeypatch):
    monkeypatch.delenv("SENDGRID_FROM_EMAIL")
    _reload()
    found = _by_check(doctor.check_providers(_settings()))
    assert found["SendGrid"].status is Status.fail and "SENDGRID_FROM_EMAIL" in found["SendGrid"].message
    assert "sendgrid" not in found  # it is off, so it is not asked


def test_database_behind_on_migrations(production):
    from broadcaster.db import get_engine

    ok = _by_check(doctor.run_checks(_settings()))["database"]
    assert ok.status is Status.ok
    with get_engine().begin() as conn:
        head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        conn.execute(text("UPDATE alembic_version SET version_num = '0006_routing_versions'"))
    _reload()
    try:
        result = _cli()
    finally:  # the PostgreSQL database is shared by the run's tests
        with get_engine().begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})
    assert result.exit_code == 1
    line = next(line for line in result.output.splitlines() if "  database:" in line)
    assert line.startswith("FAIL") and "0006_routing_versions" in line and "broadcaster db upgrade" in line


def test_no_database_file(production, monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'missing' / 'gone.db'}")
    _reload()
    found = _by_check(doctor.run_checks(_settings()))
    assert found["database"].status is Status.fail and "no database file" in found["database"].message
    assert not (tmp_path / "missing").exists()  # the doctor does not create an empty database
    assert "worker" not in found


def _delivery(status: str, *, due: datetime, lease: datetime | None = None) -> None:
    from broadcaster.db import session_scope
    from broadcaster.models.delivery import Delivery

    with session_scope() as session:
        session.add(
            Delivery(
                broadcast_id=1,
                channel="sms",
                address="+15550001",
                status=status,
                next_attempt_at=due,
                lease_expires_at=lease,
                sent_at=due if status == "sent" else None,
            )
        )


def test_no_worker_picking_up_messages(production):
    from broadcaster.db import get_engine

    now = datetime.now(UTC)
    assert doctor.check_worker(get_engine()).message == "nothing is waiting to be sent (nothing sent yet)"
    _delivery("sent", due=now - timedelta(minutes=30))
    _delivery("pending", due=now)  # just due: a running worker takes it within seconds
    found = doctor.check_worker(get_engine())
    assert found.status is Status.ok and "last message sent 30 minute(s) ago" in found.message

    _delivery("pending", due=now - timedelta(minutes=10))
    result = _cli()
    assert result.exit_code == 1
    line = next(line for line in result.output.splitlines() if "  worker:" in line)
    assert line.startswith("FAIL") and "1 message(s)" in line and "broadcaster worker" in line


def test_a_lease_nobody_took_back_means_no_worker(production):
    from broadcaster.db import get_engine

    now = datetime.now(UTC)
    _delivery("sending", due=now - timedelta(minutes=20), lease=now - timedelta(minutes=5))
    assert doctor.check_worker(get_engine()).status is Status.fail
    assert doctor.check_worker(get_engine(), now=now - timedelta(minutes=4)).status is Status.ok


def test_clock_skew(production):
    from broadcaster.db import get_engine

    assert doctor.check_clock(get_engine()).status is Status.ok
    late = doctor.check_clock(get_engine(), host_now=lambda: datetime.now(UTC) - timedelta(minutes=5))
    assert late.status is Status.fail and "300 s off" in late.message and "NTP" in late.message
    a_bit = doctor.check_clock(get_engine(), host_now=lambda: datetime.now(UTC) + timedelta(seconds=5))
    assert a_bit.status is Status.warn


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("https://alerts.example.org", Status.ok),
        ("http://alerts.example.org", Status.fail),
        ("http://127.0.0.1:8000", Status.ok),
        ("http://localhost:8000", Status.ok),
        ("alerts.example.org", Status.fail),
    ],
)
def test_public_url(production, monkeypatch, url, status):
    monkeypatch.setenv("PUBLIC_URL", url)
    _reload()
    found = doctor.check_public_url(_settings())
    assert found.status is status, found
    if url == "http://alerts.example.org":
        assert "https://alerts.example.org" in found.message


@pytest.mark.parametrize(
    ("key", "status"),
    [
        (STRONG_KEY, Status.ok),
        ("changeme", Status.fail),
        ("a" * 64, Status.fail),
        ("short-but-random-9f3K", Status.fail),
        (None, Status.warn),
    ],
)
def test_secret_key(production, monkeypatch, key, status):
    if key is None:
        monkeypatch.delenv("SECRET_KEY")
    else:
        monkeypatch.setenv("SECRET_KEY", key)
    _reload()
    found = doctor.check_secret_key(_settings())
    assert found.status is status, found
    if key is not None:
        assert key not in found.message  # a secret is never printed


def test_approval_settings(production, monkeypatch):
    assert doctor.check_approval(_settings()).status is Status.ok
    monkeypatch.setenv("APPROVAL_SEVERITY", "none")
    _reload()
    found = doctor.check_approval(_settings())
    assert found.status is Status.fail and "APPROVAL_SEVERITY" in found.message
    monkeypatch.setenv("PUBLIC_URL", "http://127.0.0.1:8000")
    _reload()
    assert doctor.check_approval(_settings()).status is Status.warn  # trying it out on one's own machine


def test_static_target(production, monkeypatch, tmp_path):
    assert doctor.check_static_target(_settings()) is None  # off: no line
    monkeypatch.setenv("STATIC_TARGET", str(tmp_path / "site"))
    _reload()
    found = doctor.check_static_target(_settings())
    assert found is not None and found.status is Status.ok
    assert [p.name for p in (tmp_path / "site").iterdir()] == []  # the probe file is gone

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("STATIC_TARGET", str(blocker / "site"))
    _reload()
    result = _cli()
    assert result.exit_code == 1
    line = next(line for line in result.output.splitlines() if "  static:" in line)
    assert line.startswith("FAIL") and "cannot write to" in line and "STATIC_TARGET" in line


def test_disk_space(production, is_postgres):
    settings = _settings()
    if is_postgres:
        assert doctor.check_disk(settings, warn_bytes=1 << 60).message.startswith("not SQLite")
        return
    assert doctor.check_disk(settings).status is Status.ok
    assert doctor.check_disk(settings, warn_bytes=1 << 60).status is Status.warn
    found = doctor.check_disk(settings, warn_bytes=1 << 60, fail_bytes=1 << 59)
    assert found.status is Status.fail and "GiB free" in found.message
    assert Path(str(doctor.sqlite_path(settings.database_url))).exists()


def test_a_crashing_check_is_a_fail_not_a_traceback(production, monkeypatch):
    def boom(_settings):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(doctor, "check_disk", boom)
    found = _by_check(doctor.run_checks(_settings()))
    assert found["disk"].status is Status.fail and "kaboom" in found["disk"].message
    assert doctor.exit_code(list(found.values())) == 1
