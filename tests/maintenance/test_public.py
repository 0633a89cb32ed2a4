"""A window on the public surfaces: the status page's maintenance section, the feeds, and the banner while it
runs (info level), each refreshed as the window is planned, starts and ends (the public caches invalidated)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from lxml import etree

from .helpers import T0, window_body


def _runner(db_url: str) -> Any:
    from broadcaster.db import make_engine
    from broadcaster.maintenance.runner import MaintenanceRunner

    return MaintenanceRunner(engine=make_engine(db_url), poll=0.05)


def _section(html: str) -> str:
    """The status page's maintenance section, or "" when it has none."""
    start = html.find('id="scheduled-maintenance"')
    return "" if start < 0 else html[start : html.index("</section>", start)]


def _rss_titles(client: Any) -> list[str]:
    resp = client.get("/v1/feeds/rss.xml")
    assert resp.status_code == 200
    return [t.text or "" for t in etree.fromstring(resp.content).iterfind("channel/item/title")]


def _banners(client: Any) -> list[dict[str, Any]]:
    resp = client.get("/v1/banner")
    assert resp.status_code == 200, resp.text
    return list(resp.json()["banners"])


def test_status_page_feeds_and_banner_follow_the_window(client, admin, world, clock_at, db_url, monkeypatch):
    from broadcaster.settings import get_settings

    monkeypatch.setenv("SITE_TIMEZONE", "Europe/Paris")
    get_settings.cache_clear()
    # warm every cache before the window exists: each must be invalidated by what follows
    assert _section(client.get("/status").text) == ""
    assert _rss_titles(client) == []
    assert _banners(client) == []

    wid = client.post("/v1/maintenance", headers=admin, json=window_body()).json()["id"]
    section = _section(client.get("/status").text)
    assert "Database upgrade" in section and "scheduled" in section
    assert "Thu 10 Dec 2026 13:00 - 14:00 UTC (Thu 10 Dec 2026 14:00 - 15:00 CET)" in section
    assert "Public API" in section and "Website" in section

    runner = _runner(db_url)
    assert runner.run_once()["sent"] == 1  # created
    assert _rss_titles(client) == ["Maintenance: Database upgrade"]
    assert _banners(client) == []  # planned, not running: no banner
    page = client.get("/status").text
    assert (
        'id="current"' in page
        and "Maintenance: Database upgrade" not in page.split('id="current"')[1].split("</section>")[0]
    )

    summary = client.get("/v1/public/summary.json").json()
    assert summary["incidents"] == []
    [planned] = summary["scheduled_maintenances"]
    assert planned["name"] == "Database upgrade" and planned["status"] == "scheduled"
    assert planned["scheduled_for"] == "2026-12-10T13:00:00Z" and planned["scheduled_until"] == "2026-12-10T14:00:00Z"
    assert [c["id"] for c in planned["components"]] == ["api", "web"] and len(planned["incident_updates"]) == 1

    clock_at(T0 + timedelta(hours=5))
    assert runner.run_once() == {"sent": 1, "skipped": 1, "failed": 0}  # a stale reminder; the start
    banners = _banners(client)
    assert len(banners) == 1
    assert banners[0]["severity"] == "info" and banners[0]["title"] == "Maintenance: Database upgrade"
    assert "Maintenance in progress" in banners[0]["text"]
    assert "in progress" in _section(client.get("/status").text)
    assert len(_rss_titles(client)) == 2
    summary = client.get("/v1/public/summary.json").json()
    assert summary["incidents"] == []  # a running window is a maintenance, not an incident
    assert [m["status"] for m in summary["scheduled_maintenances"]] == ["in_progress"]
    assert summary["status"] == {"indicator": "none", "description": "Service Under Maintenance"}

    clock_at(T0 + timedelta(hours=6))
    assert runner.run_once()["sent"] == 1
    assert _banners(client) == []
    page = client.get("/status").text
    assert _section(page) == ""
    assert "Maintenance: Database upgrade" in page  # now among the recently resolved
    assert _rss_titles(client)[0] == "Maintenance: Database upgrade (resolved)"
    assert client.get("/v1/public/summary.json").json()["scheduled_maintenances"] == []
    incident = client.get(f"/v1/maintenance/{wid}", headers=admin).json()["incident_id"]
    assert "Maintenance completed" in client.get(f"/status/incidents/{incident}").text


def test_a_cancelled_window_leaves_the_status_page(client, admin, world, clock_at):
    wid = client.post("/v1/maintenance", headers=admin, json=window_body()).json()["id"]
    assert "Database upgrade" in _section(client.get("/status").text)
    assert client.post(f"/v1/maintenance/{wid}/cancel", headers=admin).status_code == 200
    assert _section(client.get("/status").text) == ""
