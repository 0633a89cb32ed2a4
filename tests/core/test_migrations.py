"""Models and migrations agree: autogenerate finds nothing to add after `upgrade head`."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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


VERSIONS = Path(__file__).resolve().parents[2] / "migrations" / "versions"
#: sha256 (first 16 hex digits, line endings as LF) of every revision that has landed on main: a landed revision
#: is never edited, since installs have already run it (docs/operations.md, "Upgrading"). Add a line for a new
#: revision when it lands; never change one.
LANDED = {
    "0001_initial.py": "5bec8361dbcf4267",
    "0002_role_grants.py": "4de02f08bf14664e",
    "0003_maintenance_approval.py": "e59c19686b3a3615",
    "0004_content_binding.py": "b00ecf47e8ea354b",
    "0005_change_requests.py": "ad96f78750d0a8f2",
    "0006_routing_versions.py": "3043ad0486b87dd1",
    "0007_integration_hmac_headers.py": "2c8f1fa541512e5c",
    "0008_approval_notify.py": "bed8052b33a54af6",
    "0009_cap_messages.py": "d98f208e98e47bf9",
    "0010_incident_title_changed_at.py": "95dcf9e8be56c121",
    "0011_send_hold.py": "658f7b10e609c102",
}


def _scripts() -> list[Any]:
    from alembic.script import ScriptDirectory

    from broadcaster.migrate import alembic_config

    return list(ScriptDirectory.from_config(alembic_config("sqlite://")).walk_revisions())


def test_the_chain_is_one_line_in_file_order():
    """One base, one head; files numbered 0001, 0002... without gaps; each revision's id is its file name (or
    the file's number) and its down_revision the previous file's revision; no branches or dependencies."""
    from alembic.script import ScriptDirectory

    from broadcaster.migrate import alembic_config

    directory = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(directory.get_heads()) == 1, f"several heads: {directory.get_heads()} (re-chain the new revision)"
    assert directory.get_bases() == ["0001"]
    by_file = {Path(s.path).name: s for s in _scripts()}
    files = sorted(p.name for p in VERSIONS.glob("*.py"))
    assert sorted(by_file) == files, "a file in migrations/versions/ is not a revision"
    previous = None
    for number, name in enumerate(files, start=1):
        script, stem = by_file[name], name.removesuffix(".py")
        assert stem[:4] == f"{number:04d}" and stem[4:5] == "_", f"{name}: expected number {number:04d}"
        assert script.revision in (stem, stem[:4]), f"{name}: revision id {script.revision!r}"
        assert script.down_revision == previous, f"{name}: down_revision {script.down_revision!r}, not {previous!r}"
        assert not script.branch_labels and not script.dependencies, f"{name}: branch labels or depends_on"
        previous = script.revision


def test_landed_revisions_are_never_edited():
    """A revision that has landed keeps its bytes: a change of schema is a new revision."""
    files = {p.name: p for p in VERSIONS.glob("*.py")}
    missing = sorted(set(LANDED) - set(files))
    assert not missing, f"landed revisions deleted or renamed: {missing}"
    edited = [
        name
        for name, digest in LANDED.items()
        if hashlib.sha256(files[name].read_bytes().replace(b"\r\n", b"\n")).hexdigest()[:16] != digest
    ]
    assert not edited, f"landed revisions edited (write a new revision instead): {edited}"


def test_every_revision_can_be_downgraded():
    """Each revision's downgrade() does something (tests/core/test_upgrade.py runs them all on real data)."""
    import ast

    for script in _scripts():
        if script.revision == "0001":
            continue
        tree = ast.parse(Path(script.path).read_text())
        [down] = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "downgrade"]
        assert not all(isinstance(s, ast.Pass | ast.Expr) for s in down.body), f"{script.revision}: empty downgrade"
