"""The example pages and the dependencies that protect routes."""

import pytest
from fastapi.testclient import TestClient

from app.auth import policy
from app.auth.urls import LOGIN_PATH
from devserver.provider import FakeProvider
from tests.helpers import LOGOUT, PROFILE, log_in


def test_home_page_for_anonymous_and_logged_in_users(
    client: TestClient, provider: FakeProvider
) -> None:
    anonymous = client.get("/")
    assert anonymous.status_code == 200
    assert f'href="{LOGIN_PATH}"' in anonymous.text

    log_in(client, provider, "alice")
    page = client.get("/")
    assert "Welcome, Alice" in page.text
    assert f'href="{LOGOUT}"' in page.text


def test_protected_page_sends_browsers_to_login_and_back(
    client: TestClient, provider: FakeProvider
) -> None:
    response = client.get("/profile?tab=1", headers={"accept": "text/html"})
    assert response.status_code == 303
    assert response.headers["location"] == f"{LOGIN_PATH}?returnTo=%2Fprofile%3Ftab%3D1"

    login = client.get(response.headers["location"])
    callback = client.get(provider.login(login.headers["location"]))
    assert callback.headers["location"] == "/profile?tab=1"
    page = client.get("/profile")
    assert page.status_code == 200
    assert "alice@example.com" in page.text


def test_protected_page_answers_401_to_api_clients(client: TestClient) -> None:
    response = client.get("/profile", headers={"accept": "application/json"})

    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


def test_profile_api_is_401_even_for_browsers(client: TestClient) -> None:
    assert client.get(PROFILE, headers={"accept": "text/html"}).status_code == 401


def test_authorization_policy_can_refuse_a_user(
    logged_in: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(policy, "authorize", lambda user, request: user["sub"] != "alice")

    page = logged_in.get("/profile", headers={"accept": "text/html"})
    assert page.status_code == 403
    assert "Access denied" in page.text


def test_user_content_is_escaped(client: TestClient, provider: FakeProvider) -> None:
    provider.id_token_claims = {"name": "<img src=x onerror=alert(1)>"}
    log_in(client, provider)

    for path in ("/", "/profile"):
        page = client.get(path)
        assert "<img src=x" not in page.text
        assert "&lt;img src=x" in page.text
