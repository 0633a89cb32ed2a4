"""Secrets are never logged: every adapter through its real SDK to the fake provider server at DEBUG (with
the provider HTTP loggers on, which print request headers and bodies), a `broadcaster worker` process's
stderr, uvicorn's access log, and what the API and reprs show. Without `RedactSecrets` these tests fail
(SendGrid's client logs `Authorization: Bearer <key>`, e-mail bodies carry signed unsubscribe links)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import select

from broadcaster import logs
from broadcaster.fakes.credentials import CREDENTIALS
from broadcaster.fakes.testing import RunningFake

SECRET_KEY = "signing-key-for-links-0123456789"
DB_PASSWORD = "db-password-4711"
API_KEY = "bk_0a1b2c3d_" + "S" * 43


def known_secrets(fake: RunningFake) -> dict[str, str]:
    """Every secret the tests configure, and the encodings a library would log it in."""
    c, env = CREDENTIALS, fake.env()
    found = {
        "TWILIO_AUTH_TOKEN": c.twilio_token,
        "Twilio Basic": base64.b64encode(f"{c.twilio_sid}:{c.twilio_token}".encode()).decode(),
        "SENDGRID_API_KEY": c.sendgrid_key,
        "X_CONSUMER_SECRET": c.x_consumer_secret,
        "X_ACCESS_TOKEN_SECRET": c.x_access_secret,
        "X signing key": f"{quote(c.x_consumer_secret, safe='')}&{quote(c.x_access_secret, safe='')}",
        "MASTODON_ACCESS_TOKEN": c.mastodon_token,
        "WEBHOOK_SECRET": env["WEBHOOK_SECRET"],
        "SECRET_KEY": SECRET_KEY,
    }
    if getattr(c, "bluesky_password", None):
        found["BLUESKY_APP_PASSWORD"] = c.bluesky_password
    return found


def sent_credentials(fake: RunningFake) -> dict[str, str]:
    """The Bearer/Basic credentials the fake received (session tokens such as Bluesky's JWTs included)."""
    found = {}
    for req in fake.requests():
        scheme, _, credential = req.headers.get("authorization", "").partition(" ")
        if scheme in ("Bearer", "Basic") and credential:
            found[f"{req.provider} {scheme} credential"] = credential
    return found


def leaks(text: str, secrets: dict[str, str]) -> list[str]:
    return [name for name, value in secrets.items() if value in text]


@pytest.fixture
def root_log() -> Iterator[io.StringIO]:
    """Everything logged at DEBUG, through a root handler as `setup_logging` installs it; undone afterwards."""
    root = logging.getLogger()
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter(logs.FORMAT))
    levels = {name: logging.getLogger(name).level for name in logs.NOISY_LOGGERS}
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield buffer
    root.removeHandler(handler)
    root.setLevel(old_level)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    for h in [*root.handlers, handler, logging.lastResort]:
        for f in [f for f in (h.filters if h else []) if isinstance(f, logs.RedactSecrets)]:
            h.removeFilter(f)  # type: ignore[union-attr]


def _configure(fake: RunningFake, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **extra: str):
    from broadcaster.channels.registry import adapter_classes
    from broadcaster.settings import get_settings

    monkeypatch.chdir(tmp_path)
    for key, value in (fake.env() | extra).items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    adapter_classes.cache_clear()
    return get_settings()


