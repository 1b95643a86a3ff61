"""Fixtures for end-to-end tests with real components; see README.md next to this file.

Every test under tests/e2e/ is marked ``e2e``. Session-scoped components start on first use only.
"""

from __future__ import annotations

import sys
from collections.abc import Generator, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# tests/components/ is shared with the top-level tests: import it as `components` from here too.
TESTS_DIR = Path(__file__).resolve().parents[1]
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from components import (  # noqa: E402
    ARTIFACTS_DIR,
    AppServer,
    OidcClient,
    OidcProvider,
    RenderedProject,
    chromium_browser,
)

if TYPE_CHECKING:
    from app_flows import StartApp
    from playwright.sync_api import Browser, BrowserContext, Page

E2E_DIR = Path(__file__).resolve().parent
PAGE_TIMEOUT_MS = 10_000


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in item.path.parents:
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember each phase's report on the item, so ``page`` can screenshot failed tests."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """``tests/artifacts/`` (git-ignored): screenshots and component logs."""
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS_DIR


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[OidcProvider]:
    """The test OpenID provider, shared by the session: register a client per app instance."""
    with OidcProvider() as provider:
        yield provider


@pytest.fixture
def dedicated_provider() -> Iterator[OidcProvider]:
    """An OpenID provider of this test only: for tests that stop, pause or restart it."""
    with OidcProvider() as provider:
        yield provider


@pytest.fixture(scope="session")
def app_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty working directory for the apps: no ``.env`` there can change their settings."""
    return tmp_path_factory.mktemp("app-cwd")


@pytest.fixture(scope="session")
def app_server(
    default_project: RenderedProject, oidc_provider: OidcProvider, app_workdir: Path
) -> Iterator[AppServer]:
    """The default project's app under uvicorn, a client of ``oidc_provider``, for the session."""
    with AppServer(default_project, oidc_provider, workdir=app_workdir) as server:
        yield server


@pytest.fixture
def start_app(default_project: RenderedProject, app_workdir: Path) -> Iterator[StartApp]:
    """Start apps for this test only: ``start_app(provider, AUTH0_TIMEOUT="1")``.

    ``project`` (default: ``default_project``) runs another rendered project; ``settings`` (a
    mapping) and keyword settings are its environment; ``client``, ``session_secret`` and ``port``
    and ``workers`` (``uvicorn --workers N``) go to :class:`AppServer` (replicas share the
    first two).
    """
    started: list[AppServer] = []

    def start(
        provider: OidcProvider,
        project: RenderedProject | None = None,
        *,
        settings: Mapping[str, str] | None = None,
        client: OidcClient | None = None,
        session_secret: str | None = None,
        port: int | None = None,
        workers: int = 1,
        **more_settings: str,
    ) -> AppServer:
        server = AppServer(
            project or default_project,
            provider,
            workdir=app_workdir,
            settings={**(settings or {}), **more_settings},
            port=port,
            client=client,
            session_secret=session_secret,
            workers=workers,
        )
        started.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with chromium_browser() as chromium:
        yield chromium


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser context (no cookies) per test."""
    context = browser.new_context()
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def page(
    request: pytest.FixtureRequest, context: BrowserContext, artifacts_dir: Path
) -> Iterator[Page]:
    """A page in a fresh context; a failed test leaves ``tests/artifacts/<test>-failed.png``."""
    page = context.new_page()
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed and not page.is_closed():
        name = request.node.name.replace("/", "_")
        page.screenshot(path=artifacts_dir / f"{name}-failed.png", full_page=True)
