"""Connected Accounts for Token Vault: /auth/connect, its callback, and the helpers for routes,
against the fake My Account API and Token Vault exchange."""

from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any

import httpx2
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import ValidationError
from starlette.responses import Response

from app.auth import AccessToken
from app.auth.connected_accounts import (
    connect_url,
    connection_token,
    delete_connected_account,
    get_connection_token,
    list_connected_accounts,
)
from app.auth.urls import AUTH_PREFIX, CALLBACK_PATH
from app.config import Settings
from app.main import create_app
from devserver.connected_accounts import ConnectedAccount, ConnectedAccountsProvider
from tests.conftest import make_settings
from tests.helpers import (
    APP_URL,
    ISSUER,
    LOGOUT,
    PROFILE,
    install_session,
    log_in,
    make_session,
    query,
    stored_session,
    transaction_cookies,
)

CONNECT = f"{AUTH_PREFIX}/connect"
GOOGLE = "google-oauth2"
MY_ACCOUNT = f"{ISSUER}/me/"
VAULT_GRANT = "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token"


@pytest.fixture
def app(settings: Settings, provider: ConnectedAccountsProvider) -> FastAPI:
    """The app, with routes that use the helpers as your routes would."""
    app = create_app(settings, provider_transport=provider.transport)

    @app.get("/accounts")
    async def accounts(request: Request, connection: str | None = None) -> list[dict[str, Any]]:
        found = await list_connected_accounts(request, connection=connection)
        return [asdict(account) for account in found]

    @app.post("/accounts/delete")
    async def delete(request: Request, account_id: str) -> dict[str, str]:
        await delete_connected_account(request, account_id)
        return {"deleted": account_id}

    @app.get("/tokens/{connection}")
    async def token(request: Request, connection: str) -> dict[str, Any]:
        found = await get_connection_token(request, connection)
        return {"token": found.token, "scope": found.scope, "expires_at": found.expires_at}

    @app.get("/calendar")
    async def calendar(
        token: Annotated[AccessToken, Depends(connection_token(GOOGLE))],
    ) -> dict[str, str]:
        return {"token": token.token}

    return app


def start(client: TestClient, **params: Any) -> str:
    """GET /auth/connect; return the consent URL it redirects to."""
    response = client.get(CONNECT, params={"connection": GOOGLE, **params})
    assert response.status_code == 303, response.text
    return response.headers["location"]


def connect(
    client: TestClient,
    provider: ConnectedAccountsProvider,
    username: str = "alice@gmail.example",
    **params: Any,
) -> httpx2.Response:
    """Connect an account (Google by default) all the way; return the app's last answer."""
    return client.get(provider.connect(start(client, **params), username))


def refreshes(provider: ConnectedAccountsProvider) -> list[dict[str, str]]:
    return [f for f in provider.token_requests if f["grant_type"] == "refresh_token"]


def exchanges(provider: ConnectedAccountsProvider) -> list[dict[str, str]]:
    return [f for f in provider.token_requests if f["grant_type"] == VAULT_GRANT]


def error_of(response: httpx2.Response) -> str:
    error = response.json()["error"]
    assert isinstance(error, str)
    return error


# -- /auth/connect and the callback ---------------------------------------------------


def test_connect_gets_a_my_account_token_and_redirects_to_the_consent(
    logged_in: TestClient, provider: ConnectedAccountsProvider
) -> None:
    location = start(logged_in, scopes=["openid", "https://www.googleapis.com/auth/gmail.readonly"])

    [refresh] = refreshes(provider)
    assert refresh["audience"] == MY_ACCOUNT
    assert refresh["scope"] == "create:me:connected_accounts"
    [body] = provider.connect_requests
    assert body["connection"] == GOOGLE
    assert body["redirect_uri"] == f"{APP_URL}{CALLBACK_PATH}"
    assert body["scopes"] == ["openid", "https://www.googleapis.com/auth/gmail.readonly"]
    assert body["code_challenge_method"] == "S256" and len(body["code_challenge"]) == 43
    assert body["state"]
    assert location.startswith(f"{ISSUER}/connect?ticket=")
    assert provider.requests[-1] == "connect"


