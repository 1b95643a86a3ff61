"""Sessions, whatever the store: expiry, renewal, secret rotation, cookie flags."""

import http.cookiejar
import time
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from app.auth.session_cookie import SESSION_COOKIE
from app.auth.urls import CALLBACK_PATH, LOGIN_PATH
from app.config import Settings
from devserver.provider import FakeProvider
from tests.conftest import SESSION_SECRET
from tests.helpers import (
    PROFILE,
    auth_of,
    install_session,
    log_in,
    make_session,
    replace_cookie,
    session_cookies,
    stored_session,
)

OTHER_SECRET = "Zq3vN8pXw2LrT6yB1mKc9HdJ4sFg7QaE"


def test_every_login_gets_a_new_session_cookie(client: TestClient, provider: FakeProvider) -> None:
    log_in(client, provider, "alice")
    first = client.cookies[SESSION_COOKIE]
    log_in(client, provider, "bob")

    assert client.cookies[SESSION_COOKIE] != first
    assert client.get(PROFILE).json()["sub"] == "bob"


def test_a_session_ends_when_the_providers_session_does(
    login_as: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    ends = int(time.time()) + 3600  # Auth0's `session_expiry` claim in the ID token
    client = login_as("alice", session_expiry=ends)
    [cookie] = session_cookies_of(client)
    assert cookie.expires is not None and cookie.expires <= ends + 1
    assert client.get(PROFILE).status_code == 200

    later = time.time() + 3600
    monkeypatch.setattr(time, "time", lambda: later)
    assert client.get(PROFILE).status_code == 401


def session_cookies_of(client: TestClient) -> list[http.cookiejar.Cookie]:
    return [c for c in client.cookies.jar if c.name.startswith(SESSION_COOKIE)]


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        "a.b.c.d.e",
        "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..AAAA.BBBB.CCCC",
        "A" * 43,
        "%00%FF" * 100,
        "x" * 4000,
    ],
)
def test_malformed_or_unknown_cookies_mean_no_session(client: TestClient, value: str) -> None:
    replace_cookie(client, SESSION_COOKIE, value)
    replace_cookie(client, f"{SESSION_COOKIE}.x", "1")
    replace_cookie(client, f"{SESSION_COOKIE}_evil", "2")

    assert client.get(PROFILE).status_code == 401
    assert client.get("/", headers={"accept": "text/html"}).status_code == 200


# (created, last seen) this long ago, from the lifetimes in the settings (yours may differ
# from the defaults): absolute `a` after login, `i` without a request.
Ages = Callable[[int, int], tuple[int, int]]


@pytest.mark.parametrize(
    ("ages", "alive"),
    [
        (lambda a, i: (60, 60), True),
        (lambda a, i: (a + 1, 10), False),  # past the absolute lifetime, though active
        (lambda a, i: (a, 10), False),  # the absolute lifetime ends now
        (lambda a, i: (max(a - 1, i + 1), i + 1), False),  # inactive for too long
        (lambda a, i: (a * 9 // 10, min(i * 9 // 10, a * 9 // 10)), True),  # old, still used
    ],
    ids=["fresh", "past-absolute", "absolute-ends-now", "inactive", "old-but-active"],
)
def test_rolling_and_absolute_expiry(client: TestClient, ages: Ages, alive: bool) -> None:
    lifetime = auth_of(client).lifetime
    created_ago, touched_ago = ages(lifetime.absolute, lifetime.inactivity)
    now = int(time.time())
    install_session(
        client, make_session(created_at=now - created_ago, touched_at=now - touched_ago)
    )

    assert client.get(PROFILE).status_code == (200 if alive else 401)


def test_session_is_renewed_only_when_due(client: TestClient) -> None:
    now = int(time.time())
    recent = make_session(created_at=now - 3600, touched_at=now - 60)
    install_session(client, recent)
    assert client.get(PROFILE).status_code == 200
    assert stored_session(client) == recent

    install_session(client, make_session(created_at=now - 3600, touched_at=now - 400))
    assert client.get(PROFILE).status_code == 200
    renewed = stored_session(client)
    assert renewed is not None
    assert renewed.touched_at >= now and renewed.created_at == now - 3600


def test_short_sessions_are_renewed_sooner(client_for: Callable[..., TestClient]) -> None:
    client = client_for(session_inactivity_duration=600)  # renewed after a tenth of that
    now = int(time.time())
    install_session(client, make_session(created_at=now - 3600, touched_at=now - 70))

    assert client.get(PROFILE).status_code == 200
    renewed = stored_session(client)
    assert renewed is not None and renewed.touched_at >= now


def test_a_session_is_renewed_once_the_interval_has_passed(
    client: TestClient, settings: Settings
) -> None:
    interval = min(300, settings.session_inactivity_duration // 10)
    now = int(time.time())
    install_session(client, make_session(created_at=now - 3600, touched_at=now - interval))

    assert client.get(PROFILE).status_code == 200
    renewed = stored_session(client)
    assert renewed is not None and renewed.touched_at >= now


def test_secrets_rotate_without_logging_anyone_out(
    client_for: Callable[..., TestClient],
) -> None:
    before = client_for()
    install_session(before, make_session())

    for secrets, status in ((f"{OTHER_SECRET},{SESSION_SECRET}", 200), (OTHER_SECRET, 401)):
        after = client_for(session_secret=secrets)
        for name, value in before.cookies.items():
            replace_cookie(after, name, value)
        assert after.get(PROFILE).status_code == status, secrets


def test_sessions_started_after_a_rotation_outlive_the_old_secret(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    rotated = client_for(session_secret=f"{OTHER_SECRET},{SESSION_SECRET}")
    assert log_in(rotated, provider).status_code == 303

    for secrets, status in ((OTHER_SECRET, 200), (SESSION_SECRET, 401)):
        later = client_for(session_secret=secrets)
        for name, value in rotated.cookies.items():
            replace_cookie(later, name, value)
        assert later.get(PROFILE).status_code == status, secrets


def test_session_cookie_flags(
    client: TestClient, provider: FakeProvider, settings: Settings
) -> None:
    [line] = session_cookies(log_in(client, provider))

    max_age = int(line.split("Max-Age=")[1].split(";")[0])
    assert settings.session_inactivity_duration - 5 <= max_age
    assert max_age <= settings.session_absolute_duration

    assert "HttpOnly" in line and "SameSite=lax" in line and "Path=/" in line
    assert "Secure" not in line  # APP_BASE_URL is http://


def test_cookies_are_secure_for_https_apps(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    provider.redirect_uris = (f"https://app.example.com{CALLBACK_PATH}",)
    client = client_for(app_base_url="https://app.example.com")

    login = client.get(LOGIN_PATH)
    assert all("Secure" in line for line in login.headers.get_list("set-cookie"))
    assert all(
        line.startswith("__Host-") and "Path=/;" in line and "Domain" not in line
        for line in login.headers.get_list("set-cookie")
    )
    callback = client.get(provider.login(login.headers["location"]))
    assert callback.status_code == 303
    assert session_cookies(callback)
    assert all(
        line.startswith(f"__Host-{SESSION_COOKIE}=") and "Secure" in line and "Path=/;" in line
        for line in session_cookies(callback)
    )


def test_pages_that_read_the_session_are_not_cached(logged_in: TestClient) -> None:
    for path in ("/", "/profile", PROFILE):
        assert logged_in.get(path).headers["cache-control"] == "no-store"
