"""`python -m devserver` prepares a working `.env` on first run."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import load_settings
from devserver.__main__ import api_audience, ensure_env_file

ROOT = Path(__file__).resolve().parents[1]


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


@pytest.mark.parametrize("option", ["--port", "--provider-port"])
def test_a_taken_port_is_named_with_the_option_to_change(tmp_path: Path, option: str) -> None:
    """Never a hang: the devserver stops at once and says what to do."""
    other = "--port" if option == "--provider-port" else "--provider-port"
    with socket.socket() as taken, socket.socket() as free:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        free.bind(("127.0.0.1", 0))  # for the other server: not the default, which may be busy
        free_port = free.getsockname()[1]
        free.close()
        result = subprocess.run(
            [sys.executable, "-m", "devserver", "--no-reload", option, str(port), other,
             str(free_port)],
            cwd=tmp_path,  # no .env is written there
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip

    assert result.returncode == 2
    assert f"port {port}" in result.stderr and f"choose another port with {option}" in result.stderr
    assert not (tmp_path / ".env").exists()
