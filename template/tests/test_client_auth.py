"""How the app talks to the provider's back end: private_key_jwt (RFC 7523) and PAR (RFC 9126)."""

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from starlette.responses import JSONResponse

from app.auth.client import CLIENT_ASSERTION_TYPE, MAX_REQUEST_URI_LENGTH, client_assertion
from app.auth.urls import CALLBACK_PATH, LOGIN_PATH
from devserver.provider import FakeProvider
from tests.helpers import (
    APP_URL,
    ISSUER,
    LOGOUT,
    PROFILE,
    log_in,
    query,
    start_login,
    transaction_cookies,
    unsigned_token,
)

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"


def generate_key(kind: str) -> RSAKey | ECKey:
    return RSAKey.generate_key(2048) if kind == "RSA" else ECKey.generate_key(kind)


def private_pem(key: RSAKey | ECKey) -> str:
    return key.as_pem(private=True).decode()


def public_part(key: RSAKey | ECKey) -> RSAKey | ECKey:
    return type(key).import_key(key.as_pem(private=False))


@pytest.fixture
def client_key(provider: FakeProvider) -> RSAKey:
    """An RSA key whose public part the provider knows: it takes only private_key_jwt now."""
    key = RSAKey.generate_key(2048)
    provider.client_public_key = public_part(key)
    return key


# -- Pushed Authorization Requests ------------------------------------------


