"""Helpers for delivery-engine tests: the in-memory adapters, subscribers, publishing, draining the queue."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.approving import confirm


@pytest.fixture
def memory(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Enable the memory adapters (fast retries) and reset their recordings."""
    from broadcaster.channels.registry import adapter_classes
    from broadcaster.delivery.testing import MemoryAdapter
    from broadcaster.settings import get_settings

    monkeypatch.setenv("MEMORY_ADAPTER_ENABLED", "true")
    monkeypatch.setenv("RETRY_BASE_SECONDS", "0.01")
    monkeypatch.setenv("RETRY_MAX_SECONDS", "0.05")
    monkeypatch.setenv("RETRY_MAX_ATTEMPTS", "4")
    monkeypatch.setenv("WORKER_POLL_SECONDS", "0.05")
    monkeypatch.setenv("WORKER_LOOKUP_DELAY_SECONDS", "0.05")
    get_settings.cache_clear()
    adapter_classes.cache_clear()
    MemoryAdapter.reset()
    yield MemoryAdapter
    MemoryAdapter.reset()


def run_until_idle(max_seconds: float = 30) -> Any:
    """Run a worker until nothing is planning, pending or in flight; returns the worker."""
    from broadcaster.delivery.worker import Worker
    from broadcaster.settings import get_settings

    worker = Worker(get_settings())
    asyncio.run(worker.run(until_idle=True, max_seconds=max_seconds))
    return worker


@pytest.fixture
def drain(db_url: str) -> Callable[..., Any]:
    return run_until_idle


@pytest.fixture
def add_subscribers(db_url: str) -> Callable[..., list[int]]:
    """Insert subscribers directly: `add_subscribers(n, categories=, tags=, services=, **fields)`; phones
    +1555000NNNN, emails sNNNN@example.org. Categories and services named that do not exist yet are created."""
    from sqlalchemy import select

    from broadcaster.db import session_scope
    from broadcaster.models import Category
    from broadcaster.models.delivery import Subscriber
    from broadcaster.models.services import Service
    from broadcaster.subscribers import memberships

    counter = {"n": 0}

    def add(
        n: int = 1,
        *,
        categories: list[str] | None = None,
        tags: list[str] | None = None,
        services: list[str] | None = None,
        **fields: Any,
    ):
        ids = []
        choices = {"categories": categories or [], "tags": tags or [], "services": services or []}
        with session_scope() as session:
            for model, slugs in ((Category, categories or []), (Service, services or [])):
                known = set(session.scalars(select(model.slug).where(model.slug.in_(slugs))))
                for slug in slugs:
                    if slug not in known:
                        session.add(model(slug=slug, name=slug.title()))
            session.flush()
            for _ in range(n):
                counter["n"] += 1
                i = counter["n"]
                values = {
                    "phone": f"+1555000{i:04d}",
                    "email": f"s{i:04d}@example.org",
                    "email_confirmed": True,
                    "all_categories": memberships.everything(choices),
                } | fields
                row = Subscriber(**values)
                session.add(row)
                session.flush()
                ids.append(row.id)
            memberships.add(session, {i: choices for i in ids})
        return ids

    return add


@pytest.fixture
def publish(client, admin) -> Callable[..., dict]:
    """Create an incident in `emergency` and publish one update; returns the publish response JSON."""

    def do(*, channels: list[str] | None = None, severity: str = "major", **update: Any) -> dict:
        inc = client.post(
            "/v1/incidents",
            headers=admin,
            json={"title": "Water outage", "category": "emergency", "severity": severity},
        )
        assert inc.status_code == 201, inc.text
        body = {"body": "Water is off in the north district.", "summary": "Water off (north)"} | update
        if channels is not None:
            body["channels"] = channels
        upd = client.post(f"/v1/incidents/{inc.json()['id']}/updates", headers=admin, json=body)
        assert upd.status_code == 201, upd.text
        pub = client.post(f"/v1/updates/{upd.json()['id']}/publish", json=confirm(upd.json()["id"]), headers=admin)
        assert pub.status_code == 200, pub.text
        return pub.json()

    return do
