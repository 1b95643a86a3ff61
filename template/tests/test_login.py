"""Logging in: the redirect to the provider, the callback, and the session it starts."""

import time
from collections.abc import Callable
from dataclasses import replace

import pytest
from fastapi import Request
from fastapi.testclient import TestClient

from app.auth import policy
from app.auth.cookies import CookieCipher
from app.auth.errors import LoginRefused
from app.auth.routes import MAX_LOGIN_PARAM_LENGTH
from app.auth.session_cookie import SESSION_COOKIE
from app.auth.sessions import Session
from app.auth.tokens import TokenSet
from app.auth.transactions import COOKIE_PREFIX, TRANSACTION_LIFETIME
from app.auth.urls import AUTH_PREFIX, CALLBACK_PATH, LOGIN_PATH
from devserver.provider import FakeProvider
from tests.helpers import (
    APP_URL,
    ISSUER,
    LOGOUT,
    PROFILE,
    auth_of,
    log_in,
    query,
    session_cookies,
    start_login,
    transaction_cookies,
)


def test_login_redirects_to_the_provider_with_pkce_state_and_nonce(client: TestClient) -> None:
    response = start_login(client)

    location = response.headers["location"]
    assert location.startswith(f"{ISSUER}/authorize?")
    params = query(location)
    assert params["response_type"] == "code"
    assert params["client_id"] == "dev-client"
    assert params["redirect_uri"] == f"{APP_URL}{CALLBACK_PATH}"
    assert params["scope"] == "openid profile email offline_access"
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43
    assert len(params["state"]) >= 43 and len(params["nonce"]) >= 43
    assert response.headers["cache-control"] == "no-store"


def test_each_login_attempt_gets_its_own_transaction_cookie(client: TestClient) -> None:
    first = query(start_login(client).headers["location"])
    second = query(start_login(client).headers["location"])

    assert first["state"] != second["state"] and first["nonce"] != second["nonce"]
    [cookie] = [c for c in client.cookies.jar if c.name == COOKIE_PREFIX + second["state"]]
    assert cookie.path == AUTH_PREFIX
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert not cookie.secure


def test_only_allow_listed_login_parameters_reach_the_provider(client: TestClient) -> None:
    response = start_login(
        client,
        screen_hint="signup",
        redirect_uri="https://evil.example/steal",
        client_id="someone-else",
        scope="openid admin",
    )

    params = query(response.headers["location"])
    assert params["screen_hint"] == "signup"
    assert params["redirect_uri"] == f"{APP_URL}{CALLBACK_PATH}"
    assert params["client_id"] == "dev-client"
    assert params["scope"] == "openid profile email offline_access"


def test_audience_is_sent_when_configured(client_for: Callable[..., TestClient]) -> None:
    client = client_for(auth0_audience="https://api.example")

    assert query(start_login(client).headers["location"])["audience"] == "https://api.example"


def test_login_parameters_up_to_the_size_limit_are_forwarded(client: TestClient) -> None:
    at_limit = "x" * MAX_LOGIN_PARAM_LENGTH
    params = query(start_login(client, login_hint=at_limit).headers["location"])
    assert params["login_hint"] == at_limit

    params = query(start_login(client, login_hint=at_limit + "x").headers["location"])
    assert "login_hint" not in params


def test_no_audience_is_sent_unless_configured(client: TestClient, provider: FakeProvider) -> None:
    authorize_url = start_login(client).headers["location"]
    assert "audience" not in query(authorize_url)

    assert client.get(provider.login(authorize_url)).status_code == 303
    assert "audience" not in provider.token_requests[-1]


def test_a_login_without_refresh_token_or_scope_in_the_reply_works(
    client: TestClient, provider: FakeProvider
) -> None:
    provider.token_response = {"refresh_token": None, "scope": None}  # no offline_access

    assert log_in(client, provider).status_code == 303
    assert client.get(PROFILE).json()["sub"] == "alice"
    assert client.get(LOGOUT).status_code == 303
    assert provider.revoked == []  # no refresh token to revoke


def test_discovery_and_signing_keys_are_fetched_once_for_many_logins(
    client: TestClient, provider: FakeProvider
) -> None:
    for username in ("alice", "bob", "carol"):
        assert log_in(client, provider, username).status_code == 303

    assert provider.requests.count("discovery") == 1
    assert provider.requests.count("jwks") == 1


