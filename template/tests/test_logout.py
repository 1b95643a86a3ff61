"""Logging out: here first, always; then at the provider when it supports it."""

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.auth import session_cookie
from app.auth.client import OidcClient
from app.auth.errors import StoreUnavailable
from app.auth.provider import Provider, ProviderMetadata
from app.auth.session_cookie import SESSION_COOKIE
from devserver.provider import FakeProvider
from tests.conftest import make_settings
from tests.helpers import (
    APP_URL,
    ISSUER,
    LOGOUT,
    PROFILE,
    auth_of,
    log_in,
    query,
    replace_cookie,
)
from tests.test_return_to import HOSTILE


def test_logout_ends_the_session_and_the_provider_session(
    logged_in: TestClient, provider: FakeProvider
) -> None:
    response = logged_in.get(LOGOUT, params={"returnTo": "/bye"})

    assert response.status_code == 303
    assert response.headers["cache-control"] == "no-store"
    location = response.headers["location"]
    assert location.startswith(f"{ISSUER}/logout?")
    params = query(location)
    assert params["client_id"] == "dev-client"
    assert params["post_logout_redirect_uri"] == f"{APP_URL}/bye"
    assert params["id_token_hint"].count(".") == 2
    assert logged_in.get(PROFILE).status_code == 401


