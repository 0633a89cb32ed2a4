"""Models and migrations agree: autogenerate finds nothing to add after `upgrade head`."""

from __future__ import annotations


def test_models_match_migrations(db_url):
    from broadcaster.migrate import pending_diff

    assert pending_diff(db_url) == []


def test_upgrade_is_repeatable(db_url):
    from broadcaster.migrate import upgrade

    upgrade(db_url)  # already at head: a no-op, not an error
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    with engine.connect() as conn:
        heads = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    engine.dispose()
    assert len(heads) == 1
