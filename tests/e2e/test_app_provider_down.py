"""The generated app when its OpenID provider is down or hangs: friendly error pages, sessions stay.

Each test has its own provider (``dedicated_provider``): a stopped provider forgets its clients.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

import httpx
from app_flows import HTML, finish_login, follow_app, http_login, sign_in, start_login
from components import free_port, wait_for
from playwright.sync_api import expect

if TYPE_CHECKING:
    from pathlib import Path

    from app_flows import StartApp
    from components import OidcProvider
    from playwright.sync_api import Browser, Page

JSON = {"Accept": "application/json"}
UNAVAILABLE = "The login service is unavailable"
TIMED_OUT = "The login service did not answer in time"


def test_provider_down_during_login_shows_503_and_sessions_keep_working(
    browser: Browser,
    page: Page,
    dedicated_provider: OidcProvider,
    start_app: StartApp,
    artifacts_dir: Path,
) -> None:
    app = start_app(dedicated_provider)
    # Has not asked the provider anything yet (no discovery at startup either).
    untouched_app = start_app(dedicated_provider, AUTH_STARTUP_CHECK="false")
    page.goto(app.url("/profile"))
    sign_in(page, "alice")
    expect(page).to_have_url(app.url("/profile"))
    with httpx.Client() as client:
        callback_url = finish_login(client, app, start_login(client, app, "/profile"), "bob")

        dedicated_provider.stop()  # after bob's login at the provider, before the code is redeemed

        callback = client.get(callback_url, headers=HTML)
        assert callback.status_code == 503
        assert UNAVAILABLE in callback.text
        assert "Traceback" not in callback.text
        login_api = client.get(untouched_app.url("/auth/login"), headers=JSON)
        assert login_api.status_code == 503
        assert login_api.json()["error"] == "provider_unavailable"

    other_browser = browser.new_context()
    try:
        visitor = other_browser.new_page()
        response = visitor.goto(untouched_app.url("/profile"))
        assert response is not None
        assert response.status == 503
        expect(visitor.get_by_role("heading", level=1)).to_have_text(UNAVAILABLE)
        assert "Traceback" not in visitor.content()
        visitor.screenshot(path=artifacts_dir / "app-error-503.png", full_page=True)
    finally:
        other_browser.close()

    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Alice")
    assert page.request.get(app.url("/auth/profile")).json()["sub"] == "alice"
    assert page.request.get(app.url("/profile")).status == 200


def test_hanging_provider_gets_504_within_the_timeout(
    dedicated_provider: OidcProvider, start_app: StartApp
) -> None:
    app = start_app(dedicated_provider, AUTH0_TIMEOUT="1")
    untouched_app = start_app(dedicated_provider, AUTH0_TIMEOUT="1", AUTH_STARTUP_CHECK="false")
    with httpx.Client(timeout=10) as client:
        callback_url = finish_login(client, app, start_login(client, app, "/profile"), "alice")

        dedicated_provider.pause()
        try:
            started = time.monotonic()
            callback = client.get(callback_url, headers=HTML)
            callback_seconds = time.monotonic() - started
            started = time.monotonic()
            login_api = client.get(untouched_app.url("/auth/login"), headers=JSON)
            login_seconds = time.monotonic() - started
        finally:
            dedicated_provider.resume()
        recovered = follow_app(client, untouched_app, http_login(client, untouched_app, "alice"))

    assert callback.status_code == 504
    assert TIMED_OUT in callback.text
    assert "Traceback" not in callback.text
    assert 0.9 < callback_seconds < 3.0
    assert login_api.status_code == 504
    assert login_api.json()["error"] == "provider_timeout"
    assert 0.9 < login_seconds < 3.0
    assert "Welcome, Alice" in recovered.text  # nothing stuck once the provider answers again


def test_a_provider_that_is_not_there_shows_in_the_log_at_startup(
    oidc_provider: OidcProvider, start_app: StartApp
) -> None:
    """A wrong AUTH0_DOMAIN is logged when the app starts (URL and cause), not at the first
    login; the app serves its pages meanwhile."""
    nobody = f"http://127.0.0.1:{free_port()}"
    app = start_app(oidc_provider, AUTH0_DOMAIN=nobody)
    assert httpx.get(app.url("/")).status_code == 200

    def logged() -> bool:
        return "auth.provider_check_failed" in app.log_path.read_text()

    wait_for(logged, 10, "the startup check's log line")
    log = app.log_path.read_text()
    assert f"{nobody}/.well-known/openid-configuration" in log
    assert re.search(r"\d\d:\d\d:\d\d,\d{3} WARNING app\.auth: auth\.provider_check_failed", log)
