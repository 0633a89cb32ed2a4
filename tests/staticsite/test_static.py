"""Static publishing: the public pages as files, written by the runner beside the worker, served by nginx, and the
banner read from the static copy by a real browser while the service is stopped. S3 against a local
S3-compatible server (moto)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from tests.public.servers import free_port, run_service
from tests.public.test_browser import host_page

from .nginx import run_nginx


def _wait_for(check: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


def _contains(path: Path, text: str) -> Callable[[], bool]:
    return lambda: path.exists() and text in path.read_text()


class Api:
    def __init__(self, base: str, key: str) -> None:
        self.base, self.headers = base, {"Authorization": f"Bearer {key}"}

    def post(self, path: str, json: dict | None = None) -> dict:
        resp = httpx.post(self.base + path, headers=self.headers, json=json)
        assert resp.status_code in (200, 201), resp.text
        return resp.json()

    def incident(self, title: str, body: str) -> tuple[int, int]:
        incident = self.post("/v1/incidents", {"title": title, "category": "it", "severity": "major"})["id"]
        update = self.post(f"/v1/incidents/{incident}/updates", {"body": body, "summary": body})["id"]
        self.post(f"/v1/updates/{update}/publish")
        return incident, update


@pytest.mark.browser
def test_directory_target_end_to_end_with_nginx_and_the_service_stopped(browser, db_url, make_key, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    with run_nginx(site, tmp_path / "nginx") as static:
        env = {"WORKER_IN_PROCESS": "true", "STATIC_TARGET": str(site), "STATIC_PUBLIC_URL": static}
        with run_service(db_url, tmp_path, **env) as service:
            api = Api(service, make_key("admin"))
            api.post("/v1/categories", {"slug": "it", "name": "IT", "channels": {"major": ["banner"]}})
            incident, update = api.incident("Payments are down", "Card payments fail; we are on it.")
            # the runner beside the in-process worker writes the files
            _wait_for(_contains(site / "status/index.html", "Payments are down"))
            _wait_for(_contains(site / "v1/banner.json", "Payments are down"))
            for rel in (
                f"status/incidents/{incident}/index.html",
                "status/history/index.html",
                "v1/feeds/rss.xml",
                "v1/feeds/atom.xml",
                "v1/feeds/cap.xml",
                f"v1/feeds/cap/{update}.xml",
                "v1/banner.html",
                "v1/banner.js",
                "v1/banner.fr.json",
                "favicon.ico",
                "favicon.svg",
            ):
                assert (site / rel).is_file(), rel
            assert not list(site.rglob(".tmp-*"))  # every write was renamed into place
            ready = httpx.get(service + "/readyz").json()
            assert ready["status"] == "ok" and ready["static_publishing"]["up_to_date"] is True
            # nginx serves them
            banner = httpx.get(static + "/v1/banner.json")
            assert banner.status_code == 200 and banner.headers["content-type"] == "application/json"
            assert banner.headers["access-control-allow-origin"] == "*"
            assert banner.json()["banners"][0]["title"] == "Payments are down"
            page = httpx.get(static + "/status/")
            assert page.status_code == 200 and "Payments are down" in page.text
            assert f'action="{service}/v1/subscribe"' in page.text  # the form still posts to the service
            assert "Payments are down" in httpx.get(f"{static}/status/incidents/{incident}/").text
            rss = httpx.get(static + "/v1/feeds/rss.xml").text
            assert "Payments are down" in rss and static + "/v1/feeds/rss.xml" in rss  # links to the static copy
            script = httpx.get(static + "/v1/banner.js").text
            assert f'"static":"{static}"' in script and f'"api":"{service}/v1/banner"' in script
        # the service is stopped
        with pytest.raises(httpx.HTTPError):
            httpx.get(service + "/healthz", timeout=2)

        # a website embedding the static banner.js still shows the banner
        page_gen = host_page(f"{static}/v1/banner.js", "")
        page_url = next(page_gen)
        try:
            page = browser.new_context().new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(page_url)
            shown = page.locator(f'[data-update-id="{update}"]')
            shown.wait_for(state="visible", timeout=15_000)
            assert "Payments are down" in shown.locator(".bc-title").inner_text()
            assert errors == []
        finally:
            next(page_gen, None)


@pytest.mark.browser
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_banner_js_falls_back_to_the_service_when_the_static_copy_fails(browser, db_url, make_key, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with run_service(db_url, tmp_path, STATIC_PUBLIC_URL=dead) as service:
        api = Api(service, make_key("admin"))
        api.post("/v1/categories", {"slug": "it", "name": "IT", "channels": {"major": ["banner"]}})
        _, update = api.incident("Email is slow", "Delays of up to an hour.")
        page_gen = host_page(f"{service}/v1/banner.js", "")
        page_url = next(page_gen)
        try:
            page = browser.new_context().new_page()
            page.goto(page_url)
            page.locator(f'[data-update-id="{update}"]').wait_for(state="visible", timeout=15_000)
        finally:
            next(page_gen, None)


def _publisher():
    from broadcaster.staticsite.runner import StaticPublisher

    return StaticPublisher()


def test_failures_never_block_publishing_are_shown_and_retried(client, admin, db_url, tmp_path, monkeypatch):
    from broadcaster.db import session_scope
    from broadcaster.models.integrations import StaticPublishState
    from broadcaster.settings import get_settings

    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the target's parent folder should be")
    monkeypatch.setenv("STATIC_TARGET", str(blocker / "site"))
    get_settings.cache_clear()
    client.post("/v1/categories", headers=admin, json={"slug": "it", "name": "IT", "channels": {"major": ["banner"]}})
    inc = client.post("/v1/incidents", headers=admin, json={"title": "VPN down", "category": "it", "severity": "major"})
    upd = client.post(f"/v1/incidents/{inc.json()['id']}/updates", headers=admin, json={"body": "Working on it."})
    published = client.post(f"/v1/updates/{upd.json()['id']}/publish", headers=admin)
    assert published.status_code == 200 and published.json()["update"]["state"] == "published"

    assert _publisher().run_once() is True
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "degraded" and body["static_publishing"]["failing"] is True
    assert (
        "NotADirectoryError" in body["static_publishing"]["last_error"]
        or "FileExistsError" in body["static_publishing"]["last_error"]
    )
    api = client.get("/v1/static-publishing", headers=admin).json()
    assert api["enabled"] and api["attempts"] == 1 and api["next_attempt_at"]
    # backing off: the first retry waits 0.5-1 s, which a loaded box can spend above; so it may try only once due
    due = datetime.fromisoformat(api["next_attempt_at"].replace("Z", "+00:00"))
    due = due if due.tzinfo else due.replace(tzinfo=UTC)
    if _publisher().run_once():
        assert datetime.now(UTC) >= due, "it retried before its backoff ended"

    blocker.unlink()
    with session_scope() as s:  # the backoff has passed
        s.get(StaticPublishState, str(blocker / "site")).next_attempt_at = None
    assert _publisher().run_once() is True
    assert "VPN down" in (blocker / "site/status/index.html").read_text()
    assert client.get("/readyz").json()["status"] == "ok"
    assert _publisher().run_once() is False  # up to date: nothing to do


def test_s3_target_against_a_local_s3_server(client, admin, db_url, monkeypatch):
    boto3 = pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    from broadcaster.settings import get_settings

    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        s3 = boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
        )
        s3.create_bucket(Bucket="status")
        for name, value in {
            "STATIC_TARGET": "s3://status/public",
            "STATIC_S3_ENDPOINT_URL": endpoint,
            "STATIC_S3_ACCESS_KEY_ID": "k",
            "STATIC_S3_SECRET_ACCESS_KEY": "s",
            "BANNER_MAX_AGE": "15",
        }.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        client.post(
            "/v1/categories", headers=admin, json={"slug": "it", "name": "IT", "channels": {"major": ["banner"]}}
        )
        inc = client.post(
            "/v1/incidents", headers=admin, json={"title": "DNS outage", "category": "it", "severity": "major"}
        )
        iid = inc.json()["id"]
        upd = client.post(f"/v1/incidents/{iid}/updates", headers=admin, json={"body": "Resolvers failing."})
        client.post(f"/v1/updates/{upd.json()['id']}/publish", headers=admin)

        assert _publisher().run_once() is True
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket="status", Prefix="public/")["Contents"]}
        assert {
            "public/status/index.html",
            "public/v1/banner.json",
            f"public/status/incidents/{iid}/index.html",
        } <= keys
        head = s3.head_object(Bucket="status", Key="public/v1/banner.json")
        assert head["ContentType"] == "application/json"
        assert head["CacheControl"].startswith("public, max-age=15")
        assert s3.head_object(Bucket="status", Key="public/status/index.html")["ContentType"].startswith("text/html")
        assert s3.head_object(Bucket="status", Key="public/v1/feeds/rss.xml")["ContentType"].startswith(
            "application/rss+xml"
        )
        banner = s3.get_object(Bucket="status", Key="public/v1/banner.json")["Body"].read()
        assert b"DNS outage" in banner
        assert client.get("/v1/static-publishing", headers=admin).json()["up_to_date"] is True

        # the incident is made private: its page is removed from the bucket at the next run
        client.patch(f"/v1/incidents/{iid}", headers=admin, json={"public": False})
        assert _publisher().run_once() is True
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket="status", Prefix="public/")["Contents"]}
        assert f"public/status/incidents/{iid}/index.html" not in keys
        assert b"DNS outage" not in s3.get_object(Bucket="status", Key="public/v1/banner.json")["Body"].read()
    finally:
        server.stop()
