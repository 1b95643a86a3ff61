"""Tampered, truncated, re-ordered and foreign session and transaction cookies, and cookies
of an app with another SESSION_SECRET: none of them is a session."""

import base64
import secrets
from collections.abc import Callable

from devserver.provider import FakeProvider
from fastapi.testclient import TestClient
from tests.helpers import ISSUER, query

from .rules import BY_PATH, Answer, check
from .sending import fresh, jar_header, logged_in_client, send

OTHER_SECRET = "Zq3vN8pXw2LrT6yB1mKc9HdJ4sFg7QaE"
# A JWE whose header is JSON nested deeper than a recursive parser can go.
NESTED = base64.urlsafe_b64encode(b"[" * 5000).rstrip(b"=").decode() + ".a.b.c.d"


def session_value(client: TestClient) -> str:
    return client.cookies["app_session"]


B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def flip(value: str, index: int) -> str:
    """`value` with one character changed in its high bits (so even the last character of
    a base64url part, whose low bits may be padding, really changes the bytes)."""
    position = B64URL.find(value[index])
    replacement = "A" if position >= 16 else "w"
    return value[:index] + replacement + value[index + 1 :]


def chunks(value: str, count: int) -> list[str]:
    size = -(-len(value) // count)
    return [value[i : i + size] for i in range(0, len(value), size)]


def mixed_jwe(ours: str, theirs: str) -> list[str]:
    """`ours` (a compact JWE) with each part that differs taken from `theirs` instead."""
    mine, other = ours.split("."), theirs.split(".")
    mixed = []
    for index, (a, b) in enumerate(zip(mine, other, strict=True)):
        if a != b:  # the protected header and the (empty) key of `dir` are the same
            mixed.append(".".join([*mine[:index], b, *mine[index + 1 :]]))
    return mixed


def assert_anonymous(client: TestClient, cookie: str) -> None:
    """With this Cookie header the app sees no session, and says so without a 5xx."""
    for path, html, allowed in [
        ("/auth/profile", False, {401}),
        ("/profile", True, {303}),
        ("/", True, {200}),
        ("/auth/logout", True, {303}),
        ("/auth/login", True, {303}),
        ("/auth/callback", True, {400}),
    ]:
        headers = {"cookie": cookie, "accept": "text/html" if html else "application/json"}
        answer = send(client, BY_PATH[path], headers=headers)
        try:
            check(answer, BY_PATH[path], allowed=allowed)
            if path == "/":
                assert "alice" not in answer.text.lower() and "bob" not in answer.text.lower()
        except AssertionError as exc:
            raise AssertionError(f"GET {path} with Cookie: {cookie[:300]!r}: {exc}") from None


def is_cookie_store(client: TestClient) -> bool:
    sessions = client.app.state.auth.sessions  # type: ignore[attr-defined]
    return "cookie" in type(getattr(sessions, "store", sessions)).__name__.lower()


def tampered_session_cookies(alice: str, bob: str, cookie_store: bool) -> list[str]:
    """Cookie headers built from two genuine session cookies, none of them valid."""
    jars: list[list[tuple[str, str]]] = []
    for index in (0, 1, len(alice) // 2, len(alice) - 2, len(alice) - 1):
        jars.append([("app_session", flip(alice, index))])
    jars += [
        [("app_session", alice[:-1])],
        [("app_session", alice[1:])],
        [("app_session", alice[: len(alice) // 2])],
        [("app_session", alice + "A")],
        [("app_session", alice + alice)],
        [("app_session", alice.upper())],
        [("app_session", "." + alice)],
        [("app_session", alice.replace(".", "..", 1))],
        [("app_session", NESTED)],
    ]
    if cookie_store:
        a, b = chunks(alice, 4), chunks(bob, 4)
        numbered = lambda parts: [(f"app_session.{i}", p) for i, p in enumerate(parts)]  # noqa: E731
        jars += [
            numbered(a[:-1]),  # truncated: last chunk missing
            numbered(a[1:]),  # first chunk missing
            [(f"app_session.{i}", p) for i, p in enumerate(a) if i != 1],  # a gap
            numbered([a[1], a[0], *a[2:]]),  # re-ordered
            numbered(list(reversed(a))),
            numbered([a[0], b[1], *a[2:]]),  # a chunk of another session
            numbered([*a, "AAAA"]),  # one chunk too many
            numbered([a[0], a[1], flip(a[2], 3), a[3]]),  # a chunk tampered with
            [(f"app_session.0{i}", p) for i, p in enumerate(a)],  # leading zeros
            [(f"app_session.{i + 1}", p) for i, p in enumerate(a)],  # numbered from 1
            [("app_session", ".".join(alice.split(".")[::-1]))],
        ]
        jars += [[("app_session", mixed)] for mixed in mixed_jwe(alice, bob)]
    else:
        jars += [
            [("app_session.0", alice)],  # an id never comes in chunks
            [("app_session", alice[:20]), ("app_session.1", alice[20:])],
            [("app_session", secrets.token_urlsafe(32))],
        ]
    genuine = {f"app_session={alice}", f"app_session={bob}"}
    return [header for header in map(jar_header, jars) if header not in genuine]


def test_tampered_session_cookies_mean_no_session(
    client: TestClient, provider: FakeProvider
) -> None:
    logged_in_client(client, provider, "bob")
    bob = session_value(client)
    logged_in_client(client, provider, "alice")
    alice = session_value(client)
    assert (
        fresh(client).get("/auth/profile", headers={"cookie": f"app_session={alice}"}).json()["sub"]
        == "alice"
    )

    for cookie in tampered_session_cookies(alice, bob, is_cookie_store(client)):
        assert_anonymous(client, cookie)

    # Genuine cookies still work: nothing above ended them.
    for value, who in ((alice, "alice"), (bob, "bob")):
        answer = fresh(client).get("/auth/profile", headers={"cookie": f"app_session={value}"})
        assert answer.status_code == 200 and answer.json()["sub"] == who


def test_duplicate_session_cookies_never_mix_users(
    client: TestClient, provider: FakeProvider
) -> None:
    logged_in_client(client, provider, "bob")
    bob = session_value(client)
    logged_in_client(client, provider, "alice")
    alice = session_value(client)
    for cookie in (
        f"app_session={alice}; app_session={bob}",
        f"app_session={alice}; app_session=junk",
        f"app_session=junk; app_session={alice}",
        f"app_session.0={bob[:100]}; app_session.1={bob[100:]}; app_session={alice}",
    ):
        answer = fresh(client).get("/auth/profile", headers={"cookie": cookie})
        assert answer.status_code in (200, 401)
        if answer.status_code == 200:
            assert answer.json()["sub"] in ("alice", "bob")


def test_cookies_encrypted_with_another_secret(
    client: TestClient, provider: FakeProvider, client_for: Callable[..., TestClient]
) -> None:
    """Sessions and login transactions of an app with another SESSION_SECRET (same store)."""
    stranger = client_for(session_secret=OTHER_SECRET)
    logged_in_client(stranger, provider, "mallory")
    assert stranger.get("/auth/profile").status_code == 200
    value = session_value(stranger)
    assert_anonymous(client, f"app_session={value}")
    if is_cookie_store(client):
        named = [(f"app_session.{i}", p) for i, p in enumerate(chunks(value, 3))]
        assert_anonymous(client, jar_header(named))

    # A login started at the other app cannot be finished here.
    start = fresh(stranger).get("/auth/login")
    back = provider.login(start.headers["location"], "mallory")
    tx = [c for c in stranger.cookies.jar if c.name.startswith("app_tx.")]
    assert len(tx) == 1
    answer = fresh(client).get(
        back, headers={"cookie": f"{tx[0].name}={tx[0].value}", "accept": "text/html"}
    )
    check(Answer.of(answer), BY_PATH["/auth/callback"])
    assert fresh(client).get("/auth/profile").status_code == 401


def pending_login(client: TestClient) -> tuple[str, str, str]:
    """Start a login: (state, transaction cookie value, provider URL)."""
    location = fresh(client).get("/auth/login").headers["location"]
    state = query(location)["state"]
    return state, client.cookies[f"app_tx.{state}"], location


def test_tampered_transaction_cookies_are_refused(
    client: TestClient, provider: FakeProvider
) -> None:
    route = BY_PATH["/auth/callback"]
    other_state, other_value, _ = pending_login(client)
    state, value, location = pending_login(client)
    logged_in_client(client, provider)
    session = session_value(client)
    back = provider.login(location)  # the provider's genuine answer for `state`
    code = query(back)["code"]
    candidates = [
        (state, flip(value, len(value) // 2)),
        (state, flip(value, 0)),
        (state, flip(value, len(value) - 1)),
        (state, value[:-4]),
        (state, value[: len(value) // 2]),
        (state, value + value),
        (state, ".".join(value.split(".")[::-1])),
        (state, other_value),  # another login's transaction under this state's name
        (other_state, value),  # this transaction under another state's name
        (state, session),  # a session cookie (other purpose, other key) as a transaction
        (state, ""),
        (state, "A" * 9000),
        (state, NESTED),
    ]
    candidates += [(state, mixed) for mixed in mixed_jwe(value, other_value)]
    for name_state, cookie in candidates:
        params = {"state": state, "code": code, "iss": ISSUER}
        headers = {"cookie": f"app_tx.{name_state}={cookie}", "accept": "text/html"}
        answer = Answer.of(fresh(client).get("/auth/callback", params=params, headers=headers))
        check(answer, route)
        assert not [c for c in answer.header_list("set-cookie") if "Max-Age=0" not in c]

    # A transaction cookie cannot stand in for a session either.
    assert_anonymous(client, f"app_session={value}")
    # ... and the untouched transaction still completes its login.
    headers = {"cookie": f"app_tx.{state}={value}"}
    answer = fresh(client).get(back, headers=headers)
    assert answer.status_code == 303 and answer.headers["location"] == "/"