def test_successful_login_starts_a_session_and_returns_to_the_page(
    client: TestClient, provider: FakeProvider
) -> None:
    response = log_in(client, provider, "alice", returnTo="/profile?tab=2")

    assert response.status_code == 303
    assert response.headers["location"] == "/profile?tab=2"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    [line] = session_cookies(response)
    assert "HttpOnly" in line and "SameSite=lax" in line and "Path=/" in line
    assert "Secure" not in line  # APP_BASE_URL is http://
    assert not transaction_cookies(client)

    profile = client.get(PROFILE)
    assert profile.status_code == 200
    assert profile.json() == {
        "sub": "alice",
        "name": "Alice",
        "email": "alice@example.com",
        "email_verified": True,
    }
    assert profile.headers["cache-control"] == "no-store"


def test_parallel_logins_in_two_tabs_both_complete(
    client: TestClient, provider: FakeProvider
) -> None:
    first_tab = start_login(client, returnTo="/one").headers["location"]
    second_tab = start_login(client, returnTo="/two").headers["location"]

    second = client.get(provider.login(second_tab, "alice"))
    first = client.get(provider.login(first_tab, "alice"))

    assert (second.status_code, second.headers["location"]) == (303, "/two")
    assert (first.status_code, first.headers["location"]) == (303, "/one")


def test_every_login_creates_a_fresh_session(client: TestClient, provider: FakeProvider) -> None:
    log_in(client, provider, "alice")
    first = client.cookies[SESSION_COOKIE]
    log_in(client, provider, "bob")

    assert client.cookies[SESSION_COOKIE] != first
    assert client.get(PROFILE).json()["sub"] == "bob"


def test_too_many_pending_logins_drop_the_oldest(client: TestClient) -> None:
    states = [query(start_login(client).headers["location"])["state"] for _ in range(12)]

    pending = {c.name.removeprefix(COOKIE_PREFIX) for c in transaction_cookies(client)}
    assert len(pending) == 8
    assert set(states[-8:]) == pending


def test_the_oldest_pending_login_goes_whatever_order_the_browser_sends(
    client: TestClient,
) -> None:
    states = [query(start_login(client).headers["location"])["state"] for _ in range(8)]
    pending = transaction_cookies(client)
    for cookie in pending:  # the browser now sends the newest first
        client.cookies.delete(cookie.name)
    for cookie in reversed(pending):
        client.cookies.set(cookie.name, cookie.value or "", domain=cookie.domain, path=AUTH_PREFIX)

    start_login(client)

    left = {c.name.removeprefix(COOKIE_PREFIX) for c in transaction_cookies(client)}
    assert states[0] not in left and set(states[1:]) <= left


@pytest.mark.parametrize(("age", "completes"), [(TRANSACTION_LIFETIME - 30, True),
                                                (TRANSACTION_LIFETIME + 1, False)])  # fmt: skip
def test_a_login_must_be_completed_within_its_lifetime(
    client: TestClient, provider: FakeProvider, age: int, completes: bool
) -> None:
    authorize_url = start_login(client).headers["location"]
    [cookie] = transaction_cookies(client)
    cipher = CookieCipher(auth_of(client).settings.session_secrets, "transaction")
    payload = cipher.decrypt(cookie.value or "")
    assert payload is not None
    payload["created_at"] = time.time() - age  # as if the user took that long to log in
    client.cookies.set(cookie.name, cipher.encrypt(payload), domain=cookie.domain, path=AUTH_PREFIX)

    response = client.get(provider.login(authorize_url))
    assert response.status_code == (303 if completes else 400)


def test_the_login_cookie_lives_as_long_as_the_login(client: TestClient) -> None:
    [line] = start_login(client).headers.get_list("set-cookie")

    assert f"Max-Age={TRANSACTION_LIFETIME};" in line