@pytest.mark.parametrize("provider_http", [True, False], ids=["provider-http-on", "provider-http-off"])
async def test_no_secret_in_debug_logs_of_any_adapter(fake, root_log, monkeypatch, tmp_path, provider_http):
    from broadcaster.channels.base import Message, Recipient
    from broadcaster.channels.registry import configured_adapters
    from broadcaster.settings import get_settings
    from broadcaster.subscribers import tokens

    settings = _configure(
        fake,
        monkeypatch,
        tmp_path,
        SECRET_KEY=SECRET_KEY,
        LOG_LEVEL="DEBUG",
        LOG_PROVIDER_HTTP=str(provider_http).lower(),
        DATABASE_URL=f"postgresql+psycopg://broadcaster:{DB_PASSWORD}@127.0.0.1:1/never",
    )
    logs.install(settings)
    unsubscribe = tokens.unsubscribe_url(7)
    token = unsubscribe.split("token=", 1)[1]
    secrets = known_secrets(fake) | {"DB password": DB_PASSWORD, "API key": API_KEY, "unsubscribe token": token}
    log = logging.getLogger("broadcaster.test")

    adapters = configured_adapters(settings)
    names = {a.name for a in adapters}
    assert {"twilio-sms", "twilio-voice", "sendgrid", "x", "mastodon", "webhook"} <= names
    try:
        for adapter in adapters:
            log.debug("adapter %r: %s", adapter, adapter.describe())
            address = {"sms": "+15550001111", "voice": "+15550001111", "email": "sub@example.org"}.get(
                adapter.kind.value, (adapter.broadcast_addresses() or ["-"])[0]
            )
            recipient = Recipient("d1", address, idempotency_key="k1", variables={"unsubscribe_url": unsubscribe})
            [result] = await adapter.send(Message(text="Water off", subject="Water"), [recipient])
            assert result.ok, (adapter.name, result)
            assert (await adapter.check()).ok, adapter.name
    finally:
        await asyncio.gather(*(a.aclose() for a in adapters))
    # what the service itself might log: settings, an API key in a header dump, an exception's text
    log.debug("settings: %r", get_settings())
    log.info("request headers: %s", {"authorization": f"Bearer {API_KEY}", "x-api-key": API_KEY})
    try:
        raise RuntimeError(f"provider rejected {CREDENTIALS.sendgrid_key} for {unsubscribe}")
    except RuntimeError:
        log.exception("send failed")

    output = root_log.getvalue()
    secrets |= sent_credentials(fake)
    assert {"twilio Basic credential", "sendgrid Bearer credential", "mastodon Bearer credential"} <= set(secrets)
    assert "bluesky" not in names or "bluesky Bearer credential" in secrets  # its session JWT
    assert leaks(output, secrets) == []
    assert "bk_0a1b2c3d_****" in output  # the key's lookup prefix stays, to tell keys apart
    assert "send failed" in output and "RuntimeError: provider rejected ****" in output
    sdk_lines = "python_http_client" in output and "Authorization': 'Bearer ****'" in output
    assert sdk_lines is provider_http  # on: the SDK did log its headers (redacted); off: held at WARNING