def test_a_logout_while_the_store_is_down_still_logs_the_browser_out(
    logged_in: TestClient,
    client_for: Callable[..., TestClient],
    unreachable_store: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = client_for(**unreachable_store)  # an instance that cannot reach the store
    cookies = {
        c.name: c.value or "" for c in logged_in.cookies.jar if c.name.startswith(SESSION_COOKIE)
    }
    for name, value in cookies.items():
        replace_cookie(down, name, value)

    response = down.get(LOGOUT)

    assert response.status_code == 303
    assert response.headers["location"].startswith(f"{ISSUER}/logout?")
    removals = [line for line in response.headers.get_list("set-cookie") if "Max-Age=0" in line]
    assert {line.split("=")[0] for line in removals} == set(cookies)
    assert not [c for c in down.cookies.jar if c.name.startswith(SESSION_COOKIE)]
    assert "auth.logout_not_recorded" in caplog.text
    # This instance refuses a copy of the cookie until the store has recorded the logout.
    for name, value in cookies.items():
        replace_cookie(down, name, value)
    assert down.get(PROFILE).status_code == 401


@dataclass
class FlakyDeletes:
    """The store's deletions: refused (StoreUnavailable) while `down`, slowed by `delay`
    seconds once it is back."""

    down: bool = True
    delay: float = 0.0


@pytest.fixture
def flaky_deletes(
    logged_in: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> FlakyDeletes:
    """A store that cannot delete for now; missed logouts are retried every 0.05 s."""
    flaky = FlakyDeletes()
    store = auth_of(logged_in).sessions.store
    delete = store.delete

    async def flaky_delete(*args: Any, **kwargs: Any) -> None:
        if flaky.down:
            raise StoreUnavailable()
        await asyncio.sleep(flaky.delay)
        await delete(*args, **kwargs)

    monkeypatch.setattr(store, "delete", flaky_delete)
    monkeypatch.setattr(session_cookie, "RETRY_DELAYS", (0.05,))
    caplog.set_level(logging.INFO, logger="app.auth")
    return flaky


def test_a_logout_the_store_could_not_take_is_recorded_once_it_is_back(
    logged_in: TestClient,
    client_for: Callable[..., TestClient],
    flaky_deletes: FlakyDeletes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Other instances honour it too, without waiting for another logout here."""
    elsewhere = client_for()  # another instance on the same store
    for cookie in logged_in.cookies.jar:
        replace_cookie(elsewhere, cookie.name, cookie.value or "")

    assert logged_in.get(LOGOUT).status_code == 303
    time.sleep(0.2)
    assert elsewhere.get(PROFILE).status_code == 200  # the store is still down
    flaky_deletes.down = False  # back

    deadline = time.monotonic() + 5
    while "auth.logout_recorded_late" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.05)
    assert elsewhere.get(PROFILE).status_code == 401


def test_a_logout_finishing_a_missed_one_while_the_retry_does_too_succeeds(
    logged_in: TestClient,
    client: TestClient,
    provider: FakeProvider,
    flaky_deletes: FlakyDeletes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The background retry and a request's logout may record the same missed logout at
    once: each must get through (the second to finish answered 500)."""
    assert logged_in.get(LOGOUT).status_code == 303  # missed: retried in the background
    log_in(client, provider, "bob")
    flaky_deletes.down, flaky_deletes.delay = False, 0.3  # back, slow: the deletions overlap
    time.sleep(0.1)  # the retry is recording it now

    assert client.get(LOGOUT).status_code == 303  # records it too, then bob's logout

    time.sleep(0.5)
    assert "auth.logout_recorded_late" in caplog.text
    assert "auth.logout_retry_failed" not in caplog.text


def test_logout_removes_every_session_cookie(logged_in: TestClient) -> None:
    logged_in.cookies.set(f"{SESSION_COOKIE}.3", "stray chunk", domain="127.0.0.1")

    response = logged_in.get(LOGOUT)

    removals = [
        line for line in response.headers.get_list("set-cookie") if line.startswith(SESSION_COOKIE)
    ]
    assert removals and all("Max-Age=0" in line for line in removals)
    # A removal must match the cookie it removes, attribute for attribute.
    assert all("HttpOnly" in line and "Path=/" in line for line in removals)
    assert all("SameSite=lax" in line for line in removals)

    assert not [c for c in logged_in.cookies.jar if c.name.startswith(SESSION_COOKIE)]
    assert logged_in.get(PROFILE).status_code == 401


@pytest.mark.parametrize(
    "return_to", [value for value in HOSTILE if "%" in value or "\\" in value or "//" in value]
)
def test_logout_never_redirects_off_site(logged_in: TestClient, return_to: str) -> None:
    response = logged_in.get(LOGOUT, params={"returnTo": return_to})

    assert response.status_code == 303
    assert query(response.headers["location"])["post_logout_redirect_uri"] == f"{APP_URL}/"


def test_logout_works_while_the_provider_is_down(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    client = client_for()
    log_in(client, provider)
    fresh = client_for()  # no discovery document cached yet
    fresh.cookies = client.cookies
    provider.reachable = "refused"

    response = fresh.get(LOGOUT, params={"returnTo": "/bye"})

    assert (response.status_code, response.headers["location"]) == (303, f"{APP_URL}/bye")
    assert fresh.get(PROFILE).status_code == 401


def test_logout_without_a_session_still_ends_the_provider_session(client: TestClient) -> None:
    location = client.get(LOGOUT).headers["location"]

    assert location.startswith(f"{ISSUER}/logout?")
    assert "id_token_hint" not in query(location)


def metadata(end_session_endpoint: str | None) -> ProviderMetadata:
    return ProviderMetadata(
        issuer=ISSUER,
        authorization_endpoint=f"{ISSUER}/authorize",
        token_endpoint=f"{ISSUER}/token",
        jwks_uri=f"{ISSUER}/jwks",
        end_session_endpoint=end_session_endpoint,
        revocation_endpoint=None,
        userinfo_endpoint=None,
        signing_algorithms=("RS256",),
        client_auth_method="client_secret_basic",
        iss_parameter_required=False,
    )


def test_auth0_without_end_session_endpoint_uses_v2_logout(provider: FakeProvider) -> None:
    settings = make_settings(provider, auth0_domain="tenant.eu.auth0.com")
    client = OidcClient(Provider(settings.provider_config()))

    url = client.logout_url(metadata(None), id_token="a.b.c", return_url=f"{APP_URL}/")

    assert url.startswith("https://tenant.eu.auth0.com/v2/logout?")
    assert query(url) == {"client_id": "dev-client", "returnTo": f"{APP_URL}/"}


def test_other_providers_without_end_session_return_straight_home(provider: FakeProvider) -> None:
    client = OidcClient(Provider(make_settings(provider).provider_config()))

    assert (
        client.logout_url(metadata(None), id_token=None, return_url=f"{APP_URL}/x")
        == f"{APP_URL}/x"
    )