def test_connect_sends_no_scopes_unless_asked(
    logged_in: TestClient, provider: ConnectedAccountsProvider
) -> None:
    start(logged_in)

    assert "scopes" not in provider.connect_requests[-1]


def test_connecting_an_account(logged_in: TestClient, provider: ConnectedAccountsProvider) -> None:
    before = stored_session(logged_in)

    response = connect(logged_in, provider, returnTo="/settings?tab=accounts")

    assert response.status_code == 303
    assert response.headers["location"] == "/settings?tab=accounts"
    assert response.headers["cache-control"] == "no-store"
    [account] = provider.accounts_of("alice")
    assert (account.connection, account.username) == (GOOGLE, "alice@gmail.example")
    [connect_body] = provider.connect_requests
    [complete] = provider.complete_requests
    assert complete["redirect_uri"] == f"{APP_URL}{CALLBACK_PATH}"
    assert create_s256_code_challenge(complete["code_verifier"]) == connect_body["code_challenge"]
    after = stored_session(logged_in)
    assert after is not None and before is not None
    assert after.login_id == before.login_id and after.user == before.user
    assert len(refreshes(provider)) == 1  # the My Account token was kept for the completion


def test_the_callback_takes_the_state_that_was_sent(
    logged_in: TestClient, provider: ConnectedAccountsProvider
) -> None:
    callback = provider.connect(start(logged_in), "alice@gmail.example")

    assert query(callback)["state"] == provider.connect_requests[-1]["state"]
    assert "connect_code" in query(callback)


def test_logging_in_still_works_through_the_shared_callback(
    client: TestClient, provider: ConnectedAccountsProvider
) -> None:
    assert log_in(client, provider, returnTo="/profile").headers["location"] == "/profile"
    assert client.get(PROFILE).json()["sub"] == "alice"


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"connection": ""},
        {"connection": "../me/v1/connected-accounts/accounts"},
        {"connection": "google oauth2"},
        {"connection": "g" * 129},
        {"connection": GOOGLE, "scopes": [""]},
        {"connection": GOOGLE, "scopes": ["s" * 600]},
        {"connection": GOOGLE, "scopes": [f"s{i}" for i in range(51)]},
    ],
)
def test_bad_connect_requests_are_refused(logged_in: TestClient, params: dict[str, Any]) -> None:
    response = logged_in.get(CONNECT, params=params)

    assert response.status_code == 400
    assert error_of(response) == "invalid_request"


def test_anonymous_browsers_log_in_first(client: TestClient) -> None:
    response = client.get(f"{CONNECT}?connection=github", headers={"accept": "text/html"})

    assert response.status_code == 303
    assert query(response.headers["location"])["returnTo"] == f"{CONNECT}?connection=github"


def test_anonymous_api_clients_get_401(client: TestClient) -> None:
    response = client.get(f"{CONNECT}?connection=github")

    assert response.status_code == 401
    assert error_of(response) == "unauthorized"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example", "/%2F%2Fevil"])
def test_return_to_stays_on_the_site(
    logged_in: TestClient, provider: ConnectedAccountsProvider, target: str
) -> None:
    assert connect(logged_in, provider, returnTo=target).headers["location"] == "/"


def test_a_refused_consent_is_shown(
    logged_in: TestClient, provider: ConnectedAccountsProvider
) -> None:
    callback = provider.connect(start(logged_in), allow=False)

    response = logged_in.get(callback)

    assert response.status_code == 400
    assert error_of(response) == "login_failed"
    assert "access_denied" in response.json()["error_description"]
    assert provider.accounts == [] and provider.complete_requests == []


def test_the_api_refuses_an_unknown_connection(
    logged_in: TestClient, provider: ConnectedAccountsProvider
) -> None:
    response = logged_in.get(CONNECT, params={"connection": "unknown-connection"})

    assert response.status_code == 400
    assert error_of(response) == "my_account_error"
    assert "(A0E-400-0001): Invalid request." in response.json()["error_description"]
    assert not transaction_cookies(logged_in)


