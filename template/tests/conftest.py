"""Fixtures: an in-process OpenID provider and a client for the app. No network, no secrets.

The session store's own fixtures (`store`, `unreachable_store`) are in the
`fixtures_<store>.py` module of the store this app was generated with.
"""

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.auth.variant import SESSION_STORE
from app.config import Settings
from devserver.provider import FakeProvider
from devserver.variant import REDIRECT_PATHS, Provider
from tests.helpers import APP_URL, CLIENT_ID, ISSUER, log_in

SESSION_SECRET = secrets.token_urlsafe(32)

# `app.main` builds the module-level app from the environment when it is imported.
for name, value in {
    "AUTH0_DOMAIN": ISSUER,
    "AUTH0_CLIENT_ID": CLIENT_ID,
    "AUTH0_CLIENT_SECRET": "dev-client-password",
    "APP_BASE_URL": APP_URL,
    "SESSION_SECRET": SESSION_SECRET,
}.items():
    os.environ.setdefault(name, value)

from app.main import create_app  # noqa: E402

store_fixtures = import_module(f"tests.fixtures_{SESSION_STORE}")
store = store_fixtures.store
unreachable_store = store_fixtures.unreachable_store
STORE_SETTINGS: dict[str, Any] = store_fixtures.STORE_SETTINGS
# Seconds until a change (a logout) on one app instance holds on the others.
ELSEWHERE_WITHIN: float = store_fixtures.ELSEWHERE_WITHIN


def make_settings(provider: FakeProvider, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        **STORE_SETTINGS,
        "auth0_domain": provider.issuer,
        "auth0_client_id": provider.client_id,
        "auth0_client_secret": provider.client_secret,
        "app_base_url": APP_URL,
        "session_secret": SESSION_SECRET,
        "auth_startup_check": False,  # tests set up the provider after the app starts
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


# A valid configuration, as the environment gives it (see the `env` fixture).
VALID_ENVIRONMENT = {
    "AUTH0_DOMAIN": "tenant.us.auth0.com",
    "AUTH0_CLIENT_ID": "abc",
    "AUTH0_CLIENT_SECRET": "client-password-value",
    "APP_BASE_URL": "https://app.example.com/",
    "SESSION_SECRET": "Vt7Qm2Lx9Rk4Pz8Wn3Hj6Bc1Fd5Gs0Ya",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """A valid configuration in the environment, in a folder without a `.env`; change it
    with the returned monkeypatch (`env.setenv("REDIS_URL", ...)`)."""
    monkeypatch.chdir(tmp_path)
    for name, value in VALID_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


@pytest.fixture
def provider() -> FakeProvider:
    """The development provider (with what the app's optional features need of it)."""
    return Provider(
        ISSUER,
        client_secret="dev-client-password",
        redirect_uris=tuple(f"{APP_URL}{path}" for path in REDIRECT_PATHS),
        logout_redirect_prefix=f"{APP_URL}/",
    )


@pytest.fixture
def settings(provider: FakeProvider) -> Settings:
    return make_settings(provider)


@pytest.fixture
def app(settings: Settings, provider: FakeProvider) -> FastAPI:
    return create_app(settings, provider_transport=provider.transport)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """An anonymous browser-like client that does not follow redirects."""
    with TestClient(app, base_url=APP_URL, follow_redirects=False) as client:
        yield client


@pytest.fixture
def client_for(provider: FakeProvider) -> Iterator[Callable[..., TestClient]]:
    """Build clients for apps with other settings: `client_for(auth0_audience="...")`."""
    with ExitStack() as stack:

        def build(**overrides: Any) -> TestClient:
            settings = make_settings(provider, **overrides)
            app = create_app(settings, provider_transport=provider.transport)
            client = TestClient(app, base_url=settings.app_base_url, follow_redirects=False)
            return stack.enter_context(client)

        yield build


@pytest.fixture
def logged_in(client: TestClient, provider: FakeProvider) -> TestClient:
    """`client`, logged in as alice."""
    assert log_in(client, provider).status_code == 303
    return client


@pytest.fixture
def login_as(client: TestClient, provider: FakeProvider) -> Callable[..., TestClient]:
    """Log `client` in through the provider as a user with the claims you choose:

    login_as("bob", email="bob@corp.example", roles=["admin"])
    """

    def login(username: str, **claims: Any) -> TestClient:
        provider.users[username] = claims
        assert log_in(client, provider, username).status_code == 303
        return client

    return login
