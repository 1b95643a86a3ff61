"""Defences that no single route owns: what a discovery document may point the app at, and
what a request may write into the logs."""

import json
import logging
from base64 import urlsafe_b64decode, urlsafe_b64encode
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient
from joserfc import jwe

from app.auth.cookies import CookieCipher, derive_key
from app.auth.session_cookie import SESSION_COOKIE
from app.auth.transactions import COOKIE_PREFIX
from app.auth.urls import AUTH_PREFIX, CALLBACK_PATH, LOGIN_PATH
from app.main import create_app
from devserver.provider import FakeProvider
from tests.conftest import make_settings
from tests.helpers import (
    APP_URL,
    PROFILE,
    log_in,
    post_logout,
    start_login,
    stored_session,
    unsigned_token,
)


@pytest.mark.parametrize(
    "endpoint",
    [
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "userinfo_endpoint",
        "end_session_endpoint",
        "revocation_endpoint",
        "pushed_authorization_request_endpoint",
    ],
)
def test_a_discovery_document_cannot_send_secrets_in_the_clear(
    client: TestClient, provider: FakeProvider, endpoint: str
) -> None:
    provider.metadata = {endpoint: "http://provider.test/plain"}

    response = client.get(LOGIN_PATH, headers={"Accept": "application/json"})

    assert response.status_code == 502
    assert "https" in response.json()["error_description"]
    assert provider.requests == ["discovery"]


def test_a_development_provider_on_this_machine_may_use_http(provider: FakeProvider) -> None:
    local = FakeProvider("http://127.0.0.1:8001", redirect_uris=provider.redirect_uris)
    app = create_app(make_settings(local), provider_transport=local.transport)

    with TestClient(app, base_url=APP_URL, follow_redirects=False) as client:
        assert start_login(client).headers["location"].startswith("http://127.0.0.1:8001/")


