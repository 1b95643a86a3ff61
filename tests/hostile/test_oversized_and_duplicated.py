"""Oversized query strings and cookies, and parameters given more than once."""

import secrets

import pytest
from devserver.provider import FakeProvider
from fastapi.testclient import TestClient
from tests.helpers import ISSUER, query

from .rules import BY_PATH, EVIL, MARKUP, Answer, Route, assert_same_origin, check
from .sending import fresh, send


@pytest.mark.parametrize("size", [8193, 65_536])
def test_oversized_query_strings(client: TestClient, route: Route, size: int) -> None:
    for params in (
        [("returnTo", "/" + "a" * size)],
        [("state", "s" * size), ("code", "c")],
        [("login_hint", "h" * size), ("error_description", "<b>" * (size // 3))],
        [(f"p{i}", "v") for i in range(size // 4)],
        [("returnTo", "/"), ("x", "%41" * (size // 3))],
    ):
        check(send(client, route, params=params, headers={"accept": "text/html"}), route)
    huge = [("returnTo", "/" + "a" * 1_000_000)]
    check(send(client, route, params=huge, headers={"accept": "text/html"}), route)


def test_oversized_callback_is_refused_before_the_state_is_looked_up(
    client: TestClient,
) -> None:
    location = fresh(client).get("/auth/login").headers["location"]
    state = query(location)["state"]
    answer = client.get("/auth/callback", params={"state": state, "code": "c", "pad": "x" * 9000})
    check(Answer.of(answer), BY_PATH["/auth/callback"])
    assert "too large" in answer.text


@pytest.mark.parametrize("size", [8193, 20_000, 70_000])
def test_oversized_cookies(client: TestClient, route: Route, size: int) -> None:
    jars = [
        f"app_session={'A' * size}",
        "; ".join(f"app_session.{i}={'B' * 3900}" for i in range(size // 3900 + 1)),
        "; ".join(f"app_session.{i}={'C' * 3900}" for i in range(17)),
        "; ".join(f"app_tx.{secrets.token_urlsafe(32)}={'D' * 200}" for _ in range(size // 250)),
        "; ".join(f"junk{i}={'E' * 100}" for i in range(size // 100)),
    ]
    for jar in jars:
        headers = {"cookie": jar, "accept": "text/html"}
        check(send(fresh(client), route, headers=headers), route)


def test_junk_pending_logins_are_dropped(client: TestClient) -> None:
    route = BY_PATH["/auth/login"]
    junk = "; ".join(f"app_tx.{secrets.token_urlsafe(24)}=junk{i}" for i in range(200))
    answer = send(fresh(client), route, headers={"cookie": junk})
    check(answer, route, allowed={303})
    # Unreadable pending logins are dropped (deleted), the new one is set.
    deleted = [c for c in answer.header_list("set-cookie") if "Max-Age=0" in c]
    assert 200 - 8 <= len(deleted) <= 200  # the newest few may stay (MAX_PENDING)


@pytest.mark.parametrize(
    "params",
    [
        [("state", "a" * 43), ("state", "b" * 43), ("code", "c")],
        [("state", "{state}"), ("state", "{state}"), ("code", "c")],
        [("state", "{state}"), ("code", "c"), ("code", "d")],
        [("state", "{state}"), ("code", "c"), ("iss", ISSUER), ("iss", f"https://{EVIL}")],
        [("state", "{state}"), ("error", "x"), ("error", "y")],
        [("state", "{state}"), ("error_description", "a"), ("error_description", MARKUP[0])],
    ],
)
def test_duplicated_callback_parameters_are_refused(
    client: TestClient, provider: FakeProvider, params: list[tuple[str, str]]
) -> None:
    location = fresh(client).get("/auth/login").headers["location"]
    state = query(location)["state"]
    params = [(k, v.replace("{state}", state)) for k, v in params]
    answer = client.get("/auth/callback", params=params, headers={"accept": "text/html"})
    check(Answer.of(answer), BY_PATH["/auth/callback"])
    assert "repeats" in answer.text or "expired" in answer.text
    assert client.get("/auth/profile").status_code == 401


@pytest.mark.parametrize(
    "values",
    [
        ["/ok", f"//{EVIL}"],
        [f"//{EVIL}", "/ok"],
        [f"https://{EVIL}", f"/\\{EVIL}"],
        ["/ok", "/ok2"],
    ],
)
def test_duplicated_return_to_stays_same_origin(
    client: TestClient, provider: FakeProvider, values: list[str]
) -> None:
    start = fresh(client).get("/auth/login", params=[("returnTo", v) for v in values])
    check(Answer.of(start), BY_PATH["/auth/login"])
    final = client.get(provider.login(start.headers["location"]))
    assert final.status_code == 303
    assert_same_origin(final.headers["location"])
    assert final.headers["location"] in ("/", *values)

    logout = client.get("/auth/logout", params=[("returnTo", v) for v in values])
    check(Answer.of(logout), BY_PATH["/auth/logout"])
