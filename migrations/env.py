"""Alembic environment: the URL comes from settings (or `config.attributes["url"]`)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from broadcaster.db import make_engine
from broadcaster.models import Base
from broadcaster.settings import get_settings

config = context.config
target_metadata = Base.metadata


def _sqlite_foreign_keys(connection: Connection, on: bool) -> None:
    """Turn SQLite's foreign keys off while migrating, on again after. Batch mode changes or drops a column by
    copying the table, dropping the old one and renaming the copy; with foreign keys on, that DROP deletes the
    rows of every table referencing it ON DELETE CASCADE (dropping `incidents.title_changed_at` emptied
    `updates`, `broadcasts`, `questions`...: tests/core/test_upgrade.py). The pragma is ignored inside a
    transaction, so it is set only on a connection that has none open."""
    if connection.dialect.name != "sqlite" or connection.in_transaction():
        return
    connection.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    connection.commit()


def _run(connection: Connection) -> None:
    _sqlite_foreign_keys(connection, on=False)
    try:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            compare_type=True,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    finally:
        _sqlite_foreign_keys(connection, on=True)


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.attributes.get("url") or get_settings().database_url
    engine = make_engine(url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    context.configure(url=get_settings().database_url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
