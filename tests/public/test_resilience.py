"""Database trouble: the banner keeps serving the last good bytes; with nothing loaded it is a clean 503."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from tests.public.servers import wait_for

from broadcaster.public.cache import get_cache


def test_stale_banner_served_while_the_database_fails(fast_client, publish, db_url):
    update = publish("Still shown")
    good = fast_client.get("/v1/banner")
    assert good.json()["banners"][0]["id"] == update["id"]
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE incidents RENAME TO incidents_away"))
        get_cache().invalidate()  # as a NOTIFY or the poll would
        during = fast_client.get("/v1/banner")
        assert during.status_code == 200
        assert during.content == good.content
        assert during.headers["etag"] == good.headers["etag"]
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE incidents_away RENAME TO incidents"))
            conn.execute(text("UPDATE incidents SET title = 'Recovered'"))
        get_cache().invalidate()
        wait_for(lambda: fast_client.get("/v1/banner").json()["banners"][0]["title"] == "Recovered", timeout=10)
    finally:
        engine.dispose()


def test_unavailable_before_the_first_load_is_a_503(tmp_path: Path, monkeypatch):
    """A database without the tables (not migrated): JSON 503 in the usual error shape, no crash."""
    from broadcaster.app import create_app
    from broadcaster.db import reset_engine
    from broadcaster.public.fastpath import PublicFastPath
    from broadcaster.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/empty.db")
    monkeypatch.setenv("WORKER_IN_PROCESS", "false")
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    reset_engine()
    try:
        with TestClient(PublicFastPath(create_app(run_worker=False))) as client:
            resp = client.get("/v1/banner")
            assert resp.status_code == 503
            assert resp.json()["error"] == "unavailable"
            assert resp.headers["cache-control"] == "no-store"
            assert client.get("/v1/banner.js").status_code == 200  # needs no database
    finally:
        get_settings.cache_clear()
        reset_engine()
