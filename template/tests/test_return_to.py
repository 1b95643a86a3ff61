"""`returnTo` only ever leads to a path of this app (no open redirects)."""

import pytest
from fastapi.testclient import TestClient

from app.auth.urls import MAX_RETURN_TO_LENGTH, safe_return_to
from devserver.provider import FakeProvider
from tests.helpers import log_in

HOSTILE = [
    "https://evil.example",
    "http://evil.example/path",
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/%2Fevil.example",
    "/%2F%2Fevil.example",
    "%2F%2Fevil.example",
    "/%252F%252Fevil.example",
    "/%5Cevil.example",
    "/%255Cevil.example",
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "/\tevil",
    "/%09/evil.example",
    "/\r\nSet-Cookie: x=1",
    "/%0d%0aSet-Cookie:%20x=1",
    "https:evil.example",
    "evil.example",
    "/x" + "a" * 5000,
    "/" + "a" * MAX_RETURN_TO_LENGTH,
    "",
    "/\x00",
    "/%00",
    "/%7F",
    "/\x7f",
    "/%25252F%25252Fevil.example",  # encoded three times
    "/a%25252525252F",  # encoded more often than anyone would
    "/a%252520b",  # a harmless path, but encoded three times: more than links ever are
    "@evil.example",
    "https://127.0.0.1:8000@evil.example/",
    # Dot segments: under a base path they would lead to another app on the same host.
    "/../elsewhere",
    "/a/../../elsewhere",
    "/..",
    "/./elsewhere",
    "/%2e%2e/elsewhere",
    "/.%2E/elsewhere",
    "/%252e%252e/elsewhere",
    "/..;/elsewhere",
]

FRIENDLY = [
    "/",
    "/profile",
    "/orders?page=2&sort=desc",
    "/a/b#section",
    "/search?q=caf%C3%A9",
    "/my%20files",
    "/my files",
    "/files/report%252Epdf",  # encoded twice: fine
    "/" + "a" * (MAX_RETURN_TO_LENGTH - 1),
    "/a/...",  # not dot segments
    "/a/.b",
    "/.well-known/x",
    "/search?q=/../",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_targets_fall_back_to_home(value: str) -> None:
    assert safe_return_to(value) == "/"


@pytest.mark.parametrize("value", FRIENDLY)
def test_app_paths_are_kept(value: str) -> None:
    assert safe_return_to(value) == value


@pytest.mark.parametrize("value", HOSTILE[:12])
def test_login_returns_only_to_app_paths(
    client: TestClient, provider: FakeProvider, value: str
) -> None:
    assert log_in(client, provider, returnTo=value).headers["location"] == "/"
