"""Helpers for tests that log in against the in-process development provider."""

import base64
import json
import secrets
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from http.cookiejar import Cookie
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

import httpx2
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.testclient import TestClient

from app.auth.core import Auth
from app.auth.session_cookie import SESSION_COOKIE, request_state
from app.auth.sessions import AccessToken, Session
from app.auth.transactions import COOKIE_PREFIX
from app.auth.urls import AUTH_PREFIX, LOGIN_PATH
from devserver.provider import FakeProvider

APP_URL = "http://127.0.0.1:8000"
ISSUER = "https://provider.test"
CLIENT_ID = "dev-client"
# The auth routes the tests call most (they move with AUTH_PREFIX, in app/auth/urls.py).
PROFILE = f"{AUTH_PREFIX}/profile"
LOGOUT = f"{AUTH_PREFIX}/logout"
BACKCHANNEL_LOGOUT = f"{AUTH_PREFIX}/backchannel-logout"


def start_login(client: TestClient, **params: str) -> httpx2.Response:
    """GET the login route; return the redirect to the provider."""
    response = client.get(LOGIN_PATH, params=params)
    assert response.status_code == 303, response.text
    return response


def log_in(
    client: TestClient, provider: FakeProvider, username: str = "alice", **params: str
) -> httpx2.Response:
    """Log in through the provider; return the app's answer to the callback."""
    authorize_url = start_login(client, **params).headers["location"]
    return client.get(provider.login(authorize_url, username))


def log_in_each(client: TestClient, provider: FakeProvider, *users: str) -> dict[str, str]:
    """Log each user in, one after the other in `client`; their session cookies by user
    (the client keeps the last one's)."""
    cookies = {}
    for user in users:
        client.cookies.clear()
        log_in(client, provider, user)
        cookies[user] = client.cookies[SESSION_COOKIE]
    return cookies


def query(url: str) -> dict[str, str]:
    return {name: values[-1] for name, values in parse_qs(urlsplit(url).query).items()}


COOKIE_NAME_PREFIXES = ("", "__Host-", "__Secure-")


def session_cookies(response: httpx2.Response) -> list[str]:
    """The Set-Cookie lines of a response that set (not delete) session cookies."""
    return [
        line
        for line in response.headers.get_list("set-cookie")
        if line.startswith(
            tuple(f"{prefix}{SESSION_COOKIE}" for prefix in ("", "__Host-", "__Secure-"))
        )
        and "Max-Age=0" not in line
    ]


def transaction_cookies(client: TestClient) -> list[Cookie]:
    """The client's cookies of logins it has started and not finished."""
    return [c for c in client.cookies.jar if c.name.startswith(COOKIE_PREFIX)]


def replace_cookie(client: TestClient, name: str, value: str) -> None:
    """Put a cookie in the client's jar in place of the one the app set."""
    client.cookies.set(name, value, domain=urlsplit(str(client.base_url)).hostname or "")


