"""Errors a person can act on: a refused login names the setting to change; a provider
that cannot be used is logged with its URL and status (never shown on the page)."""

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from starlette.responses import JSONResponse, Response, StreamingResponse

from app.auth.urls import CALLBACK_PATH, LOGIN_PATH
from devserver.provider import FakeProvider
from tests.helpers import ISSUER, query, start_login

HTML = {"Accept": "text/html"}


@pytest.mark.parametrize(
    ("error", "setting"),
    [
        ("invalid_scope", "AUTH0_SCOPE"),
        ("unauthorized_client", "Authorization Code"),
    ],
)
def test_a_refused_login_names_what_to_change(
    client: TestClient, caplog: pytest.LogCaptureFixture, error: str, setting: str
) -> None:
    caplog.set_level(logging.WARNING, logger="app.auth")
    state = query(start_login(client).headers["location"])["state"]
    answer = {"error": error, "error_description": "nope", "state": state, "iss": ISSUER}

    page = client.get(f"{CALLBACK_PATH}?{urlencode(answer)}", headers=HTML)

    assert page.status_code == 400 and setting in page.text
    assert f"error={error!r}" in caplog.text


def test_refused_client_credentials_name_the_settings(
    client: TestClient, provider: FakeProvider
) -> None:
    provider.replies["token"] = JSONResponse({"error": "invalid_client"}, status_code=401)
    redirect = provider.login(start_login(client).headers["location"])

    page = client.get(redirect, headers=HTML)

    assert page.status_code == 502 and "AUTH0_CLIENT_SECRET" in page.text


@pytest.mark.parametrize("status", [404, 500])
def test_a_discovery_failure_is_logged_with_its_url_and_status(
    client: TestClient, provider: FakeProvider, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    caplog.set_level(logging.WARNING, logger="app.auth")
    provider.replies["discovery"] = Response("gone", status_code=status)

    page = client.get(LOGIN_PATH, headers=HTML)

    url = f"{ISSUER}/.well-known/openid-configuration"
    assert page.status_code in (502, 503)
    assert f"url={url!r} status={status}" in caplog.text
    assert url not in page.text


def test_an_unreachable_provider_is_logged_with_the_cause(
    client: TestClient, provider: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="app.auth")
    provider.reachable = "refused"

    page = client.get(LOGIN_PATH, headers=HTML)

    assert page.status_code == 503
    assert "auth.provider_unreachable" in caplog.text and "connection refused" in caplog.text
    assert ISSUER not in page.text and "refused" not in page.text.lower()


def test_an_issuer_mismatch_is_logged_with_both_issuers(
    client: TestClient, provider: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="app.auth")
    provider.metadata = {"issuer": "https://other.example/"}

    page = client.get(LOGIN_PATH, headers=HTML)

    assert page.status_code == 502
    assert "configured='https://provider.test'" in caplog.text
    assert "discovered='https://other.example/'" in caplog.text
    assert "other.example" not in page.text and ISSUER not in page.text


@pytest.mark.parametrize(
    ("trouble", "logged"), [("404", "status=404"), ("refused", "connection refused")]
)
def test_the_app_checks_the_provider_when_it_starts(
    client_for: Callable[..., TestClient],
    provider: FakeProvider,
    caplog: pytest.LogCaptureFixture,
    trouble: str,
    logged: str,
) -> None:
    """A wrong AUTH0_DOMAIN (or a provider not there) shows in the log at startup with the
    HTTP status or the network's cause, not at the first login; the app starts anyway."""
    caplog.set_level(logging.INFO, logger="app.auth")
    if trouble == "refused":
        provider.reachable = "refused"
    else:
        provider.replies["discovery"] = Response(status_code=404)

    client = client_for(auth_startup_check=True)
    for _ in range(100):  # the check runs in the background
        if "auth.provider_check_failed" in caplog.text:
            break
        client.get("/")
    assert client.get("/").status_code == 200

    (line,) = [r.getMessage() for r in caplog.records if "provider_check_failed" in r.getMessage()]
    assert f"issuer={provider.issuer!r}" in line and "Logins fail until it answers" in line
    assert "/.well-known/openid-configuration" in caplog.text and logged in caplog.text


def test_a_provider_that_answers_at_startup_is_logged_ready(
    client_for: Callable[..., TestClient], provider: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.auth")
    client = client_for(auth_startup_check=True)
    for _ in range(100):
        if "auth.provider_ready" in caplog.text:
            break
        client.get("/")
    assert f"auth.provider_ready issuer={provider.issuer!r}" in caplog.text


def test_a_provider_answering_a_byte_at_a_time_times_out_as_a_whole(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    """AUTH0_TIMEOUT bounds each request to the provider, not each read of it: a token
    endpoint (or a proxy) trickling its answer held the callback for as long as it liked."""
    client = client_for(auth0_timeout=0.5)

    async def trickle() -> AsyncIterator[bytes]:
        for byte in b'{"error": "slow"}':
            await asyncio.sleep(0.1)
            yield bytes([byte])

    provider.replies["token"] = StreamingResponse(trickle(), media_type="application/json")
    callback = provider.login(start_login(client).headers["location"])

    page = client.get(callback, headers=HTML)

    assert page.status_code == 504
    assert "did not answer in time" in page.text