def test_the_api_refuses_the_apps_token(
    logged_in: TestClient, provider: ConnectedAccountsProvider
) -> None:
    # As when the application's access to the My Account API lacks a scope at Auth0.
    provider.replies["connect"] = Response(
        '{"type": "https://auth0.com/api-errors/A0E-403-0001", "status": 403,'
        ' "title": "Forbidden", "detail": "Insufficient scope."}',
        403,
        media_type="application/problem+json",
    )

    response = logged_in.get(CONNECT, params={"connection": GOOGLE})

    assert response.status_code == 502
    assert response.json() == {
        "error": "my_account_error",
        "error_description": "The account service refused to start connecting "
        "(A0E-403-0001): Insufficient scope.",
    }


def test_my_account_errors_get_a_page_with_the_code(
    logged_in: TestClient, provider: ConnectedAccountsProvider
) -> None:
    page = logged_in.get(CONNECT, params={"connection": "nope"}, headers={"accept": "text/html"})

    assert page.status_code == 400
    assert page.headers["content-type"].startswith("text/html")
    assert "Connected accounts problem" in page.text
    assert "A0E-400-0001" in page.text and "my_account_error" in page.text


@pytest.mark.parametrize(
    ("reply", "status", "error"),
    [
        (Response("", 500), 503, "provider_unavailable"),
        (Response("", 429), 503, "provider_unavailable"),
        (Response("<html>", 201), 502, "bad_provider_response"),
        (Response('{"connect_uri": "javascript:alert(1)"}', 201), 502, "bad_provider_response"),
        (Response("not json", 400), 502, "bad_provider_response"),
        (Response("x" * 300_000, 201), 502, "bad_provider_response"),
        (
            Response('{"error": "invalid_token", "error_description": "Expired."}', 401),
            502,
            "my_account_error",
        ),
    ],
)
def test_broken_answers_of_the_my_account_api(
    logged_in: TestClient,
    provider: ConnectedAccountsProvider,
    reply: Response,
    status: int,
    error: str,
) -> None:
    provider.replies["connect"] = reply

    response = logged_in.get(CONNECT, params={"connection": GOOGLE})

    assert response.status_code == status
    assert error_of(response) == error


def test_a_refused_refresh_at_the_start_ends_the_session(
    logged_in: TestClient, provider: ConnectedAccountsProvider
) -> None:
    provider.forget_refresh_tokens()

    response = logged_in.get(CONNECT, params={"connection": GOOGLE})

    assert response.status_code == 401
    assert error_of(response) == "session_ended"
    assert logged_in.get(PROFILE).status_code == 401


def test_a_token_without_the_scope_is_refused(
    logged_in: TestClient, provider: ConnectedAccountsProvider
) -> None:
    provider.token_response = {"scope": "read:me:connected_accounts"}  # not what was asked

    response = logged_in.get(CONNECT, params={"connection": GOOGLE})

    assert response.status_code == 403
    assert error_of(response) == "forbidden"


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        (lambda url: url.replace("connect_code=", "connect_code=x"), 400, "my_account_error"),
        (
            lambda url: url.split("&connect_code=")[0].split("?connect_code=")[0],
            400,
            "invalid_request",
        ),
        (lambda url: url + "&iss=https%3A%2F%2Fevil.example", 400, "invalid_request"),
        (lambda url: url + "&connect_code=again", 400, "invalid_request"),
        (lambda url: url + "&connect_code=" + "x" * 300, 400, "invalid_request"),
    ],
)
def test_bad_connect_callbacks_are_refused(
    logged_in: TestClient,
    provider: ConnectedAccountsProvider,
    change: Callable[[str], str],
    status: int,
    error: str,
) -> None:
    callback = provider.connect(start(logged_in), "alice@gmail.example")

    response = logged_in.get(change(callback))

    assert response.status_code == status, response.text
    assert error_of(response) == error
    assert provider.accounts == []


