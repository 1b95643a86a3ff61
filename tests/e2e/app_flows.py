"""Steps of logging in to and out of a running app (:class:`components.AppServer`).

Plain HTTP: one cookie-keeping ``httpx.Client`` plays the browser; the app's redirects are followed
by hand, the provider's pages by :func:`components.provider_login`. Browser: Playwright pages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlencode

import httpx
from components import AppServer, OidcClient, OidcProvider, RenderedProject, provider_login

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Cookie, Page

HTML = {"Accept": "text/html"}
PASSWORD = "any password"


class StartApp(Protocol):
    """The ``start_app`` fixture: an app of this test only, with extra settings."""

    def __call__(
        self,
        provider: OidcProvider,
        project: RenderedProject | None = None,
        *,
        settings: Mapping[str, str] | None = None,
        client: OidcClient | None = None,
        session_secret: str | None = None,
        port: int | None = None,
        workers: int = 1,
        **more_settings: str,
    ) -> AppServer: ...


# --- Plain HTTP -----------------------------------------------------------------------------------


def start_login(client: httpx.Client, app: AppServer, return_to: str = "/") -> str:
    """``GET /auth/login?returnTo=...``; returns the provider's authorization URL (its redirect)."""
    response = client.get(app.url(f"/auth/login?{urlencode({'returnTo': return_to})}"))
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(f"{app.provider.issuer}/"), location
    return location


def finish_login(client: httpx.Client, app: AppServer, authorize_url: str, username: str) -> str:
    """Log ``username`` in at the provider; returns the URL of the app's callback, not visited."""
    callback_url = provider_login(client, authorize_url, username)
    assert callback_url.startswith(app.url("/auth/callback?")), callback_url
    return callback_url


def http_login(
    client: httpx.Client, app: AppServer, username: str = "alice", return_to: str = "/"
) -> httpx.Response:
    """A whole login with plain HTTP; returns the app's answer to the callback (a 303)."""
    authorize_url = start_login(client, app, return_to)
    callback = client.get(finish_login(client, app, authorize_url, username), headers=HTML)
    assert callback.status_code == 303, callback.text
    return callback


def follow_app(client: httpx.Client, app: AppServer, response: httpx.Response) -> httpx.Response:
    """Follow ``response``'s redirects while they stay on the app; returns the last response."""
    for _step in range(10):
        if not response.is_redirect:
            return response
        location = response.headers["location"]
        if location.startswith("/"):
            location = app.url(location)
        if not location.startswith(f"{app.base_url}/"):
            return response
        response = client.get(location, headers=HTML)
    raise AssertionError(f"too many redirects on the app, last to {response.url}")


def provider_asks_to_log_in(client: httpx.Client, authorize_url: str) -> bool:
    """Whether the provider answers ``authorize_url`` with its login form (it has no session)."""
    page = client.get(authorize_url, follow_redirects=True)
    return page.status_code == 200 and 'name="prompt" value="login"' in page.text


def cookie_attributes(set_cookie: str) -> tuple[str, dict[str, str]]:
    """The name and the attributes (lower-case keys; ``""`` for flags) of a ``Set-Cookie`` value."""
    name_value, *attributes = (part.strip() for part in set_cookie.split(";"))
    parsed = {}
    for attribute in attributes:
        key, _, value = attribute.partition("=")
        parsed[key.lower()] = value
    return name_value.partition("=")[0], parsed


# --- Browser --------------------------------------------------------------------------------------


def sign_in(page: Page, username: str = "alice") -> None:
    """On the provider's login form: sign in, and consent if the provider asks.

    Returns once the browser is back on an app page (any page with the app's header).
    """
    page.locator("input[name=login]").fill(username)
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Sign-in").click()
    consent = page.get_by_role("button", name="Continue")
    app_page = page.locator("header a.brand")
    consent.or_(app_page).wait_for()
    if consent.is_visible():
        consent.click()
        app_page.wait_for()


def is_session_cookie(name: str) -> bool:
    """Whether ``name`` is the session cookie: ``app_session`` or a chunk ``app_session.N``."""
    return name == "app_session" or name.startswith("app_session.")


def browser_session_cookies(context: BrowserContext) -> list[Cookie]:
    """The app's session cookies in the browser ``context``."""
    return [cookie for cookie in context.cookies() if is_session_cookie(cookie.get("name", ""))]
