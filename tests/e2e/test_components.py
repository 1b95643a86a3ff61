"""Smoke tests of the end-to-end harness itself: provider, browser, Redis and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from components import (
    OidcClient,
    OidcProvider,
    PostgresServer,
    RedisServer,
    authorize_url,
    free_port,
    jwt_claims,
    pkce_pair,
    provider_login,
    provider_logout,
    redis_ping,
)

if TYPE_CHECKING:
    from pathlib import Path

    from playwright.sync_api import Page, Route

# Never contacted: the login helper stops at the redirect to the app's callback.
APP = "http://127.0.0.1:9"
REDIRECT_URI = f"{APP}/auth/callback"
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def login(
    provider: OidcProvider,
    client: OidcClient,
    username: str,
    user_agent: httpx.Client | None = None,
    **params: str,
) -> dict[str, Any]:
    """Log ``username`` in with plain HTTP and exchange the code; returns the token response."""
    verifier, challenge = pkce_pair()
    url = authorize_url(provider, client.client_id, REDIRECT_URI, challenge, state="s1", **params)
    if user_agent is None:
        with httpx.Client() as fresh_user_agent:
            callback = provider_login(fresh_user_agent, url, username)
    else:
        callback = provider_login(user_agent, url, username)
    assert callback.startswith(f"{REDIRECT_URI}?")
    query = parse_qs(urlsplit(callback).query)
    assert query["state"] == ["s1"]
    response = token_request(
        provider,
        client,
        grant_type="authorization_code",
        code=query["code"][0],
        redirect_uri=REDIRECT_URI,
        code_verifier=verifier,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def token_request(provider: OidcProvider, client: OidcClient, **form: str) -> httpx.Response:
    """POST to the token endpoint with client_secret_basic."""
    auth = (client.client_id, client.client_secret)
    return httpx.post(provider.url("/token"), data=form, auth=auth)


def test_code_flow_with_pkce_and_refresh_token_rotation(oidc_provider: OidcProvider) -> None:
    client = oidc_provider.register_client([REDIRECT_URI], [f"{APP}/"])

    tokens = login(oidc_provider, client, "alice")

    claims = jwt_claims(tokens["id_token"])
    assert claims["iss"] == oidc_provider.issuer
    assert claims["aud"] == client.client_id
    assert claims["sub"] == "alice"
    assert claims["name"] == "Alice"
    assert claims["email"] == "alice@example.com"
    assert claims["email_verified"] is True
    assert tokens["token_type"] == "Bearer"

    refreshed = token_request(
        oidc_provider, client, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    assert refreshed.status_code == 200, refreshed.text
    new_refresh_token = refreshed.json()["refresh_token"]
    assert new_refresh_token != tokens["refresh_token"]

    reused = token_request(
        oidc_provider, client, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    # Reuse detection revoked the whole grant, so the new refresh token is gone as well.
    after_reuse = token_request(
        oidc_provider, client, grant_type="refresh_token", refresh_token=new_refresh_token
    )
    assert after_reuse.json()["error"] == "invalid_grant"


def test_pkce_is_required(oidc_provider: OidcProvider) -> None:
    client = oidc_provider.register_client([REDIRECT_URI])
    url = authorize_url(oidc_provider, client.client_id, REDIRECT_URI, "unused")
    url = url.replace("code_challenge=", "no_challenge=")

    with httpx.Client() as user_agent:
        response = user_agent.get(url)

    assert response.is_redirect
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI)
    assert parse_qs(urlsplit(location).query)["error"] == ["invalid_request"]


def test_resource_gets_a_jwt_access_token(oidc_provider: OidcProvider) -> None:
    client = oidc_provider.register_client([REDIRECT_URI])

    tokens = login(
        oidc_provider,
        client,
        "bob",
        scope="openid profile email read:items",
        resource="https://api.example/",
    )

    access = jwt_claims(tokens["access_token"])
    assert access["aud"] == "https://api.example/"
    assert access["sub"] == "bob"
    assert access["scope"] == "read:items"


class BackchannelReceiver:
    """An HTTP server on 127.0.0.1 in a thread that records the form POSTs it gets."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                form = parse_qs(self.rfile.read(length).decode())
                receiver.requests.append((self.headers.get("content-type", ""), form))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/backchannel-logout"

    @contextmanager
    def running(self) -> Iterator[BackchannelReceiver]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            thread.join()
            self.server.server_close()