def test_the_completion_is_checked_by_the_api(
    logged_in: TestClient, provider: ConnectedAccountsProvider
) -> None:
    callback = provider.connect(start(logged_in), "alice@gmail.example")
    provider.replies["complete"] = Response(
        '{"type": "https://auth0.com/api-errors/A0E-400-0042", "status": 400,'
        ' "title": "Bad Request", "detail": "The connect code has expired."}',
        400,
        media_type="application/problem+json",
    )

    response = logged_in.get(callback)

    assert response.status_code == 400
    assert response.json() == {
        "error": "my_account_error",
        "error_description": "The account service refused to connect the account "
        "(A0E-400-0042): The connect code has expired.",
    }


def test_a_callback_works_once(logged_in: TestClient, provider: ConnectedAccountsProvider) -> None:
    callback = provider.connect(start(logged_in), "alice@gmail.example")
    assert logged_in.get(callback).status_code == 303

    again = logged_in.get(callback)

    assert again.status_code == 303 and again.headers["location"] == "/"
    assert len(provider.complete_requests) == 1


def test_an_unknown_state_is_refused(client: TestClient) -> None:
    response = client.get(CALLBACK_PATH, params={"connect_code": "c", "state": "A" * 43})

    assert response.status_code == 400
    assert error_of(response) == "login_expired"


def test_the_session_must_still_be_there_at_the_callback(
    logged_in: TestClient, provider: ConnectedAccountsProvider
) -> None:
    callback = provider.connect(start(logged_in), "alice@gmail.example")
    logged_in.get(LOGOUT)

    response = logged_in.get(callback)

    assert response.status_code == 401
    assert provider.accounts == []


def test_a_connect_transaction_cannot_finish_a_login(
    logged_in: TestClient, provider: ConnectedAccountsProvider
) -> None:
    callback = provider.connect(start(logged_in), "alice@gmail.example")

    response = logged_in.get(callback.replace("connect_code=", "code="))

    assert response.status_code == 400
    assert error_of(response) == "invalid_request"
    assert provider.complete_requests == []


def test_the_my_account_api_sees_another_user(
    logged_in: TestClient, provider: ConnectedAccountsProvider
) -> None:
    callback = provider.connect(start(logged_in), "alice@gmail.example")
    logged_in.get(LOGOUT)
    log_in(logged_in, provider, "bob")  # the same browser, now bob's, finishes alice's request

    response = logged_in.get(callback)

    assert response.status_code == 400
    assert error_of(response) == "my_account_error"
    assert provider.accounts == []


# -- the helpers: list, delete, connection tokens ---------------------------------------


def test_listing_connected_accounts(
    logged_in: TestClient, provider: ConnectedAccountsProvider
) -> None:
    connect(logged_in, provider)
    logged_in.get(provider.connect(start(logged_in, connection="github"), "alice-gh"))

    everything = logged_in.get("/accounts").json()
    github = logged_in.get("/accounts", params={"connection": "github"}).json()

    assert [a["connection"] for a in everything] == [GOOGLE, "github"]
    assert everything[0]["scopes"] == provider.connections[GOOGLE]
    assert everything[0]["id"].startswith("cac_") and everything[0]["created_at"]
    assert [a["connection"] for a in github] == ["github"]
    read = [f for f in refreshes(provider) if f["scope"] == "read:me:connected_accounts"]
    assert len(read) == 1 and read[0]["audience"] == MY_ACCOUNT


def test_listing_reads_every_page(
    logged_in: TestClient, provider: ConnectedAccountsProvider
) -> None:
    provider.accounts = [
        ConnectedAccount(f"cac_{i}", "alice", GOOGLE, f"alice{i}", ["openid"]) for i in range(45)
    ]

    accounts = logged_in.get("/accounts").json()

    assert [a["id"] for a in accounts] == [f"cac_{i}" for i in range(45)]
    assert provider.requests.count("accounts") == 3


