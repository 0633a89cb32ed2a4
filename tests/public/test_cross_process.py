"""Invalidation across processes: NOTIFY on PostgreSQL, polling the version row on SQLite."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from tests.public.servers import run_service, wait_for


@pytest.fixture
def quick_check(db_url, monkeypatch):
    monkeypatch.setenv("BANNER_CHECK_SECONDS", "0.1")
    from broadcaster.settings import get_settings

    get_settings.cache_clear()


def test_change_made_elsewhere_reaches_this_process(quick_check, fast_client, publish, db_url, is_postgres):
    """Another process (here: a raw connection, no ORM hooks) edits and bumps the version."""
    update = publish("Before")
    assert fast_client.get("/v1/banner").json()["banners"][0]["title"] == "Before"
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE incidents SET title = 'After' WHERE id = :id"), {"id": update["incident_id"]})
            version = conn.execute(
                text("UPDATE public_state SET version = version + 1 WHERE id = 1 RETURNING version")
            ).scalar_one()
            if is_postgres:
                conn.execute(text("SELECT pg_notify('broadcaster_public', :v)"), {"v": str(version)})
    finally:
        engine.dispose()
    # PostgreSQL: the LISTEN connection (its safety re-check only runs every 30 s); SQLite: the 0.1 s poll
    wait_for(lambda: fast_client.get("/v1/banner").json()["banners"][0]["title"] == "After", timeout=10)


def test_two_service_processes(db_url, make_key, tmp_path: Path):
    """Publish through process A; process B (which already cached the empty banner) shows it."""
    headers = {"Authorization": f"Bearer {make_key('admin')}"}
    same = {"PUBLIC_URL": "https://status.example.org"}
    with run_service(db_url, tmp_path, **same) as a, run_service(db_url, tmp_path, **same) as b:
        assert httpx.get(b + "/v1/banner").json()["banners"] == []
        etag_b = httpx.get(b + "/v1/banner").headers["etag"]
        resp = httpx.post(
            a + "/v1/categories",
            headers=headers,
            json={"slug": "it", "name": "IT", "contact": {"email": "it@example.org"}},
        )
        assert resp.status_code == 201, resp.text
        resp = httpx.post(
            a + "/v1/incidents",
            headers=headers,
            json={"title": "VPN down", "category": "it", "severity": "major", "update": {"body": "VPN is down."}},
        )
        assert resp.status_code == 201, resp.text
        update_id = resp.json()["updates"][0]["id"]
        resp = httpx.post(f"{a}/v1/updates/{update_id}/publish", headers=headers)
        assert resp.status_code == 200, resp.text

        def shown_on_b():
            got = httpx.get(b + "/v1/banner", headers={"If-None-Match": etag_b})
            return got.status_code == 200 and [x["title"] for x in got.json()["banners"]] == ["VPN down"]

        wait_for(shown_on_b, timeout=15)
        # both processes render identical bytes, so their ETags agree (a CDN can mix them)
        assert httpx.get(a + "/v1/banner").headers["etag"] == httpx.get(b + "/v1/banner").headers["etag"]
