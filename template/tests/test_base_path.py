"""An app served under a path (`APP_BASE_URL=https://example.com/portal`) behind a proxy that
routes `/portal/...` to it: every redirect, link and cookie stays under that path, whether
the proxy passes the path on (`/portal/profile`) or takes it off (`/profile`)."""

import time
from collections.abc import Callable
from http.cookiejar import Cookie
from urllib.parse import urljoin

import httpx2
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

from app.auth import require_recent_login
from app.auth.session_cookie import SESSION_COOKIE
from app.auth.transactions import COOKIE_PREFIX
from app.auth.urls import AUTH_PREFIX, CALLBACK_PATH, LOGIN_PATH
from app.main import create_app
from devserver.provider import FakeProvider
from devserver.variant import REDIRECT_PATHS
from tests.conftest import make_settings
from tests.helpers import LOGOUT, PROFILE, query

ORIGIN = "http://127.0.0.1:8000"
BASE = "/portal"
HTML = {"Accept": "text/html"}


@pytest.fixture
def portal(client_for: Callable[..., TestClient], provider: FakeProvider) -> TestClient:
    """A client of the app at `ORIGIN/portal`; its requests carry the path, as the proxy's do."""
    provider.redirect_uris = tuple(f"{ORIGIN}{BASE}{path}" for path in REDIRECT_PATHS)
    provider.logout_redirect_prefix = f"{ORIGIN}{BASE}/"
    return client_for(app_base_url=ORIGIN + BASE)


def visit(client: TestClient, location: str, **kwargs: object) -> httpx2.Response:
    """Follow a `Location` as a browser does (resolved against the origin, not the base)."""
    return client.get(urljoin(ORIGIN, location), **kwargs)  # type: ignore[arg-type]


def log_in(client: TestClient, provider: FakeProvider, return_to: str) -> httpx2.Response:
    start = visit(client, f"{BASE}{LOGIN_PATH}?returnTo={return_to}")
    assert start.status_code == 303
    return client.get(provider.login(start.headers["location"], "alice"))


def cookies(client: TestClient) -> dict[str, Cookie]:
    return {cookie.name: cookie for cookie in client.cookies.jar}


def test_a_login_under_the_base_path_comes_back_to_it(
    portal: TestClient, provider: FakeProvider
) -> None:
    start = visit(portal, f"{BASE}/profile", headers=HTML)
    assert start.headers["location"] == f"{BASE}{LOGIN_PATH}?returnTo=%2Fprofile"
    to_provider = visit(portal, start.headers["location"])
    assert (
        query(to_provider.headers["location"])["redirect_uri"] == f"{ORIGIN}{BASE}{CALLBACK_PATH}"
    )
    (transaction,) = [c for c in portal.cookies.jar if c.name.startswith(COOKIE_PREFIX)]
    assert transaction.path == f"{BASE}{AUTH_PREFIX}"

    back = portal.get(provider.login(to_provider.headers["location"], "alice"))

    assert back.status_code == 303 and back.headers["location"] == f"{BASE}/profile"
    assert cookies(portal)[SESSION_COOKIE].path == BASE  # other apps on the host never see it
    page = visit(portal, back.headers["location"], headers=HTML)
    assert page.status_code == 200
    assert f'href="{BASE}{LOGOUT}"' in page.text and f'href="{BASE}/"' in page.text


def test_the_base_url_itself_is_the_home_page(portal: TestClient, provider: FakeProvider) -> None:
    assert log_in(portal, provider, "/").status_code == 303

    page = visit(portal, BASE, headers=HTML)  # `APP_BASE_URL` as typed, no trailing slash

    assert page.status_code == 200
    assert f'href="{BASE}{LOGOUT}"' in page.text


def test_a_proxy_that_takes_the_path_off_works_the_same(
    portal: TestClient, provider: FakeProvider
) -> None:
    app = create_app(
        make_settings(provider, app_base_url=ORIGIN + BASE), provider_transport=provider.transport
    )
    seen: list[str] = []

    async def proxy(scope: Scope, receive: Receive, send: Send) -> None:
        """Routes /portal/... to the app as /... (as `proxy_pass http://app/;` does)."""
        if scope["type"] == "http":
            assert scope["path"].startswith(f"{BASE}/")
            scope = {**scope, "path": scope["path"][len(BASE) :], "raw_path": None}
            seen.append(scope["path"])
        await app(scope, receive, send)

    with TestClient(proxy, base_url=ORIGIN, follow_redirects=False) as client:
        back = log_in(client, provider, "/profile")

        assert back.headers["location"] == f"{BASE}/profile"
        assert visit(client, f"{BASE}{PROFILE}").json()["sub"] == "alice"
    assert f"{CALLBACK_PATH}" in seen and PROFILE in seen