def test_backchannel_logout(oidc_provider: OidcProvider) -> None:
    with BackchannelReceiver().running() as receiver:
        client = oidc_provider.register_client([REDIRECT_URI], backchannel_logout_uri=receiver.url)
        tokens = login(oidc_provider, client, "alice", scope="openid profile email")

        result = oidc_provider.logout("alice")

    assert {"client_id": client.client_id, "ok": True} in result["backchannel"]
    assert len(receiver.requests) == 1
    content_type, form = receiver.requests[0]
    assert content_type == "application/x-www-form-urlencoded"
    logout_token = form["logout_token"][0]
    claims = jwt_claims(logout_token)
    assert claims["sub"] == "alice"
    assert claims["aud"] == client.client_id
    assert claims["iss"] == oidc_provider.issuer
    assert claims["events"] == {BACKCHANNEL_LOGOUT_EVENT: {}}
    assert claims["sid"] == jwt_claims(tokens["id_token"])["sid"]
    assert "nonce" not in claims
    # Without offline_access the grant ends with the provider session.
    refreshed = token_request(
        oidc_provider, client, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    assert refreshed.json()["error"] == "invalid_grant"


def test_logout_of_one_client_keeps_the_others(oidc_provider: OidcProvider) -> None:
    with BackchannelReceiver().running() as receiver:
        first, second = (
            oidc_provider.register_client([REDIRECT_URI], backchannel_logout_uri=receiver.url)
            for _ in range(2)
        )
        with httpx.Client() as user_agent:
            login(oidc_provider, first, "dave", user_agent)
            login(oidc_provider, second, "dave", user_agent)

        assert oidc_provider.logout("dave", first.client_id)["backchannel"] == [
            {"client_id": first.client_id, "ok": True}
        ]
        assert oidc_provider.logout("dave")["backchannel"] == [
            {"client_id": second.client_id, "ok": True}
        ]

    audiences = [jwt_claims(form["logout_token"][0])["aud"] for _, form in receiver.requests]
    assert audiences == [first.client_id, second.client_id]


def test_rp_initiated_logout(oidc_provider: OidcProvider) -> None:
    post_logout_uri = f"{APP}/logged-out"
    with BackchannelReceiver().running() as receiver:
        client = oidc_provider.register_client(
            [REDIRECT_URI], [post_logout_uri], backchannel_logout_uri=receiver.url
        )
        with httpx.Client() as user_agent:
            tokens = login(oidc_provider, client, "erin", user_agent)
            query = urlencode(
                {
                    "id_token_hint": tokens["id_token"],
                    "post_logout_redirect_uri": post_logout_uri,
                    "state": "bye",
                }
            )
            redirect = provider_logout(user_agent, oidc_provider.url(f"/session/end?{query}"))

    assert redirect == f"{post_logout_uri}?state=bye"
    assert [jwt_claims(form["logout_token"][0])["sub"] for _, form in receiver.requests] == ["erin"]


def test_logout_of_unknown_account_sends_nothing(oidc_provider: OidcProvider) -> None:
    assert oidc_provider.logout("nobody") == {"sub": "nobody", "backchannel": []}


def test_browser_shows_login_form_and_completes_login(
    oidc_provider: OidcProvider, page: Page, artifacts_dir: Path
) -> None:
    client = oidc_provider.register_client([REDIRECT_URI])
    _, challenge = pkce_pair()
    callbacks: list[str] = []

    def app_callback(route: Route) -> None:
        callbacks.append(route.request.url)
        route.fulfill(status=200, content_type="text/plain", body="callback reached")

    page.route(f"{REDIRECT_URI}*", app_callback)
    page.goto(authorize_url(oidc_provider, client.client_id, REDIRECT_URI, challenge))

    login_field = page.locator("input[name=login]")
    login_field.wait_for()
    page.screenshot(path=artifacts_dir / "provider-login-form.png")
    login_field.fill("carol")
    page.locator("input[name=password]").fill("secret")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()
    page.get_by_text("callback reached").wait_for()

    assert len(callbacks) == 1
    assert "code" in parse_qs(urlsplit(callbacks[0]).query)


def test_provider_stop_start_and_pause_resume() -> None:
    with OidcProvider() as provider:
        health = provider.url("/__test/health")
        client = provider.register_client([REDIRECT_URI])

        provider.pause()
        with pytest.raises(httpx.TimeoutException):
            httpx.get(health, timeout=0.3)
        provider.resume()
        assert httpx.get(health).status_code == 200

        provider.stop()
        with pytest.raises(httpx.ConnectError):
            httpx.get(health)
        provider.start()
        assert httpx.get(health).json() == {"status": "ok", "issuer": provider.issuer}
        # A restarted provider has forgotten its clients.
        refused = token_request(provider, client, grant_type="refresh_token", refresh_token="x")
        assert refused.json()["error"] == "invalid_client"


def test_redis_answers_ping(redis_server: RedisServer) -> None:
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    try:
        import redis
    except ImportError:
        assert redis_ping(redis_server.port) == b"+PONG"
    else:
        with redis.Redis.from_url(redis_server.url) as connection:
            assert connection.ping() is True


def test_redis_restarts_on_the_same_port() -> None:
    with RedisServer() as server:
        server.stop()
        with pytest.raises(ConnectionRefusedError):
            redis_ping(server.port)
        server.start()
        assert redis_ping(server.port) == b"+PONG"


def test_postgres_runs_sql(postgres_server: PostgresServer) -> None:
    port = postgres_server.port
    assert postgres_server.url == f"postgresql+asyncpg://postgres@127.0.0.1:{port}/app"
    assert postgres_server.psql("SELECT 1") == "1"
    assert postgres_server.psql("SELECT current_database()") == "app"


def test_postgres_keeps_data_across_restart() -> None:
    with PostgresServer(database="restart") as server:
        server.psql("CREATE TABLE t (n int); INSERT INTO t VALUES (42)")
        server.stop()
        server.start()
        assert server.psql("SELECT n FROM t") == "42"
    assert server.directory is None
