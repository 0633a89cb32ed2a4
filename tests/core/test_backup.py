"""`broadcaster backup` / `restore`: SQLite's online backup of a database filled through the API, taken while
another connection holds an open transaction, restored into a new file with the same rows in every table;
the refusals (overwrite, not a Broadcaster database, unknown migration); PostgreSQL's printed commands."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from broadcaster.backup import row_counts


@pytest.fixture
def sqlite_db(db_url: str, is_postgres: bool) -> Path:
    if is_postgres:
        pytest.skip("backup and restore copy SQLite files; PostgreSQL uses pg_dump (test_postgres_prints_commands)")
    return Path(db_url.split("///", 1)[1])


def _cli(*args: str):
    from broadcaster.cli import app

    return CliRunner().invoke(app, list(args))


def _use_database(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    from broadcaster.db import reset_engine
    from broadcaster.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    reset_engine()


def _counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return row_counts(conn)
    finally:
        conn.close()


def _fill(client, admin, auth) -> None:
    """An incident with an update, and subscribers, through the API."""
    resp = client.post(
        "/v1/incidents",
        headers=admin,
        json={
            "title": "Water main burst",
            "category": "emergency",
            "severity": "major",
            "update": {"body": "Boil water before drinking."},
        },
    )
    assert resp.status_code == 201, resp.text
    writer = auth("write")
    for n in range(3):
        body = {"email": f"resident{n}@example.org", "categories": ["emergency"]}
        assert client.post("/v1/subscribers", json=body, headers=writer).status_code == 201


def test_round_trip_while_a_transaction_is_open(
    sqlite_db, client, admin, auth, emergency_category, tmp_path, monkeypatch
):
    _fill(client, admin, auth)
    committed = _counts(sqlite_db)
    assert committed["incidents"] == 1 and committed["updates"] == 1 and committed["subscribers"] == 3

    # another connection is in the middle of a write transaction (uncommitted) while the backup runs
    busy = sqlite3.connect(sqlite_db, timeout=30, isolation_level=None)
    busy.execute("BEGIN IMMEDIATE")
    busy.execute("DELETE FROM subscribers")
    backup_file = tmp_path / "backups" / "broadcaster-backup.db"
    result = _cli("backup", str(backup_file))
    busy.execute("ROLLBACK")
    busy.close()
    assert result.exit_code == 0, result.output
    assert "Backed up" in result.output and "checked" in result.output
    assert _counts(backup_file) == committed  # the committed state, not the half-done transaction
    assert not list(backup_file.parent.glob("*.partial"))

    # restore into a new path
    restored = tmp_path / "elsewhere" / "restored.db"
    _use_database(monkeypatch, f"sqlite:///{restored}")
    result = _cli("restore", str(backup_file))
    assert result.exit_code == 0, result.output
    assert "Restored" in result.output and "db upgrade" not in result.output
    assert _counts(restored) == committed
    assert all(n >= 0 for n in committed.values()) and len(committed) > 30  # every table compared

    # the restored database serves the same incident
    from fastapi.testclient import TestClient

    from broadcaster.app import create_app

    with TestClient(create_app(run_worker=False)) as again:
        items = again.get("/v1/incidents", headers=admin).json()["items"]
    assert [i["title"] for i in items] == ["Water main burst"]


def test_backup_refuses_to_overwrite_without_force(sqlite_db, tmp_path):
    dest = tmp_path / "b.db"
    dest.write_bytes(b"precious")
    result = _cli("backup", str(dest))
    assert result.exit_code == 1 and "--force" in result.output
    assert dest.read_bytes() == b"precious"
    result = _cli("backup", str(dest), "--force")
    assert result.exit_code == 0, result.output
    assert _counts(dest) == _counts(sqlite_db)


def test_restore_refuses_to_overwrite_without_force(sqlite_db, client, admin, auth, emergency_category, tmp_path):
    backup_file = tmp_path / "b.db"
    assert _cli("backup", str(backup_file)).exit_code == 0
    _fill(client, admin, auth)
    after = _counts(sqlite_db)
    result = _cli("restore", str(backup_file))
    assert result.exit_code == 1 and "--force" in result.output and "stop the service" in result.output
    assert _counts(sqlite_db) == after
    client.close()  # the service is stopped
    result = _cli("restore", str(backup_file), "--force")
    assert result.exit_code == 0, result.output
    assert _counts(sqlite_db) == _counts(backup_file)
    assert _counts(sqlite_db)["subscribers"] == 0


def test_restore_checks_the_file(sqlite_db, tmp_path, monkeypatch):
    _use_database(monkeypatch, f"sqlite:///{tmp_path / 'new.db'}")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database at all" * 100)
    result = _cli("restore", str(garbage))
    assert result.exit_code == 1 and "not a SQLite database" in result.output

    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE notes (x)")
    conn.commit()
    conn.close()
    result = _cli("restore", str(other))
    assert result.exit_code == 1 and "not a Broadcaster database" in result.output

    future = tmp_path / "future.db"
    future.write_bytes(sqlite_db.read_bytes())
    conn = sqlite3.connect(future)
    conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    conn.commit()
    conn.close()
    result = _cli("restore", str(future))
    assert result.exit_code == 1 and "9999_from_the_future" in result.output
    assert not (tmp_path / "new.db").exists()

    result = _cli("restore", str(tmp_path / "missing.db"))
    assert result.exit_code == 1 and "no file at" in result.output


def test_an_older_backup_asks_for_an_upgrade(sqlite_db, tmp_path, monkeypatch):
    old = tmp_path / "old.db"
    old.write_bytes(sqlite_db.read_bytes())
    conn = sqlite3.connect(old)
    conn.execute("UPDATE alembic_version SET version_num = '0006_routing_versions'")
    conn.commit()
    conn.close()
    _use_database(monkeypatch, f"sqlite:///{tmp_path / 'new.db'}")
    result = _cli("restore", str(old))
    assert result.exit_code == 0, result.output
    assert "broadcaster db upgrade" in result.output


def test_postgres_prints_commands(db_url, monkeypatch, tmp_path):
    _use_database(monkeypatch, "postgresql://bc:s3cret-pw@db.example.org:5433/broadcaster")
    for command in ("backup", "restore"):
        result = _cli(command, str(tmp_path / "bc.dump"))
        assert result.exit_code == 2, result.output
        assert "s3cret-pw" not in result.output
        assert (
            f"pg_dump --format=custom --no-owner --host db.example.org --port 5433 --username bc "
            f"--file {tmp_path / 'bc.dump'} broadcaster"
        ) in result.output
        assert "pg_restore --clean --if-exists --no-owner --single-transaction" in result.output
        assert not (tmp_path / "bc.dump").exists()
