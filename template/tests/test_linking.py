"""Account linking (legacy): /auth/connect and /auth/unconnect, against the fake Action."""

import time
from collections.abc import Callable
from dataclasses import replace

import httpx2
import pytest
from fastapi.testclient import TestClient
from starlette.responses import Response

from app.auth.linking import CALLBACK_PATHS, LINK, UNLINK
from app.auth.sessions import AccessToken
from app.auth.urls import AUTH_PREFIX, CALLBACK_PATH, LOGIN_PATH
from devserver.linking import LinkingProvider
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
)

CONNECT = f"{AUTH_PREFIX}/connect"
UNCONNECT = f"{AUTH_PREFIX}/unconnect"

GOOGLE = "google-oauth2"


def start(client: TestClient, route: str = CONNECT, **params: str) -> str:
    """GET the route; return the authorization URL it redirects to."""
    response = client.get(route, params=params)
    assert response.status_code == 303, response.text
    return response.headers["location"]


def link(
    client: TestClient, provider: LinkingProvider, username: str = "alice-google", **params: str
) -> httpx2.Response:
    """Link `username` at `connection` (Google by default); return the app's answer."""
    authorize_url = start(client, **{"connection": GOOGLE, **params})
    return client.get(provider.login(authorize_url, username))


def unlink(
    client: TestClient, provider: LinkingProvider, username: str = "alice", **params: str
) -> httpx2.Response:
    authorize_url = start(client, UNCONNECT, **{"connection": GOOGLE, **params})
    return client.get(provider.login(authorize_url, username))


def test_connect_asks_the_provider_to_link_with_the_session_id_token(
    logged_in: TestClient, provider: LinkingProvider
) -> None:
    session = stored_session(logged_in)

    url = query(start(logged_in, connection=GOOGLE, connectionScope="email profile"))

    # Pushed (PAR), so that the ID token never appears in the browser's URL or history.
    assert set(url) == {"client_id", "request_uri"}
    params = provider.pushed_requests[-1]
    assert session is not None
    assert params["scope"] == "openid link_account"
    assert params["requested_connection"] == GOOGLE
    assert params["requested_connection_scope"] == "email profile"
    assert params["id_token_hint"] == session.id_token
    assert params["redirect_uri"] == APP_URL + CALLBACK_PATHS[LINK]
    assert params["code_challenge_method"] == "S256" and params["code_challenge"]
    assert params["state"] and params["nonce"]
    assert params["response_type"] == "code"


def test_the_connection_scope_is_sent_only_when_given(logged_in: TestClient) -> None:
    assert "requested_connection_scope" not in query(start(logged_in, connection=GOOGLE))


def test_linking_asks_for_no_api(
    client_for: Callable[..., TestClient], provider: LinkingProvider
) -> None:
    client = client_for(auth0_audience="https://api.example")
    assert client.get(provider.login(client.get(LOGIN_PATH).headers["location"])).is_redirect

    assert "audience" not in query(start(client, connection=GOOGLE))


def test_linking_keeps_the_session_and_updates_its_user(
    logged_in: TestClient, provider: LinkingProvider
) -> None:
    before = stored_session(logged_in)
    provider.users["alice"] = {"name": "Alice (with Google)"}

    response = link(logged_in, provider, returnTo="/profile?tab=accounts")

    assert response.status_code == 303
    assert response.headers["location"] == "/profile?tab=accounts"
    assert response.headers["cache-control"] == "no-store"
    assert provider.linked("alice") == [(GOOGLE, "alice-google")]
    after = stored_session(logged_in)
    assert after is not None and before is not None
    assert after.user["name"] == "Alice (with Google)"
    assert after.id_token != before.id_token
    assert (after.login_id, after.created_at, after.sid) == (
        before.login_id,
        before.created_at,
        before.sid,
    )
    assert after.access_tokens == before.access_tokens  # the linking asked for no API
    assert after.refresh_token == before.refresh_token
    [exchange] = [f for f in provider.token_requests if f["grant_type"] == "authorization_code"][1:]
    assert exchange["redirect_uri"] == APP_URL + CALLBACK_PATHS[LINK]


def test_unlinking_removes_the_identity(logged_in: TestClient, provider: LinkingProvider) -> None:
    link(logged_in, provider)
    authorize_url = start(logged_in, UNCONNECT, connection=GOOGLE, connectionScope="x")
    params = provider.pushed_requests[-1]  # pushed, as every link request (PAR)

    response = logged_in.get(provider.login(authorize_url, "alice"))

    assert response.status_code == 303 and response.headers["location"] == "/"
    assert params["scope"] == "openid unlink_account"
    assert params["redirect_uri"] == APP_URL + CALLBACK_PATHS[UNLINK]
    assert "requested_connection_scope" not in params
    assert provider.linked("alice") == []
    assert logged_in.get(PROFILE).json()["sub"] == "alice"


