"""The generated app's pages on a phone (390 px) and a laptop (1280 px), for a user with a very long
name and email: nothing runs off the screen. Screenshots land in ``tests/artifacts/pages-*.png``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from app_flows import sign_in
from components import free_port
from playwright.sync_api import expect

if TYPE_CHECKING:
    from pathlib import Path

    from components import AppServer
    from playwright.sync_api import Browser, Page

# The test provider names users after their login: "Maximiliana...", "maximiliana...@example.com"
LONG_LOGIN = "maximilianaalexandrinakonstantinopolousvonundzuhohenzollernsigmaringen"  # no breaks
WIDTHS = {"phone": 390, "laptop": 1280}


def fits(page: Page) -> bool:
    """Whether the page needs no sideways scrolling."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def shoot(page: Page, shots: dict[str, bool], folder: Path, name: str) -> None:
    """Whether the page fits, and its screenshot as ``pages-<device>-<name>.png``."""
    shots[name] = fits(page)
    page.screenshot(path=folder / f"pages-{name}.png", full_page=True)


def another_site(page: Page, link: str) -> None:
    """Open a page of another origin (served by the browser itself) that links to ``link``,
    and follow the link, as a user tricked by another site would."""
    elsewhere = f"http://127.0.0.1:{free_port()}/elsewhere"
    page.route(
        elsewhere,
        lambda route: route.fulfill(content_type="text/html", body=f'<a href="{link}">go</a>'),
    )
    page.goto(elsewhere)
    page.get_by_role("link", name="go").click()


@pytest.mark.parametrize("device", list(WIDTHS))
def test_pages_fit_the_screen(
    browser: Browser, app_server: AppServer, artifacts_dir: Path, device: str
) -> None:
    context = browser.new_context(viewport={"width": WIDTHS[device], "height": 800})
    shots: dict[str, bool] = {}
    try:
        page = context.new_page()

        def shot(name: str) -> None:
            shoot(page, shots, artifacts_dir, f"{device}-{name}")

        page.goto(app_server.url("/no-such-page"))
        expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
        shot("not-found")

        page.goto(app_server.url("/auth/profile"))  # 401: for a first visit, "Log in"
        expect(page.get_by_role("link", name="Log in", exact=True)).to_be_visible()
        shot("not-logged-in")

        page.goto(app_server.url("/profile"))
        sign_in(page, LONG_LOGIN)
        expect(page.get_by_role("heading", level=1)).to_contain_text("Maximiliana")
        shot("profile")

        page.goto(app_server.url("/"))
        shot("home")

        page.goto(app_server.url("/sessions"))
        expect(page.get_by_role("heading", level=1)).to_have_text("Your sessions")
        shot("sessions")

        page.goto(app_server.url("/api-example"))
        expect(page.locator("time")).to_contain_text(" UTC")  # when the access token expires
        shot("api-example")

        another_site(page, app_server.url("/auth/logout"))
        expect(page.get_by_role("heading", level=1)).to_have_text("Log out?")
        shot("log-out-question")

        page.get_by_role("button", name="Log out").click()
        page.get_by_role("button", name="Yes, sign me out").click()
        expect(page.get_by_role("status")).to_have_text("You are logged out.")
        shot("logged-out")
    finally:
        context.close()
    assert [name for name, fitted in shots.items() if not fitted] == []
