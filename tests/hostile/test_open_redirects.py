"""An open-redirect corpus (and fuzzed targets) for `returnTo` at login and logout: the app
only ever sends the user back to its own origin."""

from typing import Any

import pytest
from devserver.provider import FakeProvider
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from tests.helpers import APP_URL, query

from .inputs import FEW, FUZZ, hostile_text
from .rules import (
    BY_PATH,
    CONTROL,
    EVIL,
    Answer,
    assert_app_url,
    assert_same_origin,
    check,
    check_logout_url,
)
from .sending import asgi, fresh, logged_in_client, send

OPEN_REDIRECTS = [
    f"https://{EVIL}",
    f"http://{EVIL}/path",
    f"HTTPS://{EVIL}",
    f"https:{EVIL}",
    f"https:/{EVIL}",
    f"//{EVIL}",
    f"///{EVIL}",
    f"////{EVIL}",
    f"//{EVIL}/%2F..",
    f"/\\{EVIL}",
    f"\\\\{EVIL}",
    f"\\/{EVIL}",
    f"/\\/{EVIL}",
    f"/{EVIL}\\@127.0.0.1:8000",
    f"%2F%2F{EVIL}",
    f"/%2F{EVIL}",
    f"/%2f%2f{EVIL}",
    f"/%252F%252F{EVIL}",
    f"/%25252F%25252F{EVIL}",
    f"/%2525252F%2525252F{EVIL}",
    f"/%5C{EVIL}",
    f"/%5c%5c{EVIL}",
    f"/%255C{EVIL}",
    f"%5C%5C{EVIL}",
    f"/%09/{EVIL}",
    f"/%0a/{EVIL}",
    f"/%0d/{EVIL}",
    f"/%00/{EVIL}",
    f"/\t/{EVIL}",
    f"/\n/{EVIL}",
    f"/\r/{EVIL}",
    f"/\x00/{EVIL}",
    f" //{EVIL}",
    f"\t//{EVIL}",
    f"\x01//{EVIL}",
    f"/ /{EVIL}",
    f"/\x7f/{EVIL}",
    f"/\u3000/{EVIL}",
    f"\uff0f\uff0f{EVIL}",  # fullwidth solidus
    f"/%E3%80%80/{EVIL}",
    f"@{EVIL}",
    f"127.0.0.1:8000@{EVIL}",
    f"http://127.0.0.1:8000@{EVIL}/",
    f"http://127.0.0.1:8000%40{EVIL}/",
    f"//127.0.0.1:8000@{EVIL}",
    f"/@{EVIL}",
    f"/.{EVIL}",
    f"{EVIL}",
    f"{EVIL}/path",
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "java\tscript:alert(1)",
    "javascript%3Aalert(1)",
    "/javascript:alert(1)",
    " javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "/\r\nSet-Cookie: h0st1le=1",
    "/%0d%0aSet-Cookie:%20h0st1le=1",
    "/%E5%98%8A%E5%98%8DSet-Cookie:h0st1le=1",
    "/" + "a" * 3000,
    f"/?next=//{EVIL}",
    "/#//" + EVIL,
    "",
    "?",
    "#",
    ".",
    "..",
    f"./{EVIL}",
]
FRIENDLY = ["/", "/profile", "/orders?page=2&sort=desc", "/a/b#section", "/search?q=caf%C3%A9"]


def login_through_provider(client: TestClient, provider: FakeProvider, start: Any) -> Any:
    assert start.status_code == 303, start.text
    check(Answer.of(start), BY_PATH["/auth/login"])
    back = provider.login(start.headers["location"])
    final = client.get(back)
    assert final.status_code == 303, final.text
    check(Answer.of(final), BY_PATH["/auth/callback"], allowed={303})
    assert_same_origin(final.headers["location"])
    return final


def assert_login_returns_same_origin(client: TestClient, provider: FakeProvider, value: str) -> str:
    # As a parameter value (encoded once by the client) ...
    start = fresh(client).get("/auth/login", params={"returnTo": value})
    location = login_through_provider(client, provider, start).headers["location"]
    # ... and as written in the query string, however odd.
    raw = value.encode()
    answer = asgi(client, "GET", "/auth/login", query_string=b"returnTo=" + raw)
    check(answer, BY_PATH["/auth/login"])
    return location


