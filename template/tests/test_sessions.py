"""Encrypted cookie sessions: chunking, tampering, secret rotation, expiry."""

import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.auth import policy
from app.auth.cookies import CookieCipher
from app.config import Settings
from devserver.provider import FakeProvider
from tests.conftest import SESSION_SECRET
from tests.helpers import log_in, replace_cookie, session_cookie, session_cookies

OTHER_SECRET = "Zq3vN8pXw2LrT6yB1mKc9HdJ4sFg7QaE"


def current_payload(client: TestClient, settings: Settings) -> dict[str, Any]:
    payload = CookieCipher(settings.session_secrets, "session").decrypt(
        client.cookies["app_session"]
    )
    assert payload is not None
    return payload


def test_large_sessions_are_chunked_and_stale_chunks_removed(
    client: TestClient, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(policy, "SESSION_CLAIMS", (*policy.SESSION_CLAIMS, "bio"))
    provider.id_token_claims = {"bio": "x" * 5000}

    response = log_in(client, provider)

    lines = session_cookies(response)
    assert len(lines) > 2
    assert all(
        len(f"Set-Cookie: {line}") <= 4096 for line in response.headers.get_list("set-cookie")
    )
    assert client.get("/auth/profile").json()["bio"] == "x" * 5000

    provider.id_token_claims = {}
    smaller = log_in(client, provider, "bob")

    deleted = [
        line
        for line in smaller.headers.get_list("set-cookie")
        if "Max-Age=0" in line and line.startswith("app_session")
    ]
    assert {line.split("=")[0] for line in deleted} == {
        f"app_session.{i}" for i in range(len(lines))
    }
    assert {c.name for c in client.cookies.jar if c.name.startswith("app_session")} == {
        "app_session"
    }
    assert client.get("/auth/profile").json()["sub"] == "bob"


@pytest.mark.parametrize(
    "cookies",
    [
        {"app_session": "garbage"},
        {"app_session": "a.b.c.d.e"},
        {"app_session": "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..AAAA.BBBB.CCCC"},
        {"app_session.0": "half", "app_session.1": "of nothing"},
        {"app_session.x": "1", "app_session_evil": "2", "app_session.": "3"},
        {"app_session": "%00%FF" * 100},
    ],
)
def test_malformed_or_foreign_cookies_mean_no_session(
    client: TestClient, cookies: dict[str, str]
) -> None:
    for name, value in cookies.items():
        replace_cookie(client, name, value)

    assert client.get("/auth/profile").status_code == 401
    assert client.get("/", headers={"accept": "text/html"}).status_code == 200


def test_tampered_cookie_is_rejected(logged_in: TestClient) -> None:
    value = logged_in.cookies["app_session"]
    middle = len(value) // 2
    flipped = value[:middle] + ("A" if value[middle] != "A" else "B") + value[middle + 1 :]
    replace_cookie(logged_in, "app_session", flipped)

    assert logged_in.get("/auth/profile").status_code == 401


def test_transaction_cookies_cannot_stand_in_for_sessions(
    logged_in: TestClient, settings: Settings
) -> None:
    payload = current_payload(logged_in, settings)
    forged = CookieCipher(settings.session_secrets, "transaction").encrypt(payload)
    replace_cookie(logged_in, "app_session", forged)

    assert logged_in.get("/auth/profile").status_code == 401


def test_cookie_from_another_secret_is_rejected(logged_in: TestClient, settings: Settings) -> None:
    payload = current_payload(logged_in, settings)
    stranger = CookieCipher([OTHER_SECRET], "session").encrypt(payload)
    replace_cookie(logged_in, "app_session", stranger)

    assert logged_in.get("/auth/profile").status_code == 401


def test_secrets_rotate_without_logging_anyone_out(
    logged_in: TestClient, settings: Settings, client_for: Callable[..., TestClient]
) -> None:
    payload = {**current_payload(logged_in, settings), "touched_at": int(time.time()) - 400}
    old_cookie = session_cookie(settings, payload)

    rotated = client_for(session_secret=f"{OTHER_SECRET},{SESSION_SECRET}")
    replace_cookie(rotated, "app_session", old_cookie)
    response = rotated.get("/auth/profile")
    assert response.status_code == 200
    # The renewed cookie is encrypted with the new first secret only.
    assert CookieCipher([OTHER_SECRET], "session").decrypt(rotated.cookies["app_session"])

    retired = client_for(session_secret=OTHER_SECRET)
    replace_cookie(retired, "app_session", old_cookie)
    assert retired.get("/auth/profile").status_code == 401


@pytest.mark.parametrize(
    ("created_ago", "touched_ago", "alive"),
    [
        (60, 60, True),
        (7 * 24 * 3600 + 1, 10, False),  # past the absolute lifetime, though active
        (3600, 24 * 3600 + 1, False),  # inactive for longer than a day
        (6 * 24 * 3600, 23 * 3600, True),
    ],
)
def test_rolling_and_absolute_expiry(
    logged_in: TestClient, settings: Settings, created_ago: int, touched_ago: int, alive: bool
) -> None:
    now = int(time.time())
    payload = {**current_payload(logged_in, settings),
               "created_at": now - created_ago, "touched_at": now - touched_ago}  # fmt: skip
    replace_cookie(logged_in, "app_session", session_cookie(settings, payload))

    assert logged_in.get("/auth/profile").status_code == (200 if alive else 401)


def test_session_is_renewed_only_when_due(logged_in: TestClient, settings: Settings) -> None:
    fresh = logged_in.get("/auth/profile")
    assert not session_cookies(fresh)

    now = int(time.time())
    payload = {**current_payload(logged_in, settings), "touched_at": now - 400}
    replace_cookie(logged_in, "app_session", session_cookie(settings, payload))

    renewed = logged_in.get("/auth/profile")
    [line] = session_cookies(renewed)
    assert "Max-Age=86400" in line or "Max-Age=86399" in line
    assert current_payload(logged_in, settings)["touched_at"] >= now
    assert current_payload(logged_in, settings)["created_at"] == payload["created_at"]


def test_cookies_are_secure_for_https_apps(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    provider.redirect_uris = ("https://app.example.com/auth/callback",)
    client = client_for(app_base_url="https://app.example.com")

    login = client.get("/auth/login")
    assert all("Secure" in line for line in login.headers.get_list("set-cookie"))
    callback = client.get(provider.login(login.headers["location"]))
    assert callback.status_code == 303
    assert all("Secure" in line for line in session_cookies(callback))


def test_pages_that_read_the_session_are_not_cached(logged_in: TestClient) -> None:
    for path in ("/", "/profile", "/auth/profile"):
        assert logged_in.get(path).headers["cache-control"] == "no-store"
