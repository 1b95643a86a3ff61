"""Logging out of the generated app: at the app and the provider, or from the provider's side."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from app_flows import (
    HTML,
    browser_session_cookies,
    follow_app,
    http_login,
    is_session_cookie,
    provider_asks_to_log_in,
    sign_in,
    start_login,
)
from components import (
    AUTH_PREFIX,
    app_base_url,
    free_port,
    provider_logout,
    register_app_client,
)
from playwright.sync_api import expect

if TYPE_CHECKING:
    from app_flows import StartApp
    from components import AppServer, OidcProvider
    from playwright.sync_api import BrowserContext, Page


def test_browser_logout_ends_the_app_and_provider_sessions(
    page: Page, context: BrowserContext, app_server: AppServer
) -> None:
    page.goto(app_server.url("/profile"))
    sign_in(page, "alice")
    expect(page).to_have_url(app_server.url("/profile"))

    page.get_by_role("link", name="Log out").click()
    page.wait_for_url(f"{app_server.provider.issuer}/session/end*")
    page.get_by_role("button", name="Yes, sign me out").click()

    expect(page).to_have_url(app_server.url("/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome")
    assert browser_session_cookies(context) == []
    assert page.request.get(app_server.url("/auth/profile")).status == 401
    page.get_by_role("link", name="Log in").first.click()
    page.wait_for_url(f"{app_server.provider.issuer}/interaction/*")
    expect(page.locator("input[name=login]")).to_be_visible()  # no provider session either


def test_http_logout_ends_the_app_and_provider_sessions(app_server: AppServer) -> None:
    with httpx.Client() as client:
        http_login(client, app_server, "alice")
        assert client.get(app_server.url("/auth/profile")).status_code == 200

        logout = client.get(app_server.url("/auth/logout?returnTo=/"), headers=HTML)
        assert logout.status_code == 303
        assert logout.headers["location"].startswith(f"{app_server.provider.issuer}/session/end?")
        assert not [name for name in client.cookies if is_session_cookie(name)]
        back = provider_logout(client, logout.headers["location"])

        assert back == app_server.url("/")
        home = follow_app(client, app_server, client.get(back, headers=HTML))
        assert home.status_code == 200
        assert "Welcome</h1>" in home.text
        assert "Log in" in home.text
        assert client.get(app_server.url("/auth/profile")).status_code == 401
        assert provider_asks_to_log_in(client, start_login(client, app_server))


def test_backchannel_logout_ends_the_app_session(
    app_server: AppServer, oidc_provider: OidcProvider
) -> None:
    with httpx.Client() as client:
        http_login(client, app_server, "alice")
        assert client.get(app_server.url("/auth/profile")).status_code == 200

        result = oidc_provider.logout("alice")  # as if Alice logged out at the provider

        ours = app_server.client.client_id
        sent = [entry for entry in result["backchannel"] if entry["client_id"] == ours]
        assert sent, result
        assert all(entry["ok"] for entry in sent), sent
        assert client.get(app_server.url("/auth/profile")).status_code == 401
        home = client.get(app_server.url("/"), headers=HTML)
        assert "Welcome, Alice" not in home.text


def test_provider_offers_frontchannel_logout(oidc_provider: OidcProvider) -> None:
    """The test provider emulates Front-Channel Logout 1.0 (oidc-provider 9 has no such feature)."""
    metadata = oidc_provider.metadata()
    assert metadata["frontchannel_logout_supported"] is True
    assert metadata["frontchannel_logout_session_supported"] is True
    callback = "http://127.0.0.1:9/auth/callback"
    for not_the_rps in ("javascript:alert(1)", "http://127.0.0.1:8/auth/frontchannel-logout"):
        with pytest.raises(RuntimeError, match="invalid_client_metadata"):
            oidc_provider.register_client([callback], frontchannel_logout_uri=not_the_rps)


def test_frontchannel_logout_at_the_provider_ends_the_app_session(
    page: Page, context: BrowserContext, start_app: StartApp, oidc_provider: OidcProvider
) -> None:
    # The app is served as http://localhost:<port>, another site than the provider's
    # http://127.0.0.1:<port>, so the provider's page frames it cross-site as a real provider's
    # would, and Chromium sends that frame no SameSite=Lax cookie: only `sid` can end the session.
    # (On 127.0.0.1 at another port the frame would be same-site, sites ignore ports, and Chromium
    # would send it the app's cookies, which the route does not use.)
    # Front-channel only: a back-channel logout would end the session as well.
    port = free_port()
    client = register_app_client(oidc_provider, [port], host="localhost", backchannel_logout=False)
    app_url = app_base_url(port, "localhost")
    start_app(oidc_provider, client=client, port=port, APP_BASE_URL=app_url)
    profile_api = f"{app_url}{AUTH_PREFIX}/profile"
    page.goto(f"{app_url}/profile")
    sign_in(page, "alice")
    expect(page).to_have_url(f"{app_url}/profile")
    assert page.request.get(profile_api).status == 200

    # Alice logs out at the provider itself, not through the app: no id_token_hint, no client.
    frontchannel_logout = f"{app_url}{AUTH_PREFIX}/frontchannel-logout?"
    page.goto(oidc_provider.url("/session/end"))
    with page.expect_response(lambda answer: answer.url.startswith(frontchannel_logout)) as framed:
        page.get_by_role("button", name="Yes, sign me out").click()
    expect(page).to_have_url(oidc_provider.url("/session/end/success"))

    frame = framed.value
    sent = frame.request.all_headers()
    assert (sent["sec-fetch-dest"], sent["sec-fetch-site"]) == ("iframe", "cross-site")
    assert "cookie" not in sent
    query = parse_qs(urlsplit(frame.url).query)
    assert query["iss"] == [oidc_provider.issuer]
    assert len(query["sid"]) == 1
    assert frame.status == 200
    assert frame.headers["content-security-policy"] == f"frame-ancestors {oidc_provider.issuer}"
    # Not the app's own logout route: the browser keeps its session cookie, which the app refuses.
    assert browser_session_cookies(context)
    assert page.request.get(profile_api).status == 401
