"""Helpers for tests that log in against the in-process development provider."""

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
from fastapi.testclient import TestClient

from app.auth.cookies import CookieCipher
from app.config import Settings
from devserver.provider import FakeProvider

APP_URL = "http://127.0.0.1:8000"
ISSUER = "https://provider.test"


def start_login(client: TestClient, **params: str) -> httpx2.Response:
    """GET /auth/login; return the redirect to the provider."""
    response = client.get("/auth/login", params=params)
    assert response.status_code == 303, response.text
    return response


def log_in(
    client: TestClient, provider: FakeProvider, username: str = "alice", **params: str
) -> httpx2.Response:
    """Log in through the provider; return the app's answer to the callback."""
    authorize_url = start_login(client, **params).headers["location"]
    return client.get(provider.login(authorize_url, username))


def query(url: str) -> dict[str, str]:
    return {name: values[-1] for name, values in parse_qs(urlsplit(url).query).items()}


def session_cookies(response: httpx2.Response) -> list[str]:
    """The Set-Cookie lines of a response that set (not delete) session cookies."""
    return [
        line
        for line in response.headers.get_list("set-cookie")
        if line.startswith("app_session") and "Max-Age=0" not in line
    ]


def replace_cookie(client: TestClient, name: str, value: str) -> None:
    """Put a cookie in the client's jar in place of the one the app set."""
    client.cookies.set(name, value, domain=urlsplit(str(client.base_url)).hostname or "")


def session_cookie(settings: Settings, payload: dict[str, Any]) -> str:
    """A session cookie value, encrypted as the app does, holding exactly `payload`."""
    return CookieCipher(settings.session_secrets, "session").encrypt(payload)
