"""Shared fixtures: every test that takes `db_url` (directly or through `app`/`client`) runs on SQLite
and, when BROADCASTER_TEST_POSTGRES_URL is set, on PostgreSQL too (a private database per run)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from broadcaster.fakes.oidc import FakeOIDC
    from broadcaster.fakes.testing import RunningFake

for var in ("TWILIO_REGION", "TWILIO_EDGE", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
    os.environ.pop(var, None)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

PG_URL = os.environ.get("BROADCASTER_TEST_POSTGRES_URL")
IN_CI = os.environ.get("CI") == "true"
BACKENDS = ["sqlite", "postgres"]


def _reset_caches() -> None:
    from broadcaster.channels.registry import adapter_classes
    from broadcaster.db import reset_engine
    from broadcaster.settings import get_settings

    get_settings.cache_clear()
    adapter_classes.cache_clear()
    reset_engine()
    from broadcaster.throttle import reset_limits

    reset_limits()  # the subscribe rate limits count per process (memory storage)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file copied for each test (migrating once is faster than per test)."""
    from broadcaster import migrate

    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A private PostgreSQL database for this pytest run, migrated once, dropped at the end."""
    if not PG_URL:
        if IN_CI:
            pytest.fail("BROADCASTER_TEST_POSTGRES_URL must be set in CI")
        pytest.skip("BROADCASTER_TEST_POSTGRES_URL is not set")
    from broadcaster import migrate
    from broadcaster.db import normalize_url

    admin_url = normalize_url(PG_URL)
    name = f"bc_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    yield url
    _reset_caches()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate_all(url: str) -> None:
    from broadcaster.models import Base

    engine = create_engine(url)
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A migrated, empty database (SQLite file or the run's PostgreSQL database) wired into settings."""
    if request.param == "sqlite":
        path = tmp_path / "broadcaster.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_database")
        _truncate_all(url)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("PUBLIC_URL", "http://testserver")
    monkeypatch.setenv("WORKER_IN_PROCESS", "false")
    monkeypatch.setenv("SEND_HOLD_SECONDS", "0")  # the send hold's own tests set it (tests/delivery/test_hold.py)
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's checkout
    _reset_caches()
    yield url
    _reset_caches()


@pytest.fixture
def is_postgres(db_url: str) -> bool:
    return db_url.startswith("postgresql")


@pytest.fixture
def app(db_url: str):
    from broadcaster.app import create_app

    return create_app(run_worker=False)


@pytest.fixture
def client(app) -> Iterator:
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


@pytest.fixture
def make_key(db_url: str) -> Callable[..., str]:
    """Create an API key with the given scopes; returns the plaintext."""
    from broadcaster.db import session_scope
    from broadcaster.security import create_key

    def make(*scopes: str, name: str | None = None) -> str:
        with session_scope() as session:
            _, plaintext = create_key(session, name or f"test-{'-'.join(scopes)}-{uuid.uuid4().hex[:4]}", list(scopes))
        return plaintext

    return make


@pytest.fixture
def auth(make_key: Callable[..., str]) -> Callable[..., dict[str, str]]:
    """`auth("write")` -> headers carrying a fresh key with those scopes."""

    def headers(*scopes: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {make_key(*scopes)}"}

    return headers


@pytest.fixture
def admin(auth: Callable[..., dict[str, str]]) -> dict[str, str]:
    return auth("admin")


@pytest.fixture
def emergency_category(client, admin: dict[str, str]) -> dict:
    """A routing-map entry: emergency -> sms, voice, email, social, banner; contact by phone."""
    resp = client.post(
        "/v1/categories",
        headers=admin,
        json={
            "slug": "emergency",
            "name": "Emergency",
            "contact": {"phone": "+15551234567", "opening_hours": "24/7"},
            "channels": {
                "critical": ["sms", "voice", "email", "social", "banner"],
                "major": ["sms", "email", "banner"],
            },
        },
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


@pytest.fixture
def technical_category(client, admin: dict[str, str]) -> dict:
    """technical-issue -> banner, social; contact by live chat."""
    resp = client.post(
        "/v1/categories",
        headers=admin,
        json={
            "slug": "technical-issue",
            "name": "Technical issue",
            "contact": {"live_chat_url": "https://chat.example.org/", "opening_hours": "Mon-Fri 8-20"},
            "channels": {"major": ["banner", "social"], "minor": ["banner"]},
            "position": 5,
        },
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


@pytest.fixture(scope="module")
def fake_server() -> Iterator[RunningFake]:
    """The fake provider server (real HTTP on a free port), one per test module."""
    from broadcaster.fakes.testing import running_fake

    with running_fake() as fake:
        yield fake


@pytest.fixture
def fake(fake_server: RunningFake) -> Iterator[RunningFake]:
    """The module's fake provider server, with recorded requests and injected faults cleared."""
    fake_server.reset()
    yield fake_server
    fake_server.reset()


@pytest.fixture(scope="module")
def oidc_server() -> Iterator[FakeOIDC]:
    """The test OpenID provider (real HTTP on a free port; issuer = its URL), one per test module."""
    from broadcaster.fakes.oidc import running_oidc

    with running_oidc() as provider:
        yield provider


@pytest.fixture
def oidc(oidc_server: FakeOIDC, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOIDC]:
    """The module's OpenID provider, its user and recorded requests reset, configured as the service's SSO
    (OIDC_* settings; groups comms-editors/comms-approvers/it-admins map to editor/approver/admin)."""
    from broadcaster.fakes.oidc import TestUser

    oidc_server.user = TestUser()
    oidc_server.interactive = False
    oidc_server.requests.clear()
    for name, value in oidc_server.env().items():
        monkeypatch.setenv(name, value)
    from broadcaster.settings import get_settings

    get_settings.cache_clear()
    yield oidc_server


#: Debian's Chromium, driven by Playwright's Python package (no browser downloads)
CHROMIUM = "/usr/bin/chromium"
#: flags for a closed network (background services would try to reach Google's hosts) and for root
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium for the browser tests (fails in CI when the Debian package is missing)."""
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
        pytest.skip(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the PostgreSQL variant of `sqlite_only` tests (browser walks of the console and pages: what
    they check is the UI; the API and worker code they drive is tested on both backends). Keeps CI short."""
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and callspec.params.get("db_url") == "postgres"
        (drop if on_postgres and item.get_closest_marker("sqlite_only") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
