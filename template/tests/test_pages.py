"""The example pages and the dependencies that protect routes."""

import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app import routers
from app.auth import NotAuthenticated, policy
from app.auth.urls import LOGIN_PATH
from app.main import create_app
from devserver.provider import FakeProvider
from tests.conftest import make_settings
from tests.helpers import LOGOUT, PROFILE, log_in

HTML = {"Accept": "text/html"}


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


def test_after_logout_the_home_page_says_so_once(logged_in: TestClient) -> None:
    logout = logged_in.get(LOGOUT)
    assert logout.status_code == 303  # to the provider, which sends the browser home

    home = logged_in.get("/", headers=HTML)
    assert "You are logged out." in home.text
    assert "You are logged out." not in logged_in.get("/", headers=HTML).text


def test_a_first_visit_is_not_told_it_logged_out(client: TestClient) -> None:
    assert "You are logged out." not in client.get("/", headers=HTML).text


def test_an_unknown_address_is_a_page_for_browsers_and_json_for_apis(client: TestClient) -> None:
    page = client.get("/no-such-page", headers=HTML)
    assert page.status_code == 404 and "Page not found" in page.text
    assert 'href="/"' in page.text and "Log in" not in page.text.split("<main>")[1]

    api = client.get("/no-such-page", headers={"Accept": "application/json"})
    assert api.status_code == 404 and api.json() == {"detail": "Not Found"}


def test_the_401_page_asks_a_first_time_visitor_to_log_in(app: FastAPI, client: TestClient) -> None:
    @app.get("/members-only")
    async def members_only() -> None:
        raise NotAuthenticated()  # no page to return to: the error page, not a redirect

    page = client.get("/members-only", headers=HTML)

    assert page.status_code == 401
    assert ">Log in</a>" in page.text and "Log in again" not in page.text


def test_times_are_readable(logged_in: TestClient) -> None:
    """Times on pages read `6 Dec 2026, 21:05 UTC`, with the exact time for machines."""
    api_page = logged_in.get("/api-example", headers=HTML)  # when the access token expires
    sessions_page = logged_in.get("/sessions", headers=HTML)  # when each session started
    pages = [api_page.text]
    if "cannot list them" not in sessions_page.text:  # the cookie store keeps no list
        pages.append(sessions_page.text)

    for text in pages:
        readable = re.findall(r'<time datetime="([^"]+)">([^<]+)</time>', text)
        assert readable
        for iso, shown in readable:
            moment = datetime.fromisoformat(iso).astimezone(UTC)
            assert shown == f"{moment.day} {moment:%b %Y, %H:%M} UTC"
            assert abs(moment.timestamp() - time.time()) < 2 * 86400


def test_the_health_check_asks_no_one(client: TestClient, provider: FakeProvider) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert provider.requests == []


def test_a_router_dropped_into_app_routers_is_served(
    provider: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "zz_probe.py").write_text(
        "from fastapi import APIRouter\n\n"
        "router = APIRouter()\n\n\n"
        "@router.get('/probe')\n"
        "async def probe() -> dict[str, str]:\n"
        "    return {'served': 'yes'}\n"
    )
    monkeypatch.setattr(routers, "__path__", [*routers.__path__, str(tmp_path)])

    app = create_app(make_settings(provider), provider_transport=provider.transport)

    with TestClient(app) as client:
        assert client.get("/probe").json() == {"served": "yes"}
