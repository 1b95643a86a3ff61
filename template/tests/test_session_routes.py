"""The user's sessions: /auth/sessions lists them and ends them, /sessions shows them."""

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from app.auth.session_cookie import SESSION_COOKIE
from app.auth.urls import AUTH_PREFIX, LOGIN_PATH
from devserver.provider import FakeProvider
from tests.helpers import APP_URL, PROFILE, log_in, stored_session

SESSIONS = f"{AUTH_PREFIX}/sessions"
END_OTHERS = f"{SESSIONS}/end-others"

SAME_ORIGIN = {"origin": APP_URL, "sec-fetch-site": "same-origin"}


def logged_in_browsers(
    client_for: Callable[..., TestClient], provider: FakeProvider, *users: str
) -> list[TestClient]:
    """One browser (and app instance, sharing the store) per user named, logged in."""
    browsers = []
    for user in users:
        browser = client_for()
        assert log_in(browser, provider, user).status_code == 303
        browsers.append(browser)
    return browsers


def alive(browser: TestClient) -> bool:
    return browser.get(PROFILE).status_code == 200


def login_id(browser: TestClient) -> str:
    session = stored_session(browser)
    assert session is not None
    return session.login_id


def test_ending_the_other_sessions_keeps_this_one_and_other_users(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    here, laptop, phone, bob = logged_in_browsers(
        client_for, provider, "alice", "alice", "alice", "bob"
    )

    response = here.post(END_OTHERS, headers=SAME_ORIGIN)

    assert response.status_code == 204
    assert [alive(b) for b in (here, laptop, phone, bob)] == [True, False, False, True]
    assert here.get(PROFILE).json()["sub"] == "alice"


def test_ending_this_session_by_its_id_logs_this_browser_out(logged_in: TestClient) -> None:
    response = logged_in.post(f"{SESSIONS}/{login_id(logged_in)}/end", headers=SAME_ORIGIN)

    assert response.status_code == 204
    assert any(
        line.startswith(SESSION_COOKIE) and "Max-Age=0" in line
        for line in response.headers.get_list("set-cookie")
    )
    assert not alive(logged_in)


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-site": "cross-site", "origin": "https://evil.example"},
        {"sec-fetch-site": "same-site", "origin": "https://sub.127.0.0.1:8000"},
        {"sec-fetch-site": "cross-site"},
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"origin": APP_URL.replace("http://", "https://")},
    ],
)
def test_requests_from_other_sites_end_nothing(
    client_for: Callable[..., TestClient], provider: FakeProvider, headers: dict[str, str]
) -> None:
    here, other = logged_in_browsers(client_for, provider, "alice", "alice")

    for path in (END_OTHERS, f"{SESSIONS}/{login_id(other)}/end"):
        refused = here.post(path, headers=headers)
        assert refused.status_code == 403, (path, refused.text)
        assert refused.json()["error"] == "cross_site_request"
    assert alive(here) and alive(other)


def test_a_request_from_no_web_page_is_not_cross_site(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    here, other = logged_in_browsers(client_for, provider, "alice", "alice")

    assert here.post(END_OTHERS).status_code == 204  # e.g. curl: no Origin
    assert alive(here) and not alive(other)


def test_anonymous_requests_get_401(client: TestClient) -> None:
    assert client.get(SESSIONS).status_code == 401
    assert client.post(END_OTHERS, headers=SAME_ORIGIN).status_code == 401
    assert client.post(f"{SESSIONS}/abc/end", headers=SAME_ORIGIN).status_code == 401


@pytest.mark.parametrize(
    ("return_to", "location"), [("/sessions", "/sessions"), ("https://evil.example/", "/")]
)
def test_forms_are_sent_back_to_an_app_page(
    logged_in: TestClient, return_to: str, location: str
) -> None:
    response = logged_in.post(END_OTHERS, params={"returnTo": return_to}, headers=SAME_ORIGIN)

    assert response.status_code == 303
    assert response.headers["location"] == location


def test_the_sessions_page_offers_to_end_the_other_sessions(logged_in: TestClient) -> None:
    page = logged_in.get("/sessions")

    assert page.status_code == 200
    assert f'action="{END_OTHERS}?returnTo=/sessions"' in page.text


def test_the_sessions_page_needs_a_login(client: TestClient) -> None:
    response = client.get("/sessions", headers={"accept": "text/html"})

    assert response.status_code == 303
    assert response.headers["location"] == f"{LOGIN_PATH}?returnTo=%2Fsessions"


@pytest.mark.parametrize("session_id", ["%2e%2e", "x" * 65, "a b", "ü", "a.b"])
def test_a_session_id_that_no_login_makes_is_404(logged_in: TestClient, session_id: str) -> None:
    response = logged_in.post(f"{SESSIONS}/{session_id}/end", headers=SAME_ORIGIN)

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert alive(logged_in)
