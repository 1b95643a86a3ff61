"""Access tokens for APIs: refreshed when due, per API and scope, one refresh at a time."""

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from fastapi.testclient import TestClient

from app.auth import AccessToken, access_token, get_access_token
from app.auth.session_cookie import SESSION_COOKIE
from app.auth.sessions import MAX_ACCESS_TOKENS
from app.auth.urls import LOGIN_PATH
from app.main import create_app
from devserver.provider import FakeProvider
from tests.conftest import make_settings
from tests.helpers import (
    APP_URL,
    LOGOUT,
    PROFILE,
    install_session,
    log_in,
    replace_cookie,
    stored_session,
)

REFRESH = "refresh_token"


def refreshes(provider: FakeProvider) -> list[dict[str, str]]:
    return [form for form in provider.token_requests if form.get("grant_type") == REFRESH]


@pytest.fixture
def short_tokens(provider: FakeProvider) -> FakeProvider:
    """Access tokens that are already within the refresh leeway when issued."""
    provider.token_ttl = 30
    return provider


def test_a_refresh_with_a_new_id_token_updates_the_session_user(
    client: TestClient, short_tokens: FakeProvider
) -> None:
    log_in(client, short_tokens)
    short_tokens.users["alice"] = {"name": "Alice Smith", "email": "alice@smith.example"}

    assert client.get("/api-example").status_code == 200

    assert len(refreshes(short_tokens)) == 1
    profile = client.get(PROFILE).json()
    assert (profile["name"], profile["email"]) == ("Alice Smith", "alice@smith.example")


def test_a_fresh_token_is_used_as_it_is(logged_in: TestClient, provider: FakeProvider) -> None:
    page = logged_in.get("/api-example")

    assert page.status_code == 200
    assert "alice@example.com" in page.text
    assert refreshes(provider) == []


def test_an_expiring_token_is_refreshed_and_the_rotation_kept(
    client: TestClient, short_tokens: FakeProvider
) -> None:
    log_in(client, short_tokens)
    before = stored_session(client)
    assert before is not None

    assert client.get("/api-example").status_code == 200

    [refresh] = refreshes(short_tokens)
    assert refresh["refresh_token"] == before.refresh_token
    after = stored_session(client)
    assert after is not None
    assert after.refresh_token not in (None, before.refresh_token)  # rotated, and kept
    assert after.access_tokens[0].token != before.access_tokens[0].token
    assert after.login_id == before.login_id and after.user == before.user

    # The next refresh uses the rotated refresh token.
    assert client.get("/api-example").status_code == 200
    assert refreshes(short_tokens)[-1]["refresh_token"] == after.refresh_token


def test_tokens_for_other_apis_are_kept_apart(provider: FakeProvider) -> None:
    settings = make_settings(provider, auth0_audience="https://api.example")
    app = create_app(settings, provider_transport=provider.transport)
    billing = access_token(audience="https://billing.example", scope="read:invoices")

    @app.get("/billing")
    async def billing_route(
        token: Annotated[AccessToken, Depends(billing)],
    ) -> dict[str, str | None]:
        return {"audience": token.audience, "scope": token.scope}

    with TestClient(app, base_url=APP_URL, follow_redirects=False) as client:
        log_in(client, provider)
        assert client.get("/billing").json()["audience"] == "https://billing.example"
        client.get("/billing")  # now stored: no second refresh
        session = stored_session(client)

    [refresh] = refreshes(provider)
    assert refresh["audience"] == "https://billing.example"
    assert refresh["scope"] == "read:invoices"
    assert session is not None
    audiences = {token.audience for token in session.access_tokens}
    assert audiences == {"https://api.example", "https://billing.example"}


