"""Registry: built-ins load through the entry-point group; routing-map names resolve to adapters."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx

from broadcaster.channels.registry import (
    adapter_classes,
    adapters_by_kind,
    configured_adapters,
    kind_of,
    known_channel_names,
    resolve_channel,
)
from broadcaster.domain import ChannelKind
from broadcaster.fakes.testing import free_port

BUILT_INS = {
    "twilio-sms": ChannelKind.sms,
    "twilio-voice": ChannelKind.voice,
    "sendgrid": ChannelKind.email,
    "x": ChannelKind.social,
    "mastodon": ChannelKind.social,
    "bluesky": ChannelKind.social,
    "webhook": ChannelKind.webhook,
    "banner": ChannelKind.banner,
}


def test_built_ins_are_entry_points():
    classes = adapter_classes()
    for name, kind in BUILT_INS.items():
        assert classes[name].name == name and classes[name].kind is kind
    assert set(BUILT_INS) | {k.value for k in ChannelKind} <= known_channel_names()


def test_resolution_with_everything_configured(make_settings):
    settings = make_settings()
    names = [a.name for a in configured_adapters(settings)]
    assert set(BUILT_INS) <= set(names)
    by_kind = adapters_by_kind(settings)
    assert [a.name for a in by_kind[ChannelKind.social]] == ["x", "mastodon", "bluesky"]  # primary, then failover
    assert [a.name for a in by_kind[ChannelKind.banner]] == ["banner"]
    assert [a.name for a in resolve_channel("social", settings)] == ["x", "mastodon", "bluesky"]
    assert [a.name for a in resolve_channel("mastodon", settings)] == ["mastodon"]
    assert [a.name for a in resolve_channel("voice", settings)] == ["twilio-voice"]
    assert resolve_channel("carrier-pigeon", settings) == []
    assert kind_of("sendgrid") is ChannelKind.email and kind_of("email") is ChannelKind.email
    assert kind_of("carrier-pigeon") is None


def test_resolution_with_nothing_configured(monkeypatch, tmp_path):
    from broadcaster.settings import Settings

    monkeypatch.chdir(tmp_path)
    settings = Settings(_env_file=None)
    assert [a.name for a in configured_adapters(settings) if a.name in BUILT_INS] == ["banner"]
    assert resolve_channel("sms", settings) == [] and resolve_channel("twilio-sms", settings) == []


def test_fake_providers_command():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "broadcaster", "fake-providers", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                resp = httpx.get(f"http://127.0.0.1:{port}/_fake/health", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "fake-providers did not start"
                time.sleep(0.1)
        assert resp.json()["ok"] is True and resp.json()["count"] == 0
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert f"Fake providers on http://127.0.0.1:{port}" in out.decode()
