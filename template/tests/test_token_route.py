"""GET /auth/access-token hands the session's access token to browser code."""

from fastapi.testclient import TestClient

from app.auth.urls import AUTH_PREFIX
from devserver.provider import FakeProvider
from tests.helpers import log_in

TOKEN_ROUTE = f"{AUTH_PREFIX}/access-token"


def test_the_route_gives_a_valid_access_token(client: TestClient, provider: FakeProvider) -> None:
    log_in(client, provider)

    response = client.get(TOKEN_ROUTE)

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token"] == provider.issued[-1]["access_token"]
    assert body["expires_at"] > 0 and "openid" in body["scope"]


def test_the_route_refreshes_an_expiring_token(client: TestClient, provider: FakeProvider) -> None:
    provider.token_ttl = 30
    log_in(client, provider)
    first = provider.issued[-1]["access_token"]

    assert client.get(TOKEN_ROUTE).json()["token"] != first


def test_the_route_answers_401_without_a_session(client: TestClient) -> None:
    response = client.get(TOKEN_ROUTE, headers={"accept": "text/html"})

    assert response.status_code == 401
