"""Fixtures: one fake provider server per module (reset per test) and settings pointing every adapter at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from broadcaster.fakes.testing import RunningFake
from broadcaster.settings import Settings, get_settings


@pytest.fixture
def make_settings(
    fake: RunningFake, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Callable[..., Settings]]:
    """Settings with every provider pointed at the fake; keyword overrides win."""
    monkeypatch.chdir(tmp_path)  # no stray .env

    def make(**overrides: object) -> Settings:
        for key, value in fake.env().items():
            monkeypatch.setenv(key, value)
        for key, value in overrides.items():
            monkeypatch.setenv(key.upper(), str(value))
        get_settings.cache_clear()
        return get_settings()

    yield make
    get_settings.cache_clear()