def unsigned_token(claims: dict[str, Any], alg: str = "none") -> str:
    """A JWT with no valid signature, as an attacker would send it."""

    def encode(part: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()

    return f"{encode({'alg': alg, 'kid': 'dev-1'})}.{encode(claims)}."


def claims_of(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified (for tests that need its jti)."""
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def post_logout(client: TestClient, token: str) -> httpx2.Response:
    """POST a logout token to the back-channel logout route, as the provider does."""
    return client.post(BACKCHANNEL_LOGOUT, data={"logout_token": token})


def send_backchannel_logout(
    client: TestClient, provider: FakeProvider, *, sub: str | None = None, sid: str | None = None
) -> httpx2.Response:
    """Have the provider end sessions of `sub` (or of provider session `sid`) right away."""
    return post_logout(client, provider.logout_token(sub=sub, sid=sid))


def make_session(**changes: Any) -> Session:
    """A session for alice, as a login would create it, with `changes` applied."""
    started = int(time.time())
    session = Session(
        user={"sub": "alice", "name": "Alice", "email": "alice@example.com"},
        # Readable, as a refresh compares the new ID token's audiences with it.
        id_token=unsigned_token({"iss": ISSUER, "aud": CLIENT_ID, "sub": "alice"}, alg="RS256"),
        refresh_token="refresh-token",
        access_tokens=(
            AccessToken("access-token", started + 3600, "openid profile email", audience=None),
        ),
        sid="provider-session",
        login_id=secrets.token_urlsafe(16),
        created_at=started,
        touched_at=started,
    )
    return replace(session, **changes)


def auth_of(client: TestClient) -> Auth:
    auth = client.app.state.auth  # type: ignore[attr-defined]
    assert isinstance(auth, Auth)
    return auth


def install_session(client: TestClient, session: Session) -> None:
    """Give the client a login holding exactly `session`, stored the way the app stores it."""
    assert client.portal is not None, "use the client inside `with TestClient(...)`"
    request = _request(client, with_cookies=False)  # a new login, not a successor of one
    client.portal.call(auth_of(client).sessions.start, request, session)
    for cookie in [c for c in client.cookies.jar if c.name.startswith(SESSION_COOKIE)]:
        client.cookies.delete(cookie.name)
    for header in request_state(request).cookies.values():
        name, _, rest = header.decode().partition("=")
        replace_cookie(client, name, rest.split(";")[0])


def stored_session(client: TestClient) -> Session | None:
    """The session the app would see for the client's cookies right now."""
    assert client.portal is not None, "use the client inside `with TestClient(...)`"
    return client.portal.call(auth_of(client).sessions.current, _request(client))


def _request(client: TestClient, *, with_cookies: bool = True) -> Request:
    cookies = list(client.cookies.jar) if with_cookies else []
    cookie = "; ".join(f"{c.name}={c.value}" for c in cookies)
    return Request(
        {"type": "http", "method": "GET", "path": "/", "headers": [(b"cookie", cookie.encode())]}
    )


def assert_a_refused_logout_can_be_retried(
    logged_in: TestClient, provider: FakeProvider, refusing: AbstractContextManager[TestClient]
) -> None:
    """A back-channel logout the store cannot carry out answers 503 and forgets its token,
    so the provider's retry of the same token is accepted and ends the session.

    `refusing` yields a client of an app, sharing `logged_in`'s store, whose writes of
    sessions or logout records fail (logout-token ids can still be written).
    """
    assert logged_in.get(PROFILE).status_code == 200
    token = provider.logout_token(sub="alice")
    with refusing as failing:
        refused = post_logout(failing, token)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"] == "session_store_unavailable"
    assert logged_in.get(PROFILE).status_code == 200

    retried = post_logout(logged_in, token)
    assert retried.status_code == 200, retried.text
    assert logged_in.get(PROFILE).status_code == 401
    again = post_logout(logged_in, token)
    assert again.status_code == 400


def token_of_length(length: int, make: Callable[[str, str], str]) -> str:
    """A token exactly `length` characters long: `make(header_pad, claims_pad)` signs one
    with those filler strings in its header and claims (base64 cannot reach every length
    through the claims alone)."""
    for header_pad in ("", "x", "xx"):
        short = len(make(header_pad, ""))
        estimate = (length - short) * 3 // 4
        for size in range(max(estimate - 4, 0), estimate + 5):
            token = make(header_pad, "x" * size)
            if len(token) == length:
                return token
    raise AssertionError(f"no token of {length} characters")


def add_session_route(app: FastAPI, path: str, dependency: Callable[..., Any]) -> None:
    """Mount `GET path` answering `{"sub": ...}` for the session `dependency` gives."""
    router = APIRouter()

    @router.get(path)
    async def route(session: Annotated[Session, Depends(dependency)]) -> dict[str, str]:
        return {"sub": session.sub}

    app.include_router(router)