def test_a_request_cannot_write_its_own_log_lines(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.auth")
    forged = "\n2026-12-06 INFO auth.login sub=admin"

    client.post(f"{AUTH_PREFIX}/sessions/{quote(forged)}/end")  # a path parameter
    post_logout(client, unsigned_token({"sub": "alice"}, alg=forged))  # a token's header
    client.get(CALLBACK_PATH, params={"state": "s" * 20, "error": forged})

    lines = [record.getMessage() for record in caplog.records]
    assert lines and not [line for line in lines if "\n" in line]


def test_a_provider_cannot_write_log_lines_through_a_subject_or_session_id(
    client: TestClient, provider: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.auth")
    sub = "mallory\n2026-12-06 INFO auth.login sub=admin"  # the dev provider's sub: the name

    assert log_in(client, provider, sub).status_code == 303
    post_logout(client, provider.logout_token(sub=sub, sid="s1\nauth.forged"))

    assert caplog.messages and not [line for line in caplog.messages if "\n" in line]


# -- numbers that JSON does not have, or that overflow a float ----------------------------


def rewrite_token_responses(provider: FakeProvider, old: bytes, new: bytes) -> None:
    """Have the provider's token endpoint answer with `old` replaced by `new` (raw JSON)."""
    answer = provider.transport.handle_async_request

    async def rewritten(request: httpx.Request) -> httpx.Response:
        response = await answer(request)
        if not request.url.path.endswith("/token"):
            return response
        body = (await response.aread()).replace(old, new)
        return httpx.Response(response.status_code, headers=response.headers, content=body)

    provider.transport.handle_async_request = rewritten  # type: ignore[method-assign]


@pytest.mark.parametrize("number", [b"1e400", b"Infinity", b"NaN"])
def test_a_token_response_with_a_number_beyond_json_is_a_provider_error(
    client: TestClient, provider: FakeProvider, number: bytes
) -> None:
    rewrite_token_responses(provider, b'"expires_in":3600', b'"expires_in":' + number)

    response = log_in(client, provider)  # 1e400 was a 500 (int(inf))

    assert response.status_code == 502
    assert stored_session(client) is None


def test_an_id_token_that_expires_at_nan_is_refused(
    client: TestClient, provider: FakeProvider
) -> None:
    provider.id_token_claims = {"exp": float("nan")}  # passed every time check

    assert log_in(client, provider).status_code == 400
    assert stored_session(client) is None


@pytest.mark.parametrize("claims", [{"iat": float("nan")}, {"iat": float("nan"), "exp": None}])
def test_a_logout_token_issued_at_nan_is_refused(
    client: TestClient, provider: FakeProvider, claims: dict[str, Any]
) -> None:
    log_in(client, provider)

    response = post_logout(client, provider.logout_token(sub="alice", **claims))

    assert response.status_code == 400
    assert client.get(PROFILE).status_code == 200


HTTPS_APP = "https://app.example.com"


@pytest.fixture
def https_client(client_for: Callable[..., TestClient], provider: FakeProvider) -> TestClient:
    provider.redirect_uris = (f"{HTTPS_APP}{CALLBACK_PATH}",)
    return client_for(app_base_url=HTTPS_APP)


def test_a_planted_cookie_of_the_plain_name_does_not_replace_the_users_session(
    https_client: TestClient, provider: FakeProvider
) -> None:
    assert log_in(https_client, provider, "mallory").status_code == 303
    planted = https_client.cookies[f"__Host-{SESSION_COOKIE}"]  # the attacker's own session
    https_client.cookies.clear()
    assert log_in(https_client, provider, "alice").status_code == 303

    # A sibling subdomain can set `app_session` for the parent domain, never `__Host-...`.
    https_client.cookies.set(SESSION_COOKIE, planted, domain="app.example.com")

    assert https_client.get(PROFILE).json()["sub"] == "alice"


def test_a_planted_cookie_of_the_plain_name_logs_nobody_in(
    https_client: TestClient, provider: FakeProvider
) -> None:
    assert log_in(https_client, provider, "mallory").status_code == 303
    planted = https_client.cookies[f"__Host-{SESSION_COOKIE}"]  # the attacker's own session
    https_client.cookies.clear()  # the victim has no session of this app

    https_client.cookies.set(SESSION_COOKIE, planted, domain="app.example.com")

    assert https_client.get(PROFILE).status_code == 401
    assert https_client.get(PROFILE).status_code == 401


# A JWE whose header is JSON nested deeper than a recursive parser can go.
NESTED = urlsafe_b64encode(b"[" * 5000).rstrip(b"=").decode() + ".a.b.c.d"


def test_cookies_of_deeply_nested_json_are_no_cookies(
    client: TestClient, https_client: TestClient
) -> None:
    state = "s" * 20
    https_client.cookies.set(SESSION_COOKIE, NESTED, domain="app.example.com")  # plain name
    client.cookies.set(SESSION_COOKIE, NESTED)
    client.cookies.set(f"{COOKIE_PREFIX}{state}", NESTED)

    assert https_client.get(PROFILE).status_code == 401
    assert client.get(PROFILE).status_code == 401
    assert client.get(CALLBACK_PATH, params={"state": state, "code": "x"}).status_code == 400


SECRET = "Vt7Qm2Lx9Rk4Pz8Wn3Hj6Bc1Fd5Gs0Ya"


def header_of(value: str) -> dict[str, object]:
    part = value.split(".", 1)[0]
    header: dict[str, object] = json.loads(urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return header


def test_cookies_name_no_key_derived_from_the_secret() -> None:
    value = CookieCipher([SECRET], "session").encrypt({"sub": "alice"})

    assert "kid" not in header_of(value)  # no offline check of guessed secrets against it


def test_cookies_of_earlier_versions_still_open() -> None:
    key = derive_key(SECRET, "session")
    old_header = {"alg": "dir", "enc": "A256GCM", "kid": key.thumbprint()[:16]}
    old = jwe.encrypt_compact(old_header, b'{"sub":"alice"}', key)

    assert CookieCipher(["another-secret-" + SECRET, SECRET], "session").decrypt(old) == {
        "sub": "alice"
    }


@pytest.mark.parametrize("kid", ["unknown", ["a", "list"], 7])
def test_cookies_naming_an_unknown_key_are_refused(kid: object) -> None:
    cipher = CookieCipher([SECRET], "session")
    header = json.dumps({"alg": "dir", "enc": "A256GCM", "kid": kid}).encode()
    rest = cipher.encrypt({"sub": "alice"}).split(".", 1)[1]
    value = urlsafe_b64encode(header).rstrip(b"=").decode() + "." + rest

    assert cipher.decrypt(value) is None