def test_listing_needs_a_login(client: TestClient) -> None:
    assert client.get("/accounts").status_code == 401


def test_a_malformed_list_is_refused(
    logged_in: TestClient, provider: ConnectedAccountsProvider
) -> None:
    provider.replies["accounts"] = Response('{"accounts": [{"id": 42}]}', 200)

    response = logged_in.get("/accounts")

    assert response.status_code == 502
    assert error_of(response) == "bad_provider_response"


def test_deleting_a_connected_account(
    logged_in: TestClient, provider: ConnectedAccountsProvider
) -> None:
    connect(logged_in, provider)
    [account] = provider.accounts

    response = logged_in.post("/accounts/delete", params={"account_id": account.id})

    assert response.json() == {"deleted": account.id}
    assert provider.accounts == []
    deletes = [f for f in refreshes(provider) if f["scope"] == "delete:me:connected_accounts"]
    assert len(deletes) == 1


def test_deleting_an_unknown_account(
    logged_in: TestClient, provider: ConnectedAccountsProvider
) -> None:
    connect(logged_in, provider)

    response = logged_in.post("/accounts/delete", params={"account_id": "cac_unknown"})

    assert response.status_code == 400
    assert error_of(response) == "my_account_error"
    assert "A0E-404-0001" in response.json()["error_description"]
    assert len(provider.accounts) == 1


@pytest.mark.parametrize("account_id", ["../../../userinfo", "a/b?c#d", "", "c" * 129])
def test_account_ids_cannot_change_the_api_path(
    logged_in: TestClient, provider: ConnectedAccountsProvider, account_id: str
) -> None:
    response = logged_in.post("/accounts/delete", params={"account_id": account_id})

    assert response.status_code == 400
    assert error_of(response) == "invalid_request"
    assert "delete_account" not in provider.requests


def test_a_connection_token_from_the_token_vault(
    logged_in: TestClient, provider: ConnectedAccountsProvider
) -> None:
    connect(logged_in, provider)
    session = stored_session(logged_in)

    first = logged_in.get(f"/tokens/{GOOGLE}").json()
    second = logged_in.get(f"/tokens/{GOOGLE}").json()

    assert first == second  # kept in the session
    assert provider.connection_tokens[first["token"]].connection == GOOGLE
    assert first["scope"] == " ".join(provider.connections[GOOGLE])
    assert session is not None
    [exchange] = exchanges(provider)
    assert exchange == {
        "grant_type": VAULT_GRANT,
        "subject_token_type": "urn:ietf:params:oauth:token-type:refresh_token",
        "subject_token": session.refresh_token,
        "connection": GOOGLE,
        "requested_token_type": "http://auth0.com/oauth/token-type/federated-connection-access-token",
    }


def test_a_connection_token_as_a_dependency(
    logged_in: TestClient, provider: ConnectedAccountsProvider
) -> None:
    connect(logged_in, provider)

    token = logged_in.get("/calendar").json()["token"]

    assert provider.connection_tokens[token].username == "alice@gmail.example"


def test_connection_tokens_are_kept_per_connection_and_renewed(
    logged_in: TestClient, provider: ConnectedAccountsProvider
) -> None:
    provider.connection_token_ttl = 30  # within the refresh leeway from the start
    connect(logged_in, provider)
    logged_in.get(provider.connect(start(logged_in, connection="github"), "alice-gh"))

    google = logged_in.get(f"/tokens/{GOOGLE}").json()["token"]
    github = logged_in.get("/tokens/github").json()["token"]
    renewed = logged_in.get(f"/tokens/{GOOGLE}").json()["token"]

    assert len({google, github, renewed}) == 3
    assert [f["connection"] for f in exchanges(provider)] == [GOOGLE, "github", GOOGLE]


def test_without_a_connected_account(
    logged_in: TestClient, provider: ConnectedAccountsProvider
) -> None:
    response = logged_in.get("/tokens/github")

    assert response.status_code == 403
    assert response.json() == {
        "error": "account_not_connected",
        "error_description": "Connect your github account to use this page.",
    }