def test_a_session_keeps_the_tokens_of_the_apis_used_last(
    client: TestClient, provider: FakeProvider, app: FastAPI
) -> None:
    @app.get("/apis/{number}")
    async def call_api(request: Request, number: int) -> dict[str, str | None]:
        token = await get_access_token(request, audience=f"https://api{number}.example")
        return {"audience": token.audience}

    log_in(client, provider)
    for number in range(MAX_ACCESS_TOKENS + 1):
        assert client.get(f"/apis/{number}").status_code == 200
    assert len(refreshes(provider)) == MAX_ACCESS_TOKENS + 1

    session = stored_session(client)
    assert session is not None
    assert len(session.access_tokens) == MAX_ACCESS_TOKENS
    client.get(f"/apis/{MAX_ACCESS_TOKENS}")  # the newest: still kept
    client.get("/apis/1")  # kept too: only the oldest ones made room
    assert len(refreshes(provider)) == MAX_ACCESS_TOKENS + 1
    client.get("/apis/0")  # made room: asked for again
    assert len(refreshes(provider)) == MAX_ACCESS_TOKENS + 2


def test_rfc8707_providers_get_a_resource_parameter(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    client = client_for(auth0_audience="https://api.example", auth0_audience_parameter="resource")
    authorize_url = client.get(LOGIN_PATH).headers["location"]

    assert "resource=https%3A%2F%2Fapi.example" in authorize_url
    assert "audience=" not in authorize_url


def test_a_refused_refresh_ends_the_session(client: TestClient, short_tokens: FakeProvider) -> None:
    log_in(client, short_tokens)
    short_tokens.forget_refresh_tokens()

    api = client.get("/api-example", headers={"accept": "application/json"})

    assert api.status_code == 401
    assert api.json()["error"] == "session_ended"
    assert client.get(PROFILE).status_code == 401


def due_for_renewal_and_refresh(client: TestClient, provider: FakeProvider) -> None:
    """A login whose session is due for renewal and whose access token is expiring."""
    log_in(client, provider)
    session = stored_session(client)
    assert session is not None
    now = int(time.time())
    expiring = replace(session.access_tokens[0], expires_at=now + 5)
    install_session(client, replace(session, touched_at=now - 400, access_tokens=(expiring,)))


def test_a_renewal_and_a_refresh_in_one_request_set_each_cookie_once(
    client: TestClient, provider: FakeProvider
) -> None:
    due_for_renewal_and_refresh(client, provider)

    response = client.get("/api-example")

    assert response.status_code == 200
    names = [line.split("=")[0] for line in response.headers.get_list("set-cookie")]
    assert len(names) == len(set(names)), names
    assert len(refreshes(provider)) == 1
    assert client.get("/api-example").status_code == 200  # the refreshed token was kept
    assert len(refreshes(provider)) == 1


def test_a_refused_refresh_ends_a_session_that_was_just_renewed(
    client: TestClient, provider: FakeProvider
) -> None:
    due_for_renewal_and_refresh(client, provider)
    provider.forget_refresh_tokens()

    response = client.get("/api-example", headers={"accept": "application/json"})

    assert response.status_code == 401
    kept = [line for line in response.headers.get_list("set-cookie") if "Max-Age=0" not in line]
    assert not [line for line in kept if line.startswith(SESSION_COOKIE)]
    assert client.get(PROFILE).status_code == 401


def test_an_unreachable_provider_keeps_the_session(
    client: TestClient, short_tokens: FakeProvider
) -> None:
    log_in(client, short_tokens)
    short_tokens.reachable = "refused"

    assert client.get("/api-example", headers={"accept": "application/json"}).status_code == 503
    assert client.get(PROFILE).status_code == 200


def test_fifty_concurrent_requests_share_one_refresh(
    short_tokens: FakeProvider, client: TestClient
) -> None:
    log_in(client, short_tokens)
    short_tokens.token_ttl = 3600  # the refreshed token lasts
    cookies = dict(client.cookies.items())
    app = create_app(make_settings(short_tokens), provider_transport=short_tokens.transport)

    async def fifty() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        http = httpx.AsyncClient(transport=transport, base_url=APP_URL, cookies=cookies)
        async with app.router.lifespan_context(app), http:
            pages = [http.get("/api-example") for _ in range(50)]
            return list(await asyncio.gather(*pages))

    responses = asyncio.run(fifty())

    assert [r.status_code for r in responses] == [200] * 50
    assert len(refreshes(short_tokens)) == 1


def test_a_stale_cookie_after_a_refresh_gets_the_new_tokens(
    client: TestClient, short_tokens: FakeProvider
) -> None:
    log_in(client, short_tokens)
    stale = dict(client.cookies.items())
    short_tokens.token_ttl = 3600
    assert client.get("/api-example").status_code == 200  # refreshes

    for name, value in stale.items():  # e.g. a request that left before the refresh
        replace_cookie(client, name, value)
    assert client.get("/api-example").status_code == 200

    assert len(refreshes(short_tokens)) == 1  # the spent refresh token was not used again


def test_logout_revokes_the_refresh_token(logged_in: TestClient, provider: FakeProvider) -> None:
    session = stored_session(logged_in)
    assert session is not None and session.refresh_token

    logged_in.get(LOGOUT)

    assert "revoke" in provider.requests
    assert provider.revoked == [session.refresh_token]


def test_logout_is_not_held_up_by_a_failing_revocation(
    logged_in: TestClient, provider: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.auth")
    provider.reachable = "refused"

    response = logged_in.get(LOGOUT)

    assert response.status_code == 303
    assert logged_in.get(PROFILE).status_code == 401
    messages = [record.getMessage() for record in caplog.records]
    assert "auth.revoke_failed provider_unavailable" in messages


def test_a_revocation_answered_with_an_empty_body_succeeded(
    logged_in: TestClient, provider: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.auth")
    provider.replies["revoke"] = Response(status_code=200)  # RFC 7009 §2.2: the body is ignored

    assert logged_in.get(LOGOUT).status_code == 303
    assert provider.requests.count("revoke") == 1
    assert "auth.revoke_failed" not in caplog.text


def test_the_example_needs_a_login(client: TestClient) -> None:
    assert client.get("/api-example", headers={"accept": "application/json"}).status_code == 401


def test_a_refreshed_id_token_about_another_user_is_refused(
    client: TestClient, short_tokens: FakeProvider
) -> None:
    log_in(client, short_tokens)
    before = stored_session(client)
    short_tokens.id_token_claims = {"sub": "mallory"}

    response = client.get("/api-example", headers={"accept": "application/json"})

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_token"
    after = stored_session(client)
    assert after is not None and before is not None
    assert after.user["sub"] == "alice" and after.access_tokens == before.access_tokens


def test_a_refreshed_id_token_for_other_audiences_is_refused(
    client: TestClient, short_tokens: FakeProvider
) -> None:
    """Core §12.2: the ID token from a refresh has the login's audiences; otherwise it does
    not replace the session's ID token and user."""
    log_in(client, short_tokens)
    before = stored_session(client)
    short_tokens.id_token_claims = {
        "aud": ["dev-client", "another-client"],
        "azp": "dev-client",
        "name": "Somebody Else",
    }

    response = client.get("/api-example", headers={"accept": "application/json"})

    assert (response.status_code, response.json()["error"]) == (400, "invalid_token")
    after = stored_session(client)
    assert after is not None and before is not None
    assert (after.id_token, after.user) == (before.id_token, before.user)


def test_a_refreshed_id_token_of_the_same_login_is_taken(
    client: TestClient, short_tokens: FakeProvider
) -> None:
    log_in(client, short_tokens)  # the provider repeats the login's nonce, as it may
    short_tokens.id_token_claims = {"name": "Alice Renamed"}

    assert client.get("/api-example").status_code == 200

    after = stored_session(client)
    assert after is not None and after.user["name"] == "Alice Renamed"
