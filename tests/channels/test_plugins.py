"""A third-party adapter package (channels/example-pager) installed with pip is loaded and used."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from broadcaster.channels.base import Message, Recipient
from broadcaster.channels.registry import adapter_classes, adapters_by_kind, known_channel_names, resolve_channel
from broadcaster.domain import ChannelKind
from broadcaster.settings import PROJECT_ROOT, get_settings

PIP = [sys.executable, "-m", "pip"]


@pytest.fixture(scope="module")
def pager_installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # build from a copy so the source folder stays free of build/ and *.egg-info
    src = tmp_path_factory.mktemp("plugin") / "example-pager"
    shutil.copytree(PROJECT_ROOT / "channels" / "example-pager", src)
    subprocess.run([*PIP, "install", "-q", "--no-deps", "--no-build-isolation", str(src)], check=True)
    importlib.invalidate_caches()
    adapter_classes.cache_clear()
    try:
        yield
    finally:
        subprocess.run([*PIP, "uninstall", "-q", "-y", "broadcaster-example-pager"], check=True)
        sys.modules.pop("broadcaster_example_pager", None)
        importlib.invalidate_caches()
        adapter_classes.cache_clear()


async def test_plugin_is_discovered_and_used(pager_installed, fake, make_settings, monkeypatch):
    assert "example-pager" in adapter_classes()
    assert "example-pager" in known_channel_names()
    settings = make_settings()
    assert resolve_channel("example-pager", settings) == []  # installed, not configured
    monkeypatch.setenv("EXAMPLE_PAGER_URL", fake.webhook_url("pager"))
    monkeypatch.setenv("EXAMPLE_PAGER_TOKEN", "pager-secret")
    [pager] = resolve_channel("example-pager", settings)
    assert pager.describe()["config"] == {"url": fake.webhook_url("pager"), "token": "****cret"}
    # a failover for SMS, after the built-in Twilio adapter
    assert [a.name for a in adapters_by_kind(settings)[ChannelKind.sms]][:2] == ["twilio-sms", "example-pager"]
    assert [a.name for a in resolve_channel("sms", settings)][-1] == "example-pager"
    try:
        [result] = await pager.send(Message(text="Pump 3 down"), [Recipient("d0", "pager-42", idempotency_key="k")])
    finally:
        await pager.aclose()
    assert result.ok
    [req] = fake.requests("webhook")
    assert req.path == "/hooks/pager"
    assert req.json == {"pager": "pager-42", "text": "Pump 3 down", "key": "k"}
    assert req.headers["authorization"] == "Bearer pager-secret"


def test_plugin_renders_with_its_own_limit(pager_installed, monkeypatch, tmp_path):
    from broadcaster.models import Category, Incident, Update
    from broadcaster.rendering import render_update

    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    update = Update(id=1, body="word " * 40, summary="", locale="en", translations={}, kind="normal", test=False)
    update.incident = Incident(id=1, title="t", severity="major", status="identified", category=Category(contact={}))
    r = render_update(None, update, "example-pager", "en")
    assert r.adapter == "example-pager" and r.max_length == 80 and r.length <= 80 and r.truncated


def test_broken_plugin_is_skipped(tmp_path, monkeypatch, caplog):
    """An entry point that fails to import is logged and skipped; the built-ins still load."""
    dist = tmp_path / "broken_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[broadcaster.channels]\nbroken = broken_plugin_mod:Adapter\nabsent = broken_plugin_absent:Adapter\n"
    )
    (tmp_path / "broken_plugin_mod.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    caplog.set_level("INFO", logger="broadcaster.channels.registry")
    adapter_classes.cache_clear()
    try:
        classes = adapter_classes()
    finally:
        adapter_classes.cache_clear()
    assert "broken" not in classes and "absent" not in classes and "twilio-sms" in classes
    assert "channel adapter broken failed to load" in caplog.text and "boom at import" in caplog.text
    assert "channel adapter absent is not available" in caplog.text