def test_logout_returns_under_the_base_path(portal: TestClient, provider: FakeProvider) -> None:
    assert log_in(portal, provider, "/").status_code == 303

    logout = visit(portal, f"{BASE}{LOGOUT}?returnTo=/bye")

    assert query(logout.headers["location"])["post_logout_redirect_uri"] == f"{ORIGIN}{BASE}/bye"
    assert visit(portal, f"{BASE}{PROFILE}").status_code == 401


@pytest.mark.parametrize(
    "target", ["//evil.example", "/\\evil.example", "/../elsewhere", "/%2e%2e/elsewhere"]
)
def test_hostile_return_targets_stay_under_the_base_path(
    portal: TestClient, provider: FakeProvider, target: str
) -> None:
    back = log_in(portal, provider, target)
    assert back.headers["location"] == f"{BASE}/"

    logout = visit(portal, f"{BASE}{LOGOUT}", params={"returnTo": target})
    assert query(logout.headers["location"])["post_logout_redirect_uri"] == f"{ORIGIN}{BASE}/"


def test_a_cross_site_logout_link_asks_with_a_form_under_the_base_path(
    portal: TestClient, provider: FakeProvider
) -> None:
    assert log_in(portal, provider, "/").status_code == 303

    page = visit(portal, f"{BASE}{LOGOUT}", headers={"Sec-Fetch-Site": "cross-site"})
    assert f'action="{BASE}{LOGOUT}"' in page.text
    # The button: a same-origin POST (Origin is the origin, without the path).
    done = portal.post(f"{ORIGIN}{BASE}{LOGOUT}", headers={"Origin": ORIGIN})
    assert done.status_code == 303
    assert visit(portal, f"{BASE}{PROFILE}").status_code == 401


def test_error_pages_link_under_the_base_path(portal: TestClient) -> None:
    page = visit(portal, f"{BASE}{CALLBACK_PATH}?state=x" + "y" * 20 + "&code=c", headers=HTML)

    assert page.status_code == 400
    assert f'href="{BASE}{LOGIN_PATH}"' in page.text and f'href="{BASE}/"' in page.text


def test_with_https_the_cookies_are_secure_and_stay_under_the_base_path(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    provider.redirect_uris = (f"https://example.com{BASE}{CALLBACK_PATH}",)
    client = client_for(app_base_url=f"https://example.com{BASE}")
    start = client.get(f"https://example.com{BASE}{LOGIN_PATH}")

    # `__Host-` needs Path=/; under a path, `__Secure-` at least keeps http pages out.
    (transaction,) = [c for c in client.cookies.jar if COOKIE_PREFIX in c.name]
    assert transaction.name.startswith(f"__Secure-{COOKIE_PREFIX}") and transaction.secure
    assert transaction.path == f"{BASE}{AUTH_PREFIX}"
    assert client.get(provider.login(start.headers["location"], "alice")).status_code == 303
    session = cookies(client)[f"__Secure-{SESSION_COOKIE}"]
    assert session.secure and session.path == BASE
    assert client.get(f"https://example.com{BASE}{PROFILE}").json()["sub"] == "alice"


def test_a_step_up_login_returns_under_the_base_path(
    portal: TestClient, provider: FakeProvider
) -> None:
    app = portal.app
    assert isinstance(app, FastAPI)

    @app.get("/transfer", dependencies=[Depends(require_recent_login(0))])
    async def transfer() -> dict[str, str]:
        return {"ok": "yes"}

    assert log_in(portal, provider, "/").status_code == 303
    time.sleep(1.1)  # the login is now older than max_age=0

    again = visit(portal, f"{BASE}/transfer?amount=5", headers=HTML)

    assert again.status_code == 303
    assert again.headers["location"].startswith(f"{BASE}{LOGIN_PATH}?")
    assert query(again.headers["location"])["returnTo"] == "/transfer?amount=5"
