"""One log line per auth event, and never a token, code or secret in any of them."""

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.auth.logout_notice import LOGGED_OUT_COOKIE
from app.auth.urls import AUTH_PREFIX, CALLBACK_PATH
from devserver.provider import FakeProvider
from tests.helpers import (
    APP_URL,
    LOGOUT,
    PROFILE,
    log_in,
    post_logout,
    query,
    send_backchannel_logout,
    start_login,
    stored_session,
    unsigned_token,
)

ROOT = Path(__file__).resolve().parents[1]


def test_auth_events_are_logged_without_secrets(
    client: TestClient, provider: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.auth")
    provider.token_ttl = 30  # so /api-example refreshes

    authorize_url = start_login(client).headers["location"]
    callback = provider.login(authorize_url)
    client.get(callback)
    login_tokens = provider.issued[-1]
    client.get("/api-example")
    send_backchannel_logout(client, provider, sub="alice")
    log_in(client, provider)
    client.get(LOGOUT)

    events = [record.getMessage().split()[0] for record in caplog.records]
    for event in ("auth.login", "auth.refresh", "auth.backchannel_logout", "auth.logout"):
        assert event in events
    secrets = [
        query(callback)["code"],
        query(authorize_url)["state"],
        query(authorize_url)["nonce"],
        provider.client_secret,
        *(provider.issued[i][name] for i in range(len(provider.issued))
          for name in ("id_token", "access_token", "refresh_token") if name in provider.issued[i]),
        login_tokens["id_token"].split(".")[2],
        *(value for name, value in client.cookies.items() if name != LOGGED_OUT_COOKIE),
    ]  # fmt: skip
    logged = caplog.text
    assert not [secret for secret in secrets if secret and secret in logged]


def test_logouts_from_the_provider_and_refusals_are_logged(
    client: TestClient, provider: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """Front-channel logouts, refused logout tokens and the auth errors of every status are
    logged with what happened (the 5xx ones as warnings)."""
    caplog.set_level(logging.INFO, logger="app.auth")
    provider.frontchannel_logout_uri = f"{APP_URL}{AUTH_PREFIX}/frontchannel-logout"
    log_in(client, provider)
    session = stored_session(client)
    assert session is not None and session.sid

    client.get(provider.frontchannel_logout_url(session.sid))
    post_logout(client, unsigned_token({"sub": "alice"}))
    client.get(PROFILE)  # 401
    callback = provider.login(start_login(client).headers["location"])
    provider.reachable = "refused"
    client.get(callback)  # 503: the code cannot be exchanged

    lines = [(record.levelname, record.getMessage()) for record in caplog.records]
    ended = f"auth.frontchannel_logout sid={session.sid!r} ended="
    assert [line for level, line in lines if level == "INFO" and line.startswith(ended)]
    assert [level for level, line in lines if line.startswith("auth.backchannel_logout rejected")]
    assert ("INFO", f"auth.error code=unauthorized path={PROFILE!r}") in lines
    (unavailable,) = [(level, line) for level, line in lines if "code=provider_unavailable" in line]
    assert unavailable[0] == "WARNING" and f"path={CALLBACK_PATH!r}" in unavailable[1]


SHOW_A_REFUSED_LOGIN = f"""
from fastapi.testclient import TestClient
from app.main import app
with TestClient(app) as client:
    client.get("{CALLBACK_PATH}?state=not-a-login-of-this-browser&code=x")
"""


@pytest.mark.parametrize("form", ["text", "json"])
def test_auth_events_show_under_a_plain_server(form: str) -> None:
    """Run as `uvicorn app.main:app` would (no logging set up): lines reach stderr."""
    env = {**os.environ, "LOG_FORMAT": form}
    result = subprocess.run(
        [sys.executable, "-c", SHOW_A_REFUSED_LOGIN],
        capture_output=True, text=True, env=env, check=True, cwd=ROOT,
    )  # fmt: skip

    (line,) = [line for line in result.stderr.splitlines() if "auth.error" in line]
    if form == "json":
        entry = json.loads(line)
        assert entry["level"] == "INFO" and entry["logger"] == "app.auth"
        assert entry["message"].startswith("auth.error code=login_expired")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}", entry["time"])
    else:
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO app\.auth: auth\.error ", line)
        assert "code=login_expired" in line


def test_the_access_log_leaves_out_codes_states_and_session_ids(
    client: TestClient, provider: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    callback = provider.login(start_login(client).headers["location"])
    code, state = query(callback)["code"], query(callback)["state"]
    target = callback.removeprefix(APP_URL) + "&connect_code=cc-secret&next=%2Fhome"

    # The line uvicorn writes for each request (its access logger, its arguments).
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:50000", "GET", target, "1.1", 303
    )

    (line,) = caplog.messages
    assert code not in line and state not in line and "cc-secret" not in line
    assert "code=[redacted]" in line and "state=[redacted]" in line
    assert line.startswith(f'127.0.0.1:50000 - "GET {CALLBACK_PATH}?')
    assert line.endswith('&next=%2Fhome HTTP/1.1" 303')