def test_a_login_started_before_transactions_had_a_kind_completes(
    client: TestClient, provider: FakeProvider
) -> None:
    authorize_url = start_login(client).headers["location"]
    [cookie] = transaction_cookies(client)
    cipher = CookieCipher(auth_of(client).settings.session_secrets, "transaction")
    payload = cipher.decrypt(cookie.value or "")
    assert payload is not None and payload.pop("kind") == "login"
    del payload["auth_session"]  # as written by the app before these fields existed
    client.cookies.set(cookie.name, cipher.encrypt(payload), domain=cookie.domain, path=AUTH_PREFIX)

    assert client.get(provider.login(authorize_url)).status_code == 303
    assert client.get(PROFILE).json()["sub"] == "alice"


def test_login_with_the_provider_down_shows_a_friendly_page(
    client: TestClient, provider: FakeProvider
) -> None:
    provider.reachable = "refused"

    page = client.get(f"{LOGIN_PATH}?returnTo=/profile", headers={"accept": "text/html"})
    assert page.status_code == 503
    assert "The login service is unavailable" in page.text
    assert "Traceback" not in page.text
    # "log in again" keeps the target:
    assert f'href="{LOGIN_PATH}?returnTo=%2Fprofile"' in page.text

    provider.reachable = "timeout"
    api = client.get(LOGIN_PATH)
    assert api.status_code == 504
    assert api.json()["error"] == "provider_timeout"


def test_on_login_can_keep_more_in_the_session(
    client: TestClient, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def on_login(request: Request, session: Session, tokens: TokenSet) -> Session:
        assert tokens.id_token == session.id_token
        return replace(session, user={**session.user, "user_id": 42})

    monkeypatch.setattr(policy, "on_login", on_login)
    log_in(client, provider)

    assert client.get(PROFILE).json()["user_id"] == 42


def test_on_login_can_refuse_a_login_with_a_page_that_says_why(
    client: TestClient, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def on_login(request: Request, session: Session, tokens: TokenSet) -> Session:
        raise LoginRefused("Your account is closed.")

    monkeypatch.setattr(policy, "on_login", on_login)
    authorize_url = start_login(client).headers["location"]
    page = client.get(provider.login(authorize_url), headers={"accept": "text/html"})

    assert page.status_code == 403
    assert "Your account is closed." in page.text
    assert not session_cookies(page)
    assert client.get(PROFILE).status_code == 401


@pytest.mark.parametrize(
    ("setting", "scope", "asked", "prompt"),
    [
        ("none", "openid offline_access", {}, None),  # the default: Auth0 needs no prompt
        ("consent", "openid offline_access", {}, "consent"),  # OIDC Core §11
        ("consent", "openid offline_access", {"prompt": "login"}, "login"),  # the login's own
    ],
)
def test_offline_access_asks_for_consent_when_the_setting_says(
    client_for: Callable[..., TestClient],
    setting: str,
    scope: str,
    asked: dict[str, str],
    prompt: str | None,
) -> None:
    client = client_for(auth0_offline_access_prompt=setting, auth0_scope=scope)

    params = query(start_login(client, **asked).headers["location"])

    assert params.get("prompt") == prompt


@pytest.mark.parametrize(
    ("opened", "configured"), [("localhost", "127.0.0.1"), ("127.0.0.1", "localhost")]
)
def test_a_login_at_the_other_name_of_this_machine_says_which_address_to_use(
    client_for: Callable[..., TestClient], provider: FakeProvider, opened: str, configured: str
) -> None:
    """Not "your login expired" after the provider: the cookies would stay with `opened`."""
    client = client_for(app_base_url=f"http://{configured}:8000")

    page = client.get(
        f"http://{opened}:8000{LOGIN_PATH}?returnTo=/profile", headers={"Accept": "text/html"}
    )

    assert page.status_code == 400
    assert f"http://{configured}:8000 (APP_BASE_URL)" in page.text
    assert f"opened at http://{opened}:8000" in page.text
    assert f'href="http://{configured}:8000{LOGIN_PATH}?returnTo=/profile"' in page.text
    assert "authorize" not in provider.requests
    assert client.get(f"http://{configured}:8000{LOGIN_PATH}").status_code == 303


@pytest.mark.parametrize("host", ["[", "127.0.0.1:99999", "[::1", "a:b:c"])
def test_a_login_with_a_host_header_that_does_not_parse_still_starts(
    client: TestClient, host: str
) -> None:
    assert client.get(LOGIN_PATH, headers={"Host": host}).status_code == 303
