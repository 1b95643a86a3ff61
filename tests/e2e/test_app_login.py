"""The generated app logs users in at a real OpenID provider: in a browser and with plain HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import httpx
from app_flows import (
    HTML,
    browser_session_cookies,
    cookie_attributes,
    finish_login,
    follow_app,
    http_login,
    is_session_cookie,
    sign_in,
    start_login,
)
from playwright.sync_api import expect

if TYPE_CHECKING:
    from pathlib import Path

    from components import AppServer
    from playwright.sync_api import BrowserContext, Page

ALICE = {"sub": "alice", "name": "Alice", "email": "alice@example.com", "email_verified": True}


def test_browser_login_from_a_protected_page(
    page: Page, context: BrowserContext, app_server: AppServer, artifacts_dir: Path
) -> None:
    page.goto(app_server.url("/profile"))

    page.wait_for_url(f"{app_server.provider.issuer}/interaction/*")
    expect(page.locator("input[name=login]")).to_be_visible()
    page.screenshot(path=artifacts_dir / "app-provider-login.png")
    with page.expect_request(f"{app_server.url('/auth/callback')}?*") as callback_request:
        sign_in(page, "alice")

    expect(page).to_have_url(app_server.url("/profile"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Alice")
    expect(page.locator("main > p").first).to_have_text("alice@example.com")
    page.screenshot(path=artifacts_dir / "app-profile.png", full_page=True)
    assert page.request.get(app_server.url("/auth/profile")).json() == ALICE

    callback = callback_request.value.response()
    assert callback is not None
    assert callback.status == 303
    headers = callback.all_headers()
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    cookies = browser_session_cookies(context)
    assert cookies, "no session cookie"
    for cookie in cookies:
        assert cookie.get("httpOnly") is True
        assert cookie.get("sameSite") == "Lax"
        assert cookie.get("secure") is False
    assert not [c for c in context.cookies() if c.get("name", "").startswith("app_tx.")]


def test_http_login_from_a_protected_page(app_server: AppServer) -> None:
    with httpx.Client() as client:
        protected = client.get(app_server.url("/profile"), headers=HTML)
        assert protected.status_code == 303
        assert protected.headers["location"] == "/auth/login?returnTo=%2Fprofile"
        login = client.get(app_server.url(protected.headers["location"]))
        assert login.status_code == 303
        [transaction] = [cookie_attributes(c) for c in login.headers.get_list("set-cookie")]
        assert transaction[0].startswith("app_tx.")
        assert transaction[1]["path"] == "/auth"

        callback_url = finish_login(client, app_server, login.headers["location"], "alice")
        callback = client.get(callback_url)

        assert callback.status_code == 303
        assert callback.headers["location"] == "/profile"
        # uvicorn's access log has the callback's line, without its code and state.
        code = parse_qs(urlsplit(callback_url).query)["code"][0]
        log = app_server.log_path.read_text()
        assert "GET /auth/callback?" in log and code not in log
        assert callback.headers["referrer-policy"] == "no-referrer"
        assert callback.headers["cache-control"] == "no-store"
        set_cookies = [cookie_attributes(c) for c in callback.headers.get_list("set-cookie")]
        session = [(name, attrs) for name, attrs in set_cookies if is_session_cookie(name)]
        assert session, set_cookies
        for _name, attributes in session:
            assert "httponly" in attributes
            assert attributes["samesite"].lower() == "lax"
            assert "secure" not in attributes
        profile = follow_app(client, app_server, callback)
        assert profile.status_code == 200
        assert "Alice" in profile.text
        assert "alice@example.com" in profile.text
        assert client.get(app_server.url("/auth/profile")).json() == ALICE


def test_two_tabs_log_in_at_the_same_time(context: BrowserContext, app_server: AppServer) -> None:
    provider_page = f"{app_server.provider.issuer}/interaction/*"
    first, second = context.new_page(), context.new_page()
    first.goto(app_server.url("/profile"))
    second.goto(app_server.url("/auth/login?returnTo=/"))
    first.wait_for_url(provider_page)
    second.wait_for_url(provider_page)
    assert len([c for c in context.cookies() if c.get("name", "").startswith("app_tx.")]) == 2

    sign_in(first, "alice")
    sign_in(second, "alice")

    expect(first).to_have_url(app_server.url("/profile"))
    expect(first.get_by_role("heading", level=1)).to_have_text("Alice")
    expect(second).to_have_url(app_server.url("/"))
    expect(second.get_by_role("heading", level=1)).to_have_text("Welcome, Alice")
    first.reload()
    expect(first.get_by_role("heading", level=1)).to_have_text("Alice")
    assert not [c for c in context.cookies() if c.get("name", "").startswith("app_tx.")]


def test_two_http_logins_in_flight_finish_in_any_order(app_server: AppServer) -> None:
    with httpx.Client() as client:
        first = start_login(client, app_server, "/profile")
        second = start_login(client, app_server, "/")
        first_callback = finish_login(client, app_server, first, "alice")
        second_callback = finish_login(client, app_server, second, "alice")

        second_done = client.get(second_callback, headers=HTML)
        first_done = client.get(first_callback, headers=HTML)

        assert (second_done.status_code, second_done.headers["location"]) == (303, "/")
        assert (first_done.status_code, first_done.headers["location"]) == (303, "/profile")
        assert not [name for name in client.cookies if name.startswith("app_tx.")]
        assert "Welcome, Alice" in follow_app(client, app_server, second_done).text
        assert client.get(app_server.url("/auth/profile")).json() == ALICE


def test_login_returns_to_the_page_with_its_query(app_server: AppServer) -> None:
    with httpx.Client() as client:
        callback = http_login(client, app_server, "bob", return_to="/profile?tab=1")
        assert callback.headers["location"] == "/profile?tab=1"
        assert client.get(app_server.url("/auth/profile")).json()["sub"] == "bob"
