"""Point every built-in adapter at a running fake provider server (one place for the suites that send)."""

from __future__ import annotations

from typing import Any

import pytest

#: provider rate limits high enough never to slow a test down
UNLIMITED_RATES = {
    "TWILIO_SMS_RATE_PER_SECOND": "100000",
    "TWILIO_VOICE_RATE_PER_SECOND": "100000",
    "SENDGRID_RATE_PER_SECOND": "100000",
}


def use_fake_provider(running: Any, monkeypatch: pytest.MonkeyPatch, *, webhook: bool, **settings: str) -> Any:
    """Set the adapters' credentials and base URLs to `running` (a fake provider handle), a fast worker poll
    and `settings` (e.g. rate limits), then drop the cached settings and adapter classes. Returns `running`."""
    from broadcaster.channels.registry import adapter_classes
    from broadcaster.settings import get_settings

    for key, value in running.env(webhook=webhook).items():
        monkeypatch.setenv(key, value)
    for key, value in {"WORKER_POLL_SECONDS": "0.05", **settings}.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    adapter_classes.cache_clear()
    return running