def test_uvicorn_access_log_hides_link_tokens(tmp_path):
    """uvicorn's access formatter reads `record.args`: the token is redacted there and the line still formats."""
    code = (
        "import logging.config\n"
        "from broadcaster.logs import uvicorn_log_config\n"
        "from broadcaster.settings import get_settings\n"
        "config = uvicorn_log_config(get_settings())\n"
        "assert all(h['filters'] == ['redact'] for h in config['handlers'].values())\n"
        "logging.config.dictConfig(config)\n"
        "logging.getLogger('uvicorn.access').info('%s - \"%s %s HTTP/%s\" %d', '10.0.0.1:5', 'GET',"
        " '/v1/unsubscribe?token=eyJjIjoiZW1haWwiLCJzIjoxfQ.1Yh9AGcUipjTPBwLSk0xBW4dwAo', '1.1', 200)\n"
        "logging.getLogger('broadcaster.x').info('key %s', 'bk_0a1b2c3d_' + 'S' * 43)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "LOG_"))}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert '"GET /v1/unsubscribe?token=**** HTTP/1.1" 200' in out.stdout, out
    assert "1Yh9AGcUipjTPBwLSk0xBW4dwAo" not in out.stdout + out.stderr
    assert "key bk_0a1b2c3d_****" in out.stderr and "SSSS" not in out.stderr


def test_worker_process_logs_no_secret_at_debug(db_url, client, admin, emergency_category, fake, monkeypatch, tmp_path):
    """A `broadcaster worker` at LOG_LEVEL=DEBUG with provider HTTP logging on sends through every adapter;
    its stderr names no secret. The API shows the channels' secrets masked only."""
    from broadcaster.db import session_scope
    from broadcaster.models.delivery import Delivery

    extra = {"SECRET_KEY": SECRET_KEY, "LOG_LEVEL": "DEBUG", "LOG_PROVIDER_HTTP": "true"}
    _configure(fake, monkeypatch, tmp_path, **extra)
    secrets = known_secrets(fake) | {"API key": admin["Authorization"].split()[1]}

    channels = client.get("/v1/channels", headers=admin)
    assert channels.status_code == 200
    assert leaks(channels.text, secrets) == []
    shown = {c["name"]: c["config"] for c in channels.json()}
    assert shown["sendgrid"]["api_key"] == "****" + CREDENTIALS.sendgrid_key[-4:]

    sub = client.post("/v1/subscribers", headers=admin, json={"phone": "+15550001111", "email": "sub@example.org"})
    assert sub.status_code == 201, sub.text
    inc = client.post(
        "/v1/incidents", headers=admin, json={"title": "Water", "category": "emergency", "severity": "major"}
    )
    names = ["twilio-sms", "twilio-voice", "sendgrid", "x", "mastodon", "webhook"]
    upd = client.post(
        f"/v1/incidents/{inc.json()['id']}/updates",
        headers=admin,
        json={"body": "Water is off.", "summary": "Water off", "channels": names},
    )
    assert client.post(f"/v1/updates/{upd.json()['id']}/publish", headers=admin).status_code == 200

    env = dict(os.environ) | fake.env() | extra | {"DATABASE_URL": db_url, "WORKER_POLL_SECONDS": "0.2"}
    stderr = tmp_path / "worker.log"
    exe = Path(sys.executable).with_name("broadcaster")
    with stderr.open("wb") as out:
        worker = subprocess.Popen([str(exe), "worker"], env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 90
            while True:
                with session_scope() as session:
                    statuses = list(session.scalars(select(Delivery.status)))
                if len(statuses) == len(names) and all(s == "sent" for s in statuses):
                    break
                assert worker.poll() is None, stderr.read_text()
                assert time.monotonic() < deadline, f"deliveries not sent: {statuses}\n{stderr.read_text()}"
                time.sleep(0.2)
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()

    [mail] = fake.requests("sendgrid")
    link_tokens = re.findall(r"token=([\w.-]+)", json.dumps(mail.json))
    assert link_tokens  # the e-mail carried a signed unsubscribe link
    secrets |= {f"unsubscribe token {i}": t for i, t in enumerate(set(link_tokens))} | sent_credentials(fake)
    output = stderr.read_text()
    assert leaks(output, secrets) == [], output
    assert "python_http_client" in output and "Bearer ****" in output  # the SDK logged, redacted


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{'Authorization': 'Bearer SG.abc-def'}", "{'Authorization': 'Bearer ****'}"),
        ('{"authorization": "OAuth oauth_token=\\"t\\", oauth_signature=\\"s\\""}', '{"authorization": "OAuth ****"}'),
        ("Authorization: Basic QUM6dG9r", "Authorization: Basic ****"),
        ("authorization=opaque", "authorization=****"),
        (f"key {API_KEY} used", "key bk_0a1b2c3d_**** used"),
        (
            "<https://x.example/v1/unsubscribe?token=eyJzIjoxfQ.abcdefghijklmnopqrst>",
            "<https://x.example/v1/unsubscribe?token=****>",
        ),
        ("GET /stream?access_token=abc123&x=1", "GET /stream?access_token=****&x=1"),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "jwt ****",
        ),
        ("secret hunter22 and aHVudGVyMjI= and hunter22%21", "secret **** and **** and ****"),
        ("nothing to hide: broadcast 3 planned", "nothing to hide: broadcast 3 planned"),
    ],
)
def test_redactor(text, expected):
    redactor = logs.Redactor(["hunter22", "aHVudGVyMjI=", "hunter22%21"])
    out = redactor.redact(text)
    assert out == expected
    assert redactor.redact(out) == out  # masks are left alone


def test_configured_secrets_cover_encodings_db_password_and_webhook_urls(monkeypatch, tmp_path):
    from broadcaster.settings import Settings

    monkeypatch.chdir(tmp_path)
    settings = Settings(
        database_url=f"postgresql://bc:{DB_PASSWORD}@db/bc",
        twilio_account_sid="AC123",
        twilio_auth_token="tw-token-1",  # type: ignore[arg-type]
        webhook_secret="ab",  # type: ignore[arg-type]  # too short to search for
        webhook_urls=["https://hooks.slack.com/services/T0/B0/XYZ", "https://short.example/"],
    )
    found = logs.configured_secrets(settings)
    assert {"tw-token-1", base64.b64encode(b"AC123:tw-token-1").decode(), DB_PASSWORD} <= found
    assert "https://hooks.slack.com/services/T0/B0/XYZ" in found
    assert not any(s in ("ab", "https://short.example/") for s in found)
