"""Deliveries of the same new group at the same moment make one incident (unique key + insert-or-get), on
SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from . import payloads
from .conftest import bearer


def test_concurrent_deliveries_of_one_group_make_one_incident(client, set_map, integration):
    from broadcaster.db import session_scope
    from broadcaster.models import Incident, Update
    from broadcaster.models.integrations import AlertGroup

    set_map()
    token = integration("prometheus", "alertmanager")["secret"]
    n = 8
    barrier = threading.Barrier(n)
    groups = [payloads.alertmanager(group="DatabaseDown", service=f"db-{i % 2}") for i in range(n)]

    def post(i: int) -> dict:
        barrier.wait()
        resp = client.post("/v1/inbound/alertmanager/prometheus", json=groups[i], headers=bearer(token))
        assert resp.status_code == 200, resp.text
        return resp.json()["results"][0]

    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(post, range(n)))
    # one group (groupKey names alertname and severity only) whose content differs between the deliveries
    # (the service label): created once, the other content is a change
    created = [r for r in results if r["action"] == "created"]
    assert len(created) == 1, results
    assert {r["incident_id"] for r in results} == {created[0]["incident_id"]}
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Incident)) == 1
        assert s.scalar(select(func.count()).select_from(AlertGroup)) == 1
        # one public update: the other content (the other service) is deferred by the flapping limit
        assert s.scalar(select(func.count()).select_from(Update)) == 1


def test_concurrent_identical_repeats(client, set_map, integration):
    from broadcaster.db import session_scope
    from broadcaster.models import Incident, Update

    set_map()
    token = integration("prometheus", "alertmanager")["secret"]
    n = 8
    barrier = threading.Barrier(n)
    body = payloads.alertmanager()

    def post(_: int) -> str:
        barrier.wait()
        resp = client.post("/v1/inbound/alertmanager/prometheus", json=body, headers=bearer(token))
        assert resp.status_code == 200, resp.text
        return resp.json()["results"][0]["action"]

    with ThreadPoolExecutor(n) as pool:
        actions = sorted(pool.map(post, range(n)))
    assert actions == ["created"] + ["repeat"] * (n - 1)
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Incident)) == 1
        assert s.scalar(select(func.count()).select_from(Update)) == 1
