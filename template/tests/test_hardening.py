"""Defences that no single route owns: what a discovery document may point the app at, and
what a request may write into the logs."""

import logging
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from app.auth.urls import AUTH_PREFIX, CALLBACK_PATH, LOGIN_PATH
from app.main import create_app
from devserver.provider import FakeProvider
from tests.conftest import make_settings
from tests.helpers import APP_URL, post_logout, start_login, unsigned_token


@pytest.mark.parametrize(
    "endpoint",
    ["authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"],
)
def test_a_discovery_document_cannot_send_secrets_in_the_clear(
    client: TestClient, provider: FakeProvider, endpoint: str
) -> None:
    provider.metadata = {endpoint: "http://provider.test/plain"}

    response = client.get(LOGIN_PATH, headers={"Accept": "application/json"})

    assert response.status_code == 502
    assert "https" in response.json()["error_description"]
    assert provider.requests == ["discovery"]


def test_a_development_provider_on_this_machine_may_use_http(provider: FakeProvider) -> None:
    local = FakeProvider("http://127.0.0.1:8001", redirect_uris=provider.redirect_uris)
    app = create_app(make_settings(local), provider_transport=local.transport)

    with TestClient(app, base_url=APP_URL, follow_redirects=False) as client:
        assert start_login(client).headers["location"].startswith("http://127.0.0.1:8001/")


def test_a_request_cannot_write_its_own_log_lines(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.auth")
    forged = "\n2026-12-06 INFO auth.login sub=admin"

    client.post(f"{AUTH_PREFIX}/sessions/{quote(forged)}/end")  # a path parameter
    post_logout(client, unsigned_token({"sub": "alice"}, alg=forged))  # a token's header
    client.get(CALLBACK_PATH, params={"state": "s" * 20, "error": forged})

    lines = [record.getMessage() for record in caplog.records]
    assert lines and not [line for line in lines if "\n" in line]