@pytest.mark.parametrize("route", [CONNECT, UNCONNECT])
@pytest.mark.parametrize("connection", [None, "", "../admin", "-google", "g" * 129, "a b"])
def test_a_connection_name_is_required(
    logged_in: TestClient, route: str, connection: str | None
) -> None:
    params = {} if connection is None else {"connection": connection}

    response = logged_in.get(route, params=params, headers={"accept": "application/json"})

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_an_oversized_connection_scope_is_refused(logged_in: TestClient) -> None:
    response = logged_in.get(CONNECT, params={"connection": GOOGLE, "connectionScope": "s" * 2000})

    assert response.status_code == 400


@pytest.mark.parametrize("route", [CONNECT, UNCONNECT])
def test_anonymous_browsers_log_in_first(client: TestClient, route: str) -> None:
    response = client.get(route, params={"connection": GOOGLE}, headers={"accept": "text/html"})

    assert response.status_code == 303
    assert query(response.headers["location"])["returnTo"] == f"{route}?connection={GOOGLE}"


@pytest.mark.parametrize("route", [CONNECT, UNCONNECT])
def test_anonymous_api_clients_get_401(client: TestClient, route: str) -> None:
    response = client.get(route, params={"connection": GOOGLE})

    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example", "/\\evil.example"])
def test_return_to_stays_on_the_site(
    logged_in: TestClient, provider: LinkingProvider, target: str
) -> None:
    assert link(logged_in, provider, returnTo=target).headers["location"] == "/"
    assert unlink(logged_in, provider, returnTo=target).headers["location"] == "/"


def test_a_refusal_of_the_provider_is_shown_and_changes_nothing(
    logged_in: TestClient, provider: LinkingProvider
) -> None:
    before = stored_session(logged_in)

    response = unlink(logged_in, provider)  # nothing is linked at Google yet

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "login_failed"
    assert "access_denied" in body["error_description"]
    assert "no identity" in body["error_description"]
    assert stored_session(logged_in) == before


def test_tokens_are_refreshed_after_linking(
    logged_in: TestClient, provider: LinkingProvider
) -> None:
    """Linking replaces the session's ID token and keeps its refresh token, whose refreshes
    bring ID tokens of the first login (another nonce): they are taken all the same."""
    assert link(logged_in, provider).status_code == 303
    session = stored_session(logged_in)
    assert session is not None
    due = AccessToken("due", int(time.time()) - 1, session.access_tokens[0].scope, None)
    install_session(logged_in, replace(session, access_tokens=(due,)))

    assert logged_in.get("/api-example", headers={"Accept": "application/json"}).status_code == 200
    assert provider.token_requests[-1]["grant_type"] == "refresh_token"


def test_an_expired_id_token_cannot_link(client: TestClient, provider: LinkingProvider) -> None:
    # Auth0's Action refuses an expired id_token_hint.
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": provider.client_id, "sub": "alice", "iat": now - 7200}
    install_session(client, make_session(id_token=provider.sign({**claims, "exp": now - 3600})))

    response = link(client, provider)

    assert response.status_code == 400
    assert "id_token_hint" in response.json()["error_description"]
    assert provider.linked("alice") == []


def test_an_id_token_about_another_user_is_refused(
    logged_in: TestClient, provider: LinkingProvider
) -> None:
    before = stored_session(logged_in)
    provider.id_token_claims = {"sub": "mallory"}

    response = link(logged_in, provider)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_token"
    assert stored_session(logged_in) == before


def test_the_session_must_still_be_there_at_the_callback(
    logged_in: TestClient, provider: LinkingProvider
) -> None:
    callback = provider.login(start(logged_in, connection=GOOGLE), "alice-google")
    logged_in.get(LOGOUT)

    response = logged_in.get(callback)

    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert logged_in.get(PROFILE).status_code == 401


def test_a_callback_works_once(logged_in: TestClient, provider: LinkingProvider) -> None:
    callback = provider.login(start(logged_in, connection=GOOGLE), "alice-google")
    assert logged_in.get(callback).status_code == 303

    again = logged_in.get(callback)  # the transaction is gone: home, for a logged-in user

    assert again.status_code == 303 and again.headers["location"] == "/"


def test_an_unknown_state_is_refused(client: TestClient) -> None:
    response = client.get(CALLBACK_PATHS[LINK], params={"code": "x", "state": "A" * 43})

    assert response.status_code == 400
    assert response.json()["error"] == "login_expired"