def test_a_deleted_account_gives_no_more_tokens(
    logged_in: TestClient, provider: ConnectedAccountsProvider
) -> None:
    connect(logged_in, provider)
    assert logged_in.get(f"/tokens/{GOOGLE}").status_code == 200
    logged_in.post("/accounts/delete", params={"account_id": provider.accounts[0].id})

    response = logged_in.get(f"/tokens/{GOOGLE}")

    assert error_of(response) == "account_not_connected"
    assert len(exchanges(provider)) == 2  # the kept token was dropped with the account


@pytest.mark.parametrize(
    ("reply", "status", "error"),
    [
        (Response('{"error": "unauthorized_client"}', 403), 502, "bad_provider_response"),
        (Response('{"error": "invalid_grant"}', 400), 502, "bad_provider_response"),
        (Response("", 503), 503, "provider_unavailable"),
    ],
)
def test_token_vault_failures(
    logged_in: TestClient,
    provider: ConnectedAccountsProvider,
    reply: Response,
    status: int,
    error: str,
) -> None:
    connect(logged_in, provider)
    provider.replies["token"] = reply

    response = logged_in.get(f"/tokens/{GOOGLE}")

    assert response.status_code == status
    assert error_of(response) == error
    assert logged_in.get(PROFILE).status_code == 200


def test_a_token_of_another_type_is_refused(
    logged_in: TestClient, provider: ConnectedAccountsProvider
) -> None:
    connect(logged_in, provider)
    provider.token_response = {"issued_token_type": "urn:ietf:params:oauth:token-type:access_token"}

    assert logged_in.get(f"/tokens/{GOOGLE}").status_code == 502


def test_a_connection_token_needs_a_refresh_token(client: TestClient) -> None:
    install_session(client, make_session(refresh_token=None))

    response = client.get(f"/tokens/{GOOGLE}")

    assert response.status_code == 401


def test_a_bad_connection_name_is_refused(logged_in: TestClient) -> None:
    assert logged_in.get("/tokens/bad_name!").status_code == 400
    assert logged_in.get("/accounts", params={"connection": "a b"}).status_code == 400


def test_the_login_must_ask_for_a_refresh_token(provider: ConnectedAccountsProvider) -> None:
    with pytest.raises(ValidationError, match="must include offline_access"):
        make_settings(provider, auth0_scope="openid profile email")


def test_connect_url() -> None:
    url = connect_url(GOOGLE, return_to="//evil.example", scopes=("openid", "email"))

    assert url == f"{CONNECT}?connection=google-oauth2&scopes=openid&scopes=email&returnTo=%2F"


def test_the_refreshed_session_is_kept_by_later_changes(
    client: TestClient, provider: ConnectedAccountsProvider
) -> None:
    provider.token_ttl = 30  # every access token needs a refresh at its first use
    log_in(client, provider)
    connect(client, provider)
    rotated = stored_session(client)

    assert client.get(f"/tokens/{GOOGLE}").status_code == 200

    after = stored_session(client)
    assert after is not None and rotated is not None
    assert after.refresh_token == rotated.refresh_token  # never an older, spent one
    assert client.get("/accounts").status_code == 200  # which the provider still takes


def test_a_connect_link_on_another_site_asks_first(
    logged_in: TestClient, provider: ConnectedAccountsProvider
) -> None:
    page = logged_in.get(
        CONNECT, params={"connection": GOOGLE}, headers={"Referer": "https://evil.example/"}
    )

    assert page.status_code == 200 and f"Connect your account at {GOOGLE}?" in page.text
    assert provider.connect_requests == []
    assert logged_in.post(CONNECT, params={"connection": GOOGLE}).status_code == 303
    assert (
        logged_in.post(
            CONNECT, params={"connection": GOOGLE}, headers={"Sec-Fetch-Site": "cross-site"}
        ).status_code
        == 403
    )