def test_par_sends_the_login_parameters_to_the_provider_first(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    client = client_for(auth0_use_par=True)

    location = start_login(client, screen_hint="signup").headers["location"]

    assert location.startswith(f"{ISSUER}/authorize?")
    params = query(location)
    assert set(params) == {"client_id", "request_uri"}
    assert params["client_id"] == "dev-client"
    assert params["request_uri"].startswith(REQUEST_URI_PREFIX)
    [pushed] = provider.pushed_requests
    assert pushed["redirect_uri"] == f"{APP_URL}{CALLBACK_PATH}"
    assert pushed["code_challenge_method"] == "S256"
    assert pushed["screen_hint"] == "signup"
    assert {"state", "nonce", "code_challenge"} <= set(pushed)


def test_login_through_par_completes(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    client = client_for(auth0_use_par=True)

    response = log_in(client, provider, "bob", returnTo="/profile")

    assert (response.status_code, response.headers["location"]) == (303, "/profile")
    assert client.get(PROFILE).json()["sub"] == "bob"
    assert provider.requests.count("par") == 1


def test_par_is_used_when_the_provider_requires_it(
    client: TestClient, provider: FakeProvider
) -> None:
    provider.require_par = True

    authorize_url = start_login(client).headers["location"]

    assert set(query(authorize_url)) == {"client_id", "request_uri"}
    assert client.get(provider.login(authorize_url)).status_code == 303
    with pytest.raises(ValueError, match="request_uri"):
        provider.login(authorize_url)  # a pushed request is used once


def test_the_development_sign_in_form_takes_pushed_requests(
    client: TestClient, provider: FakeProvider
) -> None:
    provider.require_par = True
    authorize_url = start_login(client).headers["location"]

    with TestClient(provider.app, base_url=ISSUER, follow_redirects=False) as browser:
        form = browser.get(authorize_url)
        assert form.status_code == 200 and 'name="request_uri"' in form.text
        signed_in = browser.post("/authorize", data={**query(authorize_url), "username": "bob"})
        plain = browser.get("/authorize", params={"client_id": "dev-client", "scope": "openid"})

    assert client.get(signed_in.headers["location"]).status_code == 303
    assert client.get(PROFILE).json()["sub"] == "bob"
    assert plain.status_code == 400 and "must be pushed" in plain.text


@pytest.mark.parametrize("use_par", [True, False])
def test_par_without_an_endpoint_is_a_provider_error(
    client_for: Callable[..., TestClient], provider: FakeProvider, use_par: bool
) -> None:
    provider.metadata = {
        "pushed_authorization_request_endpoint": None,
        "require_pushed_authorization_requests": not use_par,
    }
    client = client_for(auth0_use_par=use_par)

    response = client.get(LOGIN_PATH)

    assert response.status_code == 502
    assert response.json()["error"] == "bad_provider_response"
    description = response.json()["error_description"]
    assert "pushed authorization requests" in description
    # Which says so: the setting, or the provider's discovery document.
    assert ("AUTH0_USE_PAR asks for" in description) == use_par
    assert ("login service requires" in description) != use_par
    assert not transaction_cookies(client)


@pytest.mark.parametrize(
    ("status", "body", "complaint"),
    [
        (400, {"error": "invalid_request"}, "refused the login request (invalid_request)"),
        (201, {"expires_in": 60}, "malformed"),
        (201, {"request_uri": "x" * (MAX_REQUEST_URI_LENGTH + 1), "expires_in": 60}, "malformed"),
        (201, {"request_uri": "", "expires_in": 60}, "malformed"),
        (201, {"request_uri": REQUEST_URI_PREFIX + "x", "expires_in": "60"}, "malformed"),
        (201, {"request_uri": REQUEST_URI_PREFIX + "x", "expires_in": 0}, "malformed"),
    ],
)
def test_a_bad_par_answer_is_a_provider_error(
    client_for: Callable[..., TestClient],
    provider: FakeProvider,
    status: int,
    body: dict[str, Any],
    complaint: str,
) -> None:
    provider.replies["par"] = JSONResponse(body, status_code=status)
    client = client_for(auth0_use_par=True)

    response = client.get(LOGIN_PATH)

    assert response.status_code == 502
    assert complaint in response.json()["error_description"]


def test_a_par_answer_at_the_size_limit_is_taken(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    request_uri = REQUEST_URI_PREFIX + "x" * (MAX_REQUEST_URI_LENGTH - len(REQUEST_URI_PREFIX))
    provider.replies["par"] = JSONResponse({"request_uri": request_uri, "expires_in": 1}, 201)
    client = client_for(auth0_use_par=True)

    response = client.get(LOGIN_PATH)

    assert response.status_code == 303
    assert query(response.headers["location"])["request_uri"] == request_uri


# -- private_key_jwt ------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "algorithm"),
    [("RSA", "RS256"), ("P-256", "ES256"), ("P-384", "ES384"), ("P-521", "ES512")],
)
def test_login_with_a_private_key(
    client_for: Callable[..., TestClient], provider: FakeProvider, kind: str, algorithm: str
) -> None:
    key = generate_key(kind)
    provider.client_public_key = public_part(key)
    client = client_for(auth0_client_secret=None, auth0_private_key=private_pem(key))

    assert log_in(client, provider).status_code == 303
    assert client.get(PROFILE).json()["sub"] == "alice"
    [assertion] = provider.client_assertions
    assert assertion.header["alg"] == algorithm
    [form] = provider.token_requests
    assert form["client_assertion_type"] == CLIENT_ASSERTION_TYPE
    assert "client_secret" not in form


def test_a_key_file_is_read_once_at_startup(
    client_for: Callable[..., TestClient],
    provider: FakeProvider,
    client_key: RSAKey,
    tmp_path: Path,
) -> None:
    path = tmp_path / "client-key.pem"
    path.write_text(private_pem(client_key))
    client = client_for(auth0_client_secret=None, auth0_private_key_file=str(path))
    path.unlink()  # requests never read it again

    assert log_in(client, provider).status_code == 303
    assert len(provider.client_assertions) == 1


def test_client_assertions_are_single_use_and_name_this_client(
    client_for: Callable[..., TestClient], provider: FakeProvider, client_key: RSAKey
) -> None:
    client = client_for(
        auth0_client_secret=None,
        auth0_private_key=private_pem(client_key),
        auth0_private_key_id="key-2024",
        auth0_use_par=True,
    )

    assert log_in(client, provider).status_code == 303  # PAR, then the token endpoint
    client.get(LOGOUT)  # and the revocation endpoint

    assert len(provider.revoked) == 1
    assertions = provider.client_assertions
    assert len(assertions) == 3
    assert len({assertion.claims["jti"] for assertion in assertions}) == 3
    for assertion in assertions:
        claims = assertion.claims
        assert assertion.header["kid"] == "key-2024"
        assert claims["iss"] == claims["sub"] == "dev-client"
        assert claims["aud"] == ISSUER
        assert abs(claims["iat"] - time.time()) < 10
        assert claims["exp"] == claims["iat"] + 60


def test_a_key_the_provider_does_not_know_is_refused(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    provider.client_public_key = public_part(generate_key("RSA"))
    client = client_for(
        auth0_client_secret=None, auth0_private_key=private_pem(generate_key("RSA"))
    )

    response = log_in(client, provider)

    assert response.status_code == 502
    assert response.json()["error"] == "bad_provider_response"
    assert "invalid_client" in response.json()["error_description"]
    assert client.get(PROFILE).status_code == 401
    assert not provider.client_assertions


@pytest.mark.parametrize(
    ("metadata", "complaint"),
    [
        ({"token_endpoint_auth_methods_supported": ["client_secret_basic"]}, "private_key_jwt"),
        ({"token_endpoint_auth_signing_alg_values_supported": ["PS256"]}, "RS256"),
    ],
)
def test_a_provider_that_cannot_take_the_key_is_reported(
    client_for: Callable[..., TestClient],
    provider: FakeProvider,
    client_key: RSAKey,
    metadata: dict[str, Any],
    complaint: str,
) -> None:
    provider.metadata = metadata
    client = client_for(auth0_client_secret=None, auth0_private_key=private_pem(client_key))

    response = client.get(LOGIN_PATH)

    assert response.status_code == 502
    assert complaint in response.json()["error_description"]


# -- the development provider checks assertions like a real one -----------------


@pytest.mark.parametrize(
    "changes",
    [
        {"iss": "another-client"},
        {"sub": "another-client"},
        {"aud": "https://another-provider.test"},
        {"exp": int(time.time()) - 1},
        {"jti": None},
    ],
)
def test_the_provider_refuses_bad_assertions(
    provider: FakeProvider, client_key: RSAKey, changes: dict[str, Any]
) -> None:
    now = int(time.time())
    good = client_assertion(client_key, client_id="dev-client", audience=ISSUER, now=now)
    claims = {"iss": "dev-client", "sub": "dev-client", "aud": ISSUER, "jti": "once",
              "iat": now, "exp": now + 60, **changes}  # fmt: skip
    bad = jwt.encode(
        {"alg": "RS256"}, {k: v for k, v in claims.items() if v is not None}, client_key
    )

    with TestClient(provider.app, base_url=ISSUER) as http:

        def refresh(assertion: str) -> Any:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": "unknown",
                "client_assertion_type": CLIENT_ASSERTION_TYPE,
                "client_assertion": assertion,
            }
            return http.post("/token", data=form).json()["error"]

        assert refresh(good) == "invalid_grant"  # authenticated; the grant is what is wrong
        assert refresh(good) == "invalid_client"  # the same jti again
        assert refresh(bad) == "invalid_client"
        assert refresh(unsigned_token(claims)) == "invalid_client"