@pytest.mark.parametrize(
    ("started", "callback_path"),
    [
        (CONNECT, CALLBACK_PATH),
        (CONNECT, CALLBACK_PATHS[UNLINK]),
        (UNCONNECT, CALLBACK_PATHS[LINK]),
    ],
)
def test_a_transaction_finishes_only_its_own_flow(
    logged_in: TestClient, provider: LinkingProvider, started: str, callback_path: str
) -> None:
    before = stored_session(logged_in)
    callback = provider.login(start(logged_in, started, connection=GOOGLE), "alice")
    moved = callback.replace(CALLBACK_PATHS[LINK], callback_path).replace(
        CALLBACK_PATHS[UNLINK], callback_path
    )

    response = logged_in.get(moved)

    assert response.headers["location"] == "/"  # as for an unknown transaction
    assert stored_session(logged_in) == before


def test_a_login_transaction_cannot_finish_a_link(
    logged_in: TestClient, provider: LinkingProvider
) -> None:
    callback = provider.login(logged_in.get(LOGIN_PATH).headers["location"], "alice")

    response = logged_in.get(callback.replace(CALLBACK_PATH, CALLBACK_PATHS[LINK]))

    assert response.headers["location"] == "/"
    assert provider.linked("alice") == []


@pytest.mark.parametrize(
    ("reply", "status", "error"),
    [
        (
            Response('{"error": "invalid_grant"}', 400, media_type="application/json"),
            400,
            "login_failed",
        ),
        (Response("", 500), 503, "provider_unavailable"),
        (Response("<html>", 200), 502, "bad_provider_response"),
    ],
)
def test_token_endpoint_failures(
    logged_in: TestClient, provider: LinkingProvider, reply: Response, status: int, error: str
) -> None:
    before = stored_session(logged_in)
    callback = provider.login(start(logged_in, connection=GOOGLE), "alice-google")
    provider.replies["token"] = reply

    response = logged_in.get(callback)

    assert response.status_code == status
    assert response.json()["error"] == error
    assert stored_session(logged_in) == before


def test_a_response_from_another_issuer_is_refused(
    logged_in: TestClient, provider: LinkingProvider
) -> None:
    callback = provider.login(start(logged_in, connection=GOOGLE), "alice-google")

    response = logged_in.get(callback.replace("iss=https", "iss=http"))

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_the_provider_down_at_the_start(
    client_for: Callable[..., TestClient], provider: LinkingProvider
) -> None:
    client = client_for()  # an app that has not read the provider's metadata yet
    install_session(client, make_session())
    provider.reachable = "refused"

    response = client.get(CONNECT, params={"connection": GOOGLE})

    assert response.status_code == 503
    assert response.json()["error"] == "provider_unavailable"


def test_linking_with_pushed_authorization_requests(
    client_for: Callable[..., TestClient], provider: LinkingProvider
) -> None:
    client = client_for(auth0_use_par=True)
    client.get(provider.login(client.get(LOGIN_PATH).headers["location"]))

    authorize_url = start(client, connection=GOOGLE)
    response = client.get(provider.login(authorize_url, "alice-google"))

    assert set(query(authorize_url)) == {"client_id", "request_uri"}
    pushed = provider.pushed_requests[-1]
    assert pushed["scope"] == "openid link_account"
    assert pushed["requested_connection"] == GOOGLE
    assert response.status_code == 303
    assert provider.linked("alice") == [(GOOGLE, "alice-google")]


def test_error_pages_for_browsers_are_html(
    logged_in: TestClient, provider: LinkingProvider
) -> None:
    authorize_url = start(logged_in, UNCONNECT, connection=GOOGLE)

    page = logged_in.get(provider.login(authorize_url, "alice"), headers={"accept": "text/html"})

    assert page.status_code == 400
    assert page.headers["content-type"].startswith("text/html")
    assert "login_failed" in page.text


@pytest.mark.parametrize("route", [CONNECT, UNCONNECT])
def test_a_link_on_another_site_asks_first(
    logged_in: TestClient, provider: LinkingProvider, route: str
) -> None:
    provider.requests.clear()
    headers = {"Sec-Fetch-Site": "cross-site"}

    page = logged_in.get(route, params={"connection": GOOGLE}, headers=headers)

    assert page.status_code == 200 and f"your account at {GOOGLE}?" in page.text
    assert provider.requests == []  # nothing started at the provider
    confirmed = logged_in.post(f"{route}?connection={GOOGLE}", headers={"Origin": APP_URL})
    assert confirmed.status_code == 303 and confirmed.headers["location"].startswith(ISSUER)


def test_without_par_the_link_request_goes_in_the_url(
    client: TestClient, provider: LinkingProvider
) -> None:
    provider.metadata = {"pushed_authorization_request_endpoint": None}
    assert log_in(client, provider).status_code == 303
    session = stored_session(client)

    params = query(start(client, connection=GOOGLE))

    assert session is not None and params["id_token_hint"] == session.id_token
    assert provider.pushed_requests == []
