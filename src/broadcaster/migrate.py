"""Apply and check Alembic migrations from code (`broadcaster db upgrade`, `serve` on start)."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from broadcaster.db import make_engine, normalize_url
from broadcaster.models import Base
from broadcaster.settings import bundled, get_settings


def alembic_config(url: str | None = None) -> Config:
    # The revisions: the checkout's migrations/ (alembic.ini beside it), or the wheel's bundled copy, which
    # needs no alembic.ini: the script location is all `upgrade` reads.
    cfg = Config()
    cfg.set_main_option("script_location", str(bundled("migrations")))
    cfg.attributes["url"] = normalize_url(url or get_settings().database_url)
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Bring the database at `url` (default: settings) up to `revision`."""
    command.upgrade(alembic_config(url), revision)


def pending_diff(url: str | None = None) -> list[Any]:
    """What autogenerate would still emit after migrating: empty when models and migrations agree."""
    engine = make_engine(normalize_url(url or get_settings().database_url))
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(ctx, Base.metadata))
    finally:
        engine.dispose()
