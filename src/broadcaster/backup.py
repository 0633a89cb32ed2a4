"""`broadcaster backup` / `broadcaster restore`: a SQLite database copied with sqlite3's online backup API.

The backup API copies a consistent snapshot while the service keeps running (readers and writers in other
connections carry on; a write made during the copy restarts it, so the file is always one committed state).
A restore checks the file first: an intact SQLite database, with Broadcaster's tables, at a migration this
version of Broadcaster knows. PostgreSQL is backed up with its own tools: `postgres_commands` gives the
documented pg_dump / pg_restore lines. See docs/operations.md ("Backups").
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

#: tables every Broadcaster database has since the first migration (a restore refuses a file without them)
REQUIRED_TABLES = ("alembic_version", "incidents", "updates", "subscribers", "deliveries", "audit_log")


class BackupError(Exception):
    """A backup or restore refused or failed; the message says why, in plain words."""


@dataclass(frozen=True)
class Snapshot:
    """What a backup file holds: its migration and its row counts per table."""

    path: Path
    revision: str
    rows: dict[str, int]


def _known_revisions() -> tuple[set[str], set[str]]:
    """(every migration this code knows, the latest ones)."""
    from alembic.script import ScriptDirectory

    from broadcaster.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return {rev.revision for rev in script.walk_revisions()}, set(script.get_heads())


def row_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Rows in every table of a SQLite database (its own tables `sqlite_*` left out)."""
    names = [
        str(r[0])
        for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    ]
    return {name: int(conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]) for name in sorted(names)}  # noqa: S608 (names from sqlite_master)


def inspect(path: Path) -> Snapshot:
    """Check that `path` is an intact Broadcaster database at a known migration; what it holds."""
    if not path.is_file():
        raise BackupError(f"no file at {path}")
    try:
        conn = sqlite3.connect(path, timeout=30)
    except sqlite3.Error as exc:
        raise BackupError(f"{path} cannot be opened as a SQLite database ({exc})") from None
    try:
        try:
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"{path} is not a SQLite database ({exc})") from None
        if check != "ok":
            raise BackupError(f"{path} is damaged (SQLite says: {check})")
        rows = row_counts(conn)
        missing = [t for t in REQUIRED_TABLES if t not in rows]
        if missing:
            raise BackupError(f"{path} is not a Broadcaster database (no {', '.join(missing)} table)")
        revisions = [str(r[0]) for r in conn.execute("SELECT version_num FROM alembic_version")]
    finally:
        conn.close()
    known, _ = _known_revisions()
    if len(revisions) != 1 or revisions[0] not in known:
        found = ", ".join(revisions) or "none"
        raise BackupError(
            f"{path} is at migration {found}, which this version of Broadcaster does not know "
            "(a newer version made it?): restore it with that version"
        )
    return Snapshot(path, revisions[0], rows)


def _copy(source: sqlite3.Connection, dest: Path) -> None:
    """The online backup of `source` into a new file `dest`, written beside it and renamed into place."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    tmp.unlink(missing_ok=True)
    target = sqlite3.connect(tmp)
    try:
        source.backup(target)  # one step: a consistent snapshot even while others write
        target.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file (no -wal beside it)
    except BaseException:
        target.close()
        tmp.unlink(missing_ok=True)
        raise
    target.close()
    os.replace(tmp, dest)


def backup_sqlite(database: Path, dest: Path, *, force: bool = False) -> Snapshot:
    """Copy the live SQLite `database` to `dest` (refused when `dest` exists, unless `force`); the copy is
    checked before this returns."""
    if not database.is_file():
        raise BackupError(f"no database file at {database}: check DATABASE_URL")
    if dest.exists() and not force:
        raise BackupError(f"{dest} already exists: choose another name, or add --force to replace it")
    if dest.resolve() == database.resolve():
        raise BackupError("the backup cannot replace the database itself: choose another file")
    dest.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(database, timeout=30)
    try:
        _copy(source, dest)
    finally:
        source.close()
    return inspect(dest)


def restore_sqlite(backup: Path, database: Path, *, force: bool = False) -> Snapshot:
    """Replace (or create) the SQLite `database` with the content of `backup`, after checking the backup.
    An existing database is replaced only with `force`; stop the service first (it caches what it read)."""
    inspect(backup)
    if database.exists() and not force:
        raise BackupError(
            f"{database} already exists: stop the service, then add --force to replace it with the backup"
        )
    if database.exists() and database.resolve() == backup.resolve():
        raise BackupError("the backup file is the database itself: nothing to restore")
    database.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(backup)
    target = sqlite3.connect(database, timeout=30)
    try:
        # into the database's own connection: SQLite locks it and swaps every page (its -wal file included)
        source.backup(target)
    finally:
        source.close()
        target.close()
    return inspect(database)


def is_latest(snapshot: Snapshot) -> bool:
    """The snapshot is at the latest migration (else `broadcaster db upgrade` brings it there)."""
    return snapshot.revision in _known_revisions()[1]


def postgres_commands(database_url: str, path: str) -> tuple[str, str]:
    """The documented (pg_dump, pg_restore) command lines for a PostgreSQL DATABASE_URL; the password is left
    out (give it as PGPASSWORD or in ~/.pgpass)."""
    url = make_url(database_url)
    parts = []
    if url.host:
        parts.append(f"--host {url.host}")
    if url.port:
        parts.append(f"--port {url.port}")
    if url.username:
        parts.append(f"--username {url.username}")
    conn = " ".join(parts)
    db = url.database or ""
    dump = f"pg_dump --format=custom --no-owner {conn} --file {path} {db}".replace("  ", " ")
    restore = f"pg_restore --clean --if-exists --no-owner --single-transaction {conn} --dbname {db} {path}"
    return dump, restore.replace("  ", " ")
