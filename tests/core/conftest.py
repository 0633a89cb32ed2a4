"""Fixtures for the core API tests (categories, routing map, incidents, updates, alerts, keys)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .helpers import row_counts
from .people import live, people, setup_keys  # noqa: F401  (fixtures: one person against the gate)


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (not migrated): a SQLite file, or a new PostgreSQL database dropped afterwards (for the
    migration and upgrade tests, which start below head)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/old.db"
        return
    pg = os.environ.get("BROADCASTER_TEST_POSTGRES_URL")
    if not pg:
        if os.environ.get("CI") == "true":
            pytest.fail("BROADCASTER_TEST_POSTGRES_URL must be set in CI")
        pytest.skip("BROADCASTER_TEST_POSTGRES_URL is not set")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from broadcaster.db import normalize_url

    admin = create_engine(normalize_url(pg), isolation_level="AUTOCOMMIT")
    name = f"bc_mig_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(normalize_url(pg)).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def unchanged(db_url: str) -> Callable[[], Any]:
    """`with unchanged(): ...` asserts no table gained or lost rows inside the block."""
    from contextlib import contextmanager

    @contextmanager
    def check() -> Iterator[None]:
        before = row_counts()
        yield
        after = row_counts()
        changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
        assert not changed, f"rows changed (before, after): {changed}"

    return check


@pytest.fixture
def safe_client(app) -> Iterator:
    """A client that returns 500 responses instead of raising, to prove none happen."""
    from fastapi.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def make_incident(client, admin: dict[str, str], emergency_category: dict) -> Callable[..., dict]:
    """Create an incident through the API (defaults: emergency, major); returns the JSON."""

    def make(**fields: Any) -> dict:
        body = {"title": "Water main break", "category": "emergency", "severity": "major"} | fields
        resp = client.post("/v1/incidents", headers=admin, json=body)
        assert resp.status_code == 201, resp.text
        return resp.json()

    return make


@pytest.fixture
def make_update(client, admin: dict[str, str]) -> Callable[..., dict]:
    """Add a draft update to an incident; returns the JSON."""

    def make(incident_id: int, **fields: Any) -> dict:
        body = {"body": "Crews are on site.", "summary": "Crews on site"} | fields
        resp = client.post(f"/v1/incidents/{incident_id}/updates", headers=admin, json=body)
        assert resp.status_code == 201, resp.text
        return resp.json()

    return make
