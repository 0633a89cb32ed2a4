"""Settings from the environment and `.env`; DATABASE_URL switches to PostgreSQL through psycopg 3."""

from __future__ import annotations

import pytest

from broadcaster.db import normalize_url
from broadcaster.settings import Settings


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults_are_sqlite_and_loopback(clean_env):
    s = Settings()
    assert s.database_url.startswith("sqlite:///") and s.is_sqlite
    assert (s.api_host, s.api_port) == ("127.0.0.1", 8000)
    assert s.worker_in_process is True


def test_dotenv_and_environment(clean_env, monkeypatch):
    (clean_env / ".env").write_text(
        "ORG_NAME=City Water\nSUPPORTED_LOCALES=en, fr-CA\nAPI_PORT=9000\nSECRET_KEY=s3cret\n"
    )
    s = Settings()
    assert s.org_name == "City Water" and s.supported_locales == ["en", "fr-CA"] and s.api_port == 9000
    assert "s3cret" not in repr(s) and s.secret_key is not None and s.secret_key.get_secret_value() == "s3cret"
    monkeypatch.setenv("API_PORT", "9100")
    assert Settings().api_port == 9100  # the environment wins over .env


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@db/x", "postgresql+psycopg://u:p@db/x"),
        ("postgresql://u@db/x", "postgresql+psycopg://u@db/x"),
        ("postgresql+psycopg://u@db/x", "postgresql+psycopg://u@db/x"),
        ("sqlite:///./var/b.db", "sqlite:///./var/b.db"),
    ],
)
def test_database_url_uses_psycopg3(url, expected):
    assert normalize_url(url) == expected


def test_safe_url_hides_the_password():
    from broadcaster.cli import _safe_url

    assert _safe_url("postgresql://bc:hunter2@db:5432/bc") == "postgresql://bc:****@db:5432/bc"
    assert "hunter2" not in _safe_url("postgresql+psycopg://bc:hunter2@db/bc")
