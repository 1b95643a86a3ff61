"""`python -m devserver` prepares a working `.env` on first run."""

import os
from pathlib import Path

import pytest

from app.config import load_settings
from devserver.__main__ import api_audience, ensure_env_file


def test_first_run_creates_env_with_a_random_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env.example").write_text("AUTH0_DOMAIN=tenant.us.auth0.com\nSESSION_SECRET=\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SESSION_SECRET", raising=False)
    monkeypatch.setenv("APP_BASE_URL", "http://127.0.0.1:8000")

    ensure_env_file()
    first = Path(".env").read_text()
    ensure_env_file()  # a second run changes nothing

    assert Path(".env").read_text() == first
    assert first.count("SESSION_SECRET=") == 1
    assert Path(".env").stat().st_mode & 0o777 == 0o600  # it holds secrets
    assert len(load_settings().session_secrets[0]) >= 32


def test_an_existing_env_without_secret_gets_one(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("AUTH0_DOMAIN=tenant.us.auth0.com\n")

    ensure_env_file(env, tmp_path / "missing.example")

    assert env.read_text().startswith("AUTH0_DOMAIN=tenant.us.auth0.com\n")
    assert "SESSION_SECRET=" in env.read_text()
    assert env.stat().st_mode & 0o777 == 0o600


def test_the_api_audience_defaults_to_the_apps_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("API_AUDIENCE", "AUTH0_AUDIENCE"):
        monkeypatch.delenv(name, raising=False)

    assert api_audience("http://127.0.0.1:8000", tmp_path / ".env") == "http://127.0.0.1:8000/api"
    assert os.environ["API_AUDIENCE"] == "http://127.0.0.1:8000/api"  # for the app


def test_an_audience_in_env_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("API_AUDIENCE", "AUTH0_AUDIENCE"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text("AUTH0_AUDIENCE=https://api.example.com\n")

    assert api_audience("http://127.0.0.1:8000", tmp_path / ".env") == "https://api.example.com"
    assert "API_AUDIENCE" not in os.environ
