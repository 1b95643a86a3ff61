"""The generated app served under a path (``APP_BASE_URL=http://127.0.0.1:<port>/portal``), with its
auth routes moved by the ``AUTH_PREFIX`` setting, logs users in and out at the real provider.

Requests reach uvicorn with the path (as from a proxy that passes it on); the app's redirects,
links, callback and cookies must all stay under ``/portal``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
from app_flows import HTML, sign_in
from components import provider_login
from components.process import free_port
from playwright.sync_api import expect

if TYPE_CHECKING:
    from app_flows import StartApp
    from components import AppServer, OidcProvider
    from playwright.sync_api import BrowserContext, Page

BASE = "/portal"
PREFIX = "/account"


def portal_app(start_app: StartApp, provider: OidcProvider) -> tuple[AppServer, str]:
    """An app at ``http://127.0.0.1:<port>/portal`` and its base URL."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}{BASE}"
    client = provider.register_client(
        [f"{base_url}{PREFIX}/callback"],
        [f"{base_url}/"],
        backchannel_logout_uri=f"{base_url}{PREFIX}/backchannel-logout",
    )
    app = start_app(provider, client=client, port=port, APP_BASE_URL=base_url, AUTH_PREFIX=PREFIX)
    return app, base_url


def test_browser_login_and_logout_under_a_path(
    page: Page, context: BrowserContext, start_app: StartApp, oidc_provider: OidcProvider
) -> None:
    _, base_url = portal_app(start_app, oidc_provider)

    page.goto(f"{base_url}/profile")
    page.wait_for_url(f"{oidc_provider.issuer}/interaction/*")
    sign_in(page, "alice")

    expect(page).to_have_url(f"{base_url}/profile")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Alice")
    (session,) = [cookie for cookie in context.cookies() if cookie["name"] == "app_session"]
    assert session["path"] == BASE
    assert page.request.get(f"{base_url}{PREFIX}/profile").json()["sub"] == "alice"

    page.get_by_role("link", name="Log out").click()
    page.wait_for_url(f"{oidc_provider.issuer}/session/end*")
    page.get_by_role("button", name="Yes, sign me out").click()

    expect(page).to_have_url(f"{base_url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome")
    assert page.request.get(f"{base_url}{PREFIX}/profile").status == 401


def test_backchannel_logout_reaches_an_app_under_a_path(
    start_app: StartApp, oidc_provider: OidcProvider
) -> None:
    _, base_url = portal_app(start_app, oidc_provider)
    with httpx.Client() as client:
        start = client.get(f"{base_url}{PREFIX}/login")
        assert start.status_code == 303
        callback_url = provider_login(client, start.headers["location"], "bob")
        callback = client.get(callback_url, headers=HTML)
        assert callback.status_code == 303 and callback.headers["location"] == f"{BASE}/"
        assert client.get(f"{base_url}{PREFIX}/profile").json()["sub"] == "bob"

        result = oidc_provider.logout("bob")

        assert result["backchannel"] and all(entry["ok"] for entry in result["backchannel"])
        assert client.get(f"{base_url}{PREFIX}/profile").status_code == 401
