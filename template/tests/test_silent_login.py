"""Silent login (`prompt=none`): users with a session at the provider are logged in without
a page; the others carry on anonymous, never on an error page."""

from urllib.parse import urlencode

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from app.auth import TrySilentLogin
from app.auth.silent_login import SILENT_LOGIN_COOKIE
from app.auth.urls import CALLBACK_PATH, LOGIN_PATH
from devserver.provider import FakeProvider
from tests.helpers import ISSUER, query, start_login, stored_session

HTML = {"Accept": "text/html"}


@pytest.fixture
def greeting(app: FastAPI) -> None:
    """A page for everyone that greets users it knows, trying a silent login once."""
    router = APIRouter()

    @router.get("/welcome")
    async def welcome(session: TrySilentLogin) -> dict[str, str | None]:
        return {"user": session.sub if session else None}

    app.include_router(router)


def test_no_session_at_the_provider_lands_back_anonymous(
    client: TestClient, provider: FakeProvider
) -> None:
    authorize_url = start_login(client, prompt="none", returnTo="/welcome").headers["location"]
    assert query(authorize_url)["prompt"] == "none"

    back = client.get(provider.answer_silently(authorize_url, None), headers=HTML)

    assert back.status_code == 303 and back.headers["location"] == "/welcome"
    assert stored_session(client) is None


def test_a_session_at_the_provider_logs_in_without_a_page(
    client: TestClient, provider: FakeProvider
) -> None:
    authorize_url = start_login(client, prompt="none", returnTo="/welcome").headers["location"]

    back = client.get(provider.answer_silently(authorize_url, "alice"))

    assert back.headers["location"] == "/welcome"
    assert stored_session(client) is not None


@pytest.mark.parametrize("error", ["access_denied", "server_error"])
def test_other_errors_still_show_the_error_page(
    client: TestClient, provider: FakeProvider, error: str
) -> None:
    state = query(start_login(client, prompt="none").headers["location"])["state"]

    page = client.get(
        f"{CALLBACK_PATH}?{urlencode({'error': error, 'state': state, 'iss': ISSUER})}"
    )

    assert page.status_code == 400


def test_a_login_required_answer_without_prompt_none_is_an_error(
    client: TestClient,
) -> None:
    state = query(start_login(client).headers["location"])["state"]
    answer = {"error": "login_required", "state": state, "iss": ISSUER}

    assert client.get(f"{CALLBACK_PATH}?{urlencode(answer)}").status_code == 400


def test_a_page_tries_a_silent_login_once_per_browser_session(
    greeting: None, client: TestClient, provider: FakeProvider
) -> None:
    first = client.get("/welcome", headers=HTML)
    assert first.status_code == 303
    assert first.headers["location"] == f"{LOGIN_PATH}?prompt=none&returnTo=%2Fwelcome"

    login = client.get(first.headers["location"])
    (marker,) = [
        c for c in login.headers.get_list("set-cookie") if c.startswith(SILENT_LOGIN_COOKIE)
    ]
    assert "max-age" not in marker.lower()  # gone when the browser closes
    client.get(provider.answer_silently(login.headers["location"], None))

    assert client.get("/welcome", headers=HTML).json() == {"user": None}  # no second try


def test_a_known_user_is_greeted_after_the_silent_login(
    greeting: None, client: TestClient, provider: FakeProvider
) -> None:
    login = client.get(client.get("/welcome", headers=HTML).headers["location"])
    client.get(provider.answer_silently(login.headers["location"], "alice"))

    assert client.get("/welcome", headers=HTML).json() == {"user": "alice"}


def test_api_clients_are_not_redirected(greeting: None, client: TestClient) -> None:
    assert client.get("/welcome", headers={"Accept": "application/json"}).json() == {"user": None}


def test_the_development_provider_answers_from_its_sign_in_cookie(
    client: TestClient, provider: FakeProvider
) -> None:
    authorize_url = start_login(client, prompt="none").headers["location"]
    provider_client = TestClient(provider.app, base_url=ISSUER, follow_redirects=False)

    anonymous = provider_client.get(authorize_url)
    assert query(anonymous.headers["location"])["error"] == "login_required"

    form = {**query(start_login(client).headers["location"]), "username": "bob"}
    provider_client.post("/authorize", data=form)
    known = provider_client.get(start_login(client, prompt="none").headers["location"])
    assert "code" in query(known.headers["location"])
