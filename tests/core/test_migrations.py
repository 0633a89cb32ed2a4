"""Models and migrations agree: autogenerate finds nothing to add after `upgrade head`."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import create_engine, text
from sqlalchemy import inspect as sa_inspect

NOW = datetime(2026, 12, 1, tzinfo=UTC).replace(tzinfo=None)


def normalize(url: str) -> str:
    from broadcaster.db import normalize_url

    return normalize_url(url)


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


def test_an_existing_map_becomes_an_unapproved_baseline_version(fresh_url):
    """0003: the map of an upgraded install is version 1, applied and approved by nobody (its automation does not
    count until a second person approves it); an empty map gets no version; downgrade drops the table."""
    from alembic import command

    from broadcaster.migrate import alembic_config, upgrade

    upgrade(fresh_url, "0002_role_grants")
    engine = create_engine(normalize(fresh_url))
    rule = {"name": "disk-full", "category": "outage", "publish": "auto", "two_person_rule": "automation_allowed"}
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO categories (slug, name, description, contact, channels, position, reach, created_at, "
                "updated_at) VALUES ('outage', 'Outage', '', :contact, :channels, 0, 'either', :now, :now)"
            ),
            {
                "contact": json.dumps({"phone": "+15551234567"}),
                "channels": json.dumps({"critical": ["sms"]}),
                "now": NOW,
            },
        )
        conn.execute(
            text("INSERT INTO alert_rules (section, name, position, spec) VALUES ('alert_rules', 'disk-full', 0, :s)"),
            {"s": json.dumps(rule)},
        )
    upgrade(fresh_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT number, state, approved_by, proposed_by, document, allowances FROM routing_map_versions")
        ).all()
    [(number, state, approved_by, proposed_by, document, allowances)] = rows
    document = json.loads(document) if isinstance(document, str) else document
    allowances = json.loads(allowances) if isinstance(allowances, str) else allowances
    assert (number, state, approved_by, proposed_by, allowances) == (1, "applied", None, "migration", {})
    assert document["categories"][0]["contact"] == {"phone": "+15551234567"}
    assert document["alert_rules"] == [rule] and document["webhook_mappings"] == []

    command.downgrade(alembic_config(fresh_url), "0002_role_grants")
    with engine.connect() as conn:
        assert "routing_map_versions" not in sa_inspect(conn).get_table_names()
        conn.execute(text("DELETE FROM alert_rules"))
        conn.execute(text("DELETE FROM categories"))
        conn.commit()
    upgrade(fresh_url)  # an empty map: no baseline
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM routing_map_versions")).scalar() == 0
    engine.dispose()