def assert_logout_returns_same_origin(client: TestClient, value: str, *, html: bool) -> str:
    """Logout with this returnTo (with the client's session, if any); returns where the
    provider is asked to send the user back to."""
    headers = {"accept": "text/html"} if html else {}
    answer = Answer.of(client.get("/auth/logout", params={"returnTo": value}, headers=headers))
    check(answer, BY_PATH["/auth/logout"])
    back = check_logout_url(answer.header("location") or "")
    raw = value.encode()
    answer = asgi(client, "GET", "/auth/logout", query_string=b"returnTo=" + raw)
    check(answer, BY_PATH["/auth/logout"])
    return back


@pytest.mark.parametrize("value", OPEN_REDIRECTS)
def test_open_redirect_corpus_after_login(
    client: TestClient, provider: FakeProvider, value: str
) -> None:
    location = assert_login_returns_same_origin(client, provider, value)
    if EVIL in value and not value.startswith("/"):
        assert location == "/"


@pytest.mark.parametrize("value", OPEN_REDIRECTS)
def test_open_redirect_corpus_after_logout(client: TestClient, value: str) -> None:
    back = assert_logout_returns_same_origin(fresh(client), value, html=True)
    if EVIL in value and not value.startswith("/"):
        assert back == APP_URL + "/"


def test_open_redirect_corpus_after_logout_of_a_session(
    client: TestClient, provider: FakeProvider
) -> None:
    """Logged in, the logout URL also carries id_token_hint: returnTo follows the same rule."""
    for value in OPEN_REDIRECTS[::5]:
        logged_in_client(client, provider)
        answer = client.get("/auth/logout", params={"returnTo": value})
        check(Answer.of(answer), BY_PATH["/auth/logout"])  # post_logout_redirect_uri included
        assert "id_token_hint" in query(answer.headers["location"])
        assert client.get("/auth/profile").status_code == 401


@pytest.mark.parametrize("value", FRIENDLY)
def test_app_paths_are_kept_after_login_and_logout(
    client: TestClient, provider: FakeProvider, value: str
) -> None:
    """The guard is not so strict that it breaks ordinary return paths."""
    assert assert_login_returns_same_origin(client, provider, value) == value
    assert assert_logout_returns_same_origin(client, value, html=True) == APP_URL + value


REDIRECT_ATOMS = [
    "/",
    "//",
    "\\",
    "/\\",
    "%2F",
    "%2f",
    "%252F",
    "%25252F",
    "%5C",
    "%255C",
    "%09",
    "%0A",
    "%00",
    "\t",
    "\n",
    " ",
    "@",
    ":",
    "%3A",
    "?",
    "#",
    ".",
    "..",
    "https:",
    "http:",
    "javascript:",
    "data:",
    "127.0.0.1:8000",
    EVIL,
    "%40",
    "\uff0f",
    "\u3000",
    "a",
]
redirect_targets = st.lists(st.sampled_from(REDIRECT_ATOMS), min_size=1, max_size=8).map("".join)


@FEW
@given(value=redirect_targets)
def test_fuzzed_return_to_after_login(
    client: TestClient, provider: FakeProvider, value: str
) -> None:
    assert_login_returns_same_origin(client, provider, value)


@FUZZ
@given(value=redirect_targets | hostile_text)
def test_fuzzed_return_to_after_logout(client: TestClient, value: str) -> None:
    route = BY_PATH["/auth/logout"]
    answer = send(client, route, params=[("returnTo", value)])
    check(answer, route)
    check_logout_url(answer.header("location") or "")


def test_post_logout_redirect_without_an_end_session_endpoint(
    client: TestClient, provider: FakeProvider
) -> None:
    """A provider without RP-initiated logout: the app redirects to returnTo itself."""
    provider.metadata = {"end_session_endpoint": None}
    for value in OPEN_REDIRECTS:
        answer = fresh(client).get("/auth/logout", params={"returnTo": value})
        assert answer.status_code == 303
        assert_app_url(answer.headers["location"])
        assert not CONTROL.search(answer.headers["location"])
        if EVIL in value and not value.startswith("/"):
            assert answer.headers["location"] == APP_URL + "/", value
    answer = fresh(client).get("/auth/logout", params={"returnTo": "/profile"})
    assert answer.headers["location"] == APP_URL + "/profile"
