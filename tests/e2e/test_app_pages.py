"""The generated app's pages on a phone (390 px) and a laptop (1280 px), for a user with a very long
name and email: nothing runs off the screen. Screenshots land in ``tests/artifacts/pages-*.png``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from app_flows import sign_in
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


@pytest.mark.parametrize("device", list(WIDTHS))
def test_pages_fit_the_screen(
    browser: Browser, app_server: AppServer, artifacts_dir: Path, device: str
) -> None:
    context = browser.new_context(viewport={"width": WIDTHS[device], "height": 800})
    try:
        page = context.new_page()
        shots = {}

        page.goto(app_server.url("/no-such-page"))
        expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
        shots["not-found"] = fits(page)
        page.screenshot(path=artifacts_dir / f"pages-{device}-not-found.png", full_page=True)

        page.goto(app_server.url("/profile"))
        sign_in(page, LONG_LOGIN)
        expect(page.get_by_role("heading", level=1)).to_contain_text("Maximiliana")
        shots["profile"] = fits(page)
        page.screenshot(path=artifacts_dir / f"pages-{device}-profile.png", full_page=True)

        page.goto(app_server.url("/"))
        shots["home"] = fits(page)
        page.screenshot(path=artifacts_dir / f"pages-{device}-home.png", full_page=True)

        page.goto(app_server.url("/sessions"))
        expect(page.get_by_role("heading", level=1)).to_have_text("Your sessions")
        shots["sessions"] = fits(page)
        page.screenshot(path=artifacts_dir / f"pages-{device}-sessions.png", full_page=True)

        page.goto(app_server.url("/auth/logout"))
        page.get_by_role("button", name="Yes, sign me out").click()
        expect(page.get_by_role("status")).to_have_text("You are logged out.")
        shots["logged-out"] = fits(page)
        page.screenshot(path=artifacts_dir / f"pages-{device}-logged-out.png", full_page=True)

        assert [name for name, fitted in shots.items() if not fitted] == []
    finally:
        context.close()
