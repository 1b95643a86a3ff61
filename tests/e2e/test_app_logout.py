"""Logging out of the generated app: at the app and the provider, or from the provider's side."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
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
from components import provider_logout
from playwright.sync_api import expect

if TYPE_CHECKING:
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
