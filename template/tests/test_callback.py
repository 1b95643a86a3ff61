"""The callback refuses anything the specs say to refuse, with a clear 4xx/5xx and no session.

OpenID Connect Core 1.0 §3.1.3.7 (ID token validation), RFC 9207 (iss), RFC 9700.
"""

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

import httpx
import pytest
from fastapi.testclient import TestClient
from joserfc import jws
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey
from starlette.responses import JSONResponse, Response

from app.auth import provider as provider_module
from app.auth import routes, session_routes
from app.auth.callback import MAX_QUERY_LENGTH
from app.auth.callback import PARAM_LIMITS as CALLBACK_PARAM_LIMITS
from app.auth.provider import JWKS_TTL, MAX_RESPONSE_BYTES, METADATA_TTL
from app.auth.tokens import (
    CLOCK_LEEWAY,
    EDWARDS_ALGORITHMS,
    MAX_REFRESH_TOKEN_LENGTH,
    MAX_SCOPE_LENGTH,
    MAX_TOKEN_LENGTH,
    SIGNING_ALGORITHMS,
)
from app.auth.urls import CALLBACK_PATH, LOGIN_PATH
from app.auth.variant import feature_routers
from devserver.provider import FakeProvider
from tests.helpers import (
    APP_URL,
    ISSUER,
    LOGOUT,
    PROFILE,
    log_in,
    query,
    session_cookies,
    start_login,
    token_of_length,
    transaction_cookies,
    unsigned_token,
)


def assert_refused(response: Any, status: int, error: str, client: TestClient) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"
    assert not session_cookies(response)
    assert client.get(PROFILE).status_code == 401


def hs256_with_public_key(provider: FakeProvider, claims: dict[str, Any]) -> str:
    """The classic key-confusion attack: HMAC keyed with the provider's public key."""
    signing_input = unsigned_token(claims, "HS256").rstrip(".")
    secret = provider.keys[0].as_pem(private=False)
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def valid_claims(provider: FakeProvider, nonce: str) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": provider.issuer, "sub": "alice", "aud": provider.client_id,
            "iat": now, "exp": now + 300, "nonce": nonce}  # fmt: skip


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iss": "https://other.test"}, "another issuer"),
        ({"iss": ISSUER + "/"}, "trailing slash is another issuer"),
        ({"aud": "another-client"}, "audience"),
        ({"aud": ["dev-client", "another-client"]}, "several audiences without azp"),
        ({"aud": ["dev-client", "x"], "azp": "x"}, "azp names another client"),
        ({"azp": "another-client"}, "azp names another client"),
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"exp": None}, "no exp"),
        ({"iat": int(time.time()) + 3600}, "issued in the future"),
        ({"iat": None}, "no iat"),
        ({"nbf": int(time.time()) + 3600}, "not valid yet"),
        ({"nonce": "another-nonce"}, "nonce mismatch"),
        ({"nonce": None}, "no nonce"),
        ({"sub": None}, "no sub"),
        ({"sub": 42}, "sub not a string"),
        ({"sub": ""}, "empty sub"),
        ({"sub": "x" * 256}, "sub too long"),
        ({"exp": "tomorrow"}, "exp not a number"),
    ],
)
def test_id_token_with_bad_claims_is_refused(
    client: TestClient, provider: FakeProvider, claims: dict[str, Any], reason: str
) -> None:
    provider.id_token_claims = claims

    assert_refused(log_in(client, provider), 400, "invalid_token", client)


def test_several_audiences_with_our_azp_are_accepted(
    client: TestClient, provider: FakeProvider
) -> None:
    provider.id_token_claims = {"aud": ["dev-client", "https://api.example"], "azp": "dev-client"}

    assert log_in(client, provider).status_code == 303


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda p, claims: unsigned_token(claims), id="alg-none"),
        pytest.param(
            lambda p, claims: hs256_with_public_key(p, claims), id="hs256-with-the-public-key"
        ),
        pytest.param(
            lambda p, claims: jws.serialize_compact(
                {"alg": "RS256", "kid": "dev-1"}, json.dumps(claims), RSAKey.generate_key(2048)
            ),
            id="signed-by-another-key",
        ),
        pytest.param(lambda p, claims: p.sign(claims)[:-8] + "AAAAAAAA", id="tampered-signature"),
        pytest.param(lambda p, claims: p.sign(claims, {"typ": "logout+jwt"}), id="logout-token"),
        pytest.param(lambda p, claims: "not-a-jwt", id="garbage"),
    ],
)
def test_forged_id_tokens_are_refused(
    client: TestClient, provider: FakeProvider, forge: Callable[[FakeProvider, dict[str, Any]], str]
) -> None:
    authorize_url = start_login(client).headers["location"]
    claims = valid_claims(provider, query(authorize_url)["nonce"])
    provider.token_response = {"id_token": forge(provider, claims)}

    assert_refused(client.get(provider.login(authorize_url)), 400, "invalid_token", client)


@pytest.mark.parametrize("algorithm", SIGNING_ALGORITHMS)
def test_id_tokens_signed_with_any_asymmetric_algorithm_are_accepted(
    client: TestClient, provider: FakeProvider, algorithm: str
) -> None:
    key: RSAKey | ECKey | OKPKey = provider.keys[0]
    if algorithm.startswith("ES"):
        curve = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}[algorithm]
        key = ECKey.generate_key(curve, parameters={"kid": "ec", "use": "sig"})
    elif algorithm in EDWARDS_ALGORITHMS:
        edwards: Literal["Ed25519", "Ed448"] = "Ed448" if algorithm == "Ed448" else "Ed25519"
        key = OKPKey.generate_key(edwards, parameters={"kid": "ed", "use": "sig"})
    provider.keys = [key]  # type: ignore[list-item]
    provider.id_token_header = {"alg": algorithm}
    provider.metadata = {"id_token_signing_alg_values_supported": [algorithm]}

    assert log_in(client, provider).status_code == 303
    assert client.get(PROFILE).json()["sub"] == "alice"


@pytest.mark.parametrize("length", [1, 255])
def test_subjects_of_any_length_up_to_255_are_accepted(
    client: TestClient, provider: FakeProvider, length: int
) -> None:
    assert log_in(client, provider, "a" * length).status_code == 303
    assert client.get(PROFILE).json()["sub"] == "a" * length


def test_keys_without_a_use_member_verify_signatures(
    client: TestClient, provider: FakeProvider
) -> None:
    key = provider.keys[0].as_dict(private=False)
    del key["use"]
    provider.replies["jwks"] = JSONResponse({"keys": [key]})

    assert log_in(client, provider).status_code == 303


class ShiftedClock:
    """The `time` module as `app.auth.provider` uses it, its monotonic clock `ahead` seconds
    in the future (the wall clock, which tokens are checked against, is left alone)."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.ahead

    def time(self) -> float:
        return time.time()


def test_discovery_and_keys_are_fetched_again_after_an_hour(
    client: TestClient, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ShiftedClock()
    monkeypatch.setattr(provider_module, "time", clock)
    assert log_in(client, provider).status_code == 303
    clock.ahead = min(METADATA_TTL, JWKS_TTL) - 60
    assert log_in(client, provider, "bob").status_code == 303
    assert (provider.requests.count("discovery"), provider.requests.count("jwks")) == (1, 1)

    clock.ahead = max(METADATA_TTL, JWKS_TTL) + 1
    assert log_in(client, provider, "carol").status_code == 303
    assert (provider.requests.count("discovery"), provider.requests.count("jwks")) == (2, 2)

    # A provider failing then: the last good document and keys serve another hour.
    clock.ahead += max(METADATA_TTL, JWKS_TTL) + 1
    provider.replies["discovery"] = provider.replies["jwks"] = Response("", 500)
    assert log_in(client, provider, "dave").status_code == 303
    assert log_in(client, provider, "erin").status_code == 303
    assert (provider.requests.count("discovery"), provider.requests.count("jwks")) == (3, 3)


def test_unknown_key_ids_refetch_the_keys_at_most_once_a_second(
    client: TestClient, provider: FakeProvider
) -> None:
    assert log_in(client, provider).status_code == 303  # keys cached
    client.cookies.clear()
    provider.requests.clear()
    provider.id_token_header = {"kid": "no-such-key"}

    for username in ("bob", "carol", "dave"):
        assert_refused(log_in(client, provider, username), 400, "invalid_token", client)
    assert provider.requests.count("jwks") == 1


def test_new_keys_that_cannot_be_fetched_are_a_provider_problem(
    client: TestClient, provider: FakeProvider
) -> None:
    assert log_in(client, provider).status_code == 303  # the old keys are cached
    client.cookies.clear()
    provider.rotate_keys()
    provider.replies["jwks"] = Response("", 500)

    assert_refused(log_in(client, provider, "bob"), 503, "provider_unavailable", client)


def test_unknown_key_id_refetches_the_keys_once(client: TestClient, provider: FakeProvider) -> None:
    assert log_in(client, provider).status_code == 303  # keys cached
    provider.rotate_keys()
    provider.requests.clear()

    assert log_in(client, provider, "bob").status_code == 303
    assert provider.requests.count("jwks") == 1

    provider.requests.clear()
    client.cookies.clear()
    provider.id_token_header = {"kid": "no-such-key"}
    assert_refused(log_in(client, provider, "carol"), 400, "invalid_token", client)
    assert provider.requests.count("jwks") <= 1


@pytest.mark.parametrize(
    ("changes", "status", "error"),
    [
        ({"token_type": "mac"}, 400, "invalid_token"),
        ({"token_type": None}, 400, "invalid_token"),
        ({"id_token": None}, 400, "invalid_token"),
        ({"access_token": None}, 400, "invalid_token"),
        ({"expires_in": -5}, 400, "invalid_token"),
        ({"expires_in": 0}, 400, "invalid_token"),
        ({"expires_in": True}, 400, "invalid_token"),
        ({"expires_in": "3600"}, 400, "invalid_token"),
        ({"id_token": "x" * 1_000_000}, 502, "bad_provider_response"),
        ({"id_token": "x" * 20_000}, 400, "invalid_token"),
        ({"access_token": "x" * (MAX_TOKEN_LENGTH + 1)}, 400, "invalid_token"),
        ({"refresh_token": "x" * (MAX_REFRESH_TOKEN_LENGTH + 1)}, 400, "invalid_token"),
        ({"scope": "x" * (MAX_SCOPE_LENGTH + 1)}, 400, "invalid_token"),
        ({"access_token": ""}, 400, "invalid_token"),
        ({"refresh_token": 42}, 400, "invalid_token"),
    ],
)
def test_bad_token_responses_are_refused(
    client: TestClient, provider: FakeProvider, changes: dict[str, Any], status: int, error: str
) -> None:
    provider.token_response = changes

    assert_refused(log_in(client, provider), status, error, client)


def test_id_tokens_up_to_the_size_limit_are_read(
    client: TestClient, provider: FakeProvider
) -> None:
    def login_with_id_token_of(length: int) -> int:
        authorize_url = start_login(client).headers["location"]
        claims = valid_claims(provider, query(authorize_url)["nonce"])

        def make(header_pad: str, claims_pad: str) -> str:
            return provider.sign({**claims, "pad": claims_pad}, {"cty": f"t{header_pad}"})

        provider.token_response = {"id_token": token_of_length(length, make)}
        return client.get(provider.login(authorize_url)).status_code

    assert login_with_id_token_of(MAX_TOKEN_LENGTH + 1) == 400
    assert login_with_id_token_of(MAX_TOKEN_LENGTH) == 303


@pytest.mark.parametrize(
    ("claim", "offset", "accepted"),
    [
        ("exp", -CLOCK_LEEWAY + 2, True),
        ("exp", -CLOCK_LEEWAY, False),
        ("iat", CLOCK_LEEWAY, True),
        ("iat", CLOCK_LEEWAY + 2, False),
        ("nbf", CLOCK_LEEWAY, True),
        ("nbf", CLOCK_LEEWAY + 2, False),
    ],
)
def test_clock_differences_are_tolerated_up_to_the_leeway(
    client: TestClient, provider: FakeProvider, claim: str, offset: int, accepted: bool
) -> None:
    provider.id_token_claims = {claim: int(time.time()) + offset}

    assert log_in(client, provider).status_code == (303 if accepted else 400)


def test_an_empty_document_from_the_provider_is_refused(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    provider.replies["jwks"] = Response("", 200)
    client = client_for()
    assert_refused(log_in(client, provider), 502, "bad_provider_response", client)

    provider.replies["discovery"] = Response("", 200)
    assert client_for().get(LOGIN_PATH).status_code == 502


def test_endpoints_with_a_query_of_their_own_keep_it(
    client: TestClient, provider: FakeProvider
) -> None:
    provider.metadata = {
        "authorization_endpoint": f"{ISSUER}/authorize?p=signin",  # Azure AD B2C's policies
        "end_session_endpoint": f"{ISSUER}/logout?p=signin",
    }

    login = start_login(client).headers["location"]
    assert login.startswith(f"{ISSUER}/authorize?p=signin&")
    assert query(login)["response_type"] == "code"
    logout = client.get(LOGOUT).headers["location"]
    assert logout.startswith(f"{ISSUER}/logout?p=signin&")
    assert query(logout)["client_id"] == "dev-client"


def test_a_provider_that_lists_no_signing_algorithms_signs_with_rs256(
    client: TestClient, provider: FakeProvider
) -> None:
    provider.metadata = {"id_token_signing_alg_values_supported": None}  # Core's default

    assert log_in(client, provider).status_code == 303


def test_provider_responses_up_to_the_size_limit_are_read(
    client: TestClient, provider: FakeProvider
) -> None:
    keys = json.dumps(KeySet(provider.keys).as_dict(private=False))  # type: ignore[arg-type]

    def jwks_of_size(size: int) -> Response:
        return Response(keys + " " * (size - len(keys)), media_type="application/json")

    provider.replies["jwks"] = jwks_of_size(MAX_RESPONSE_BYTES + 1)
    assert_refused(log_in(client, provider), 502, "bad_provider_response", client)
    provider.replies["jwks"] = jwks_of_size(MAX_RESPONSE_BYTES)
    assert log_in(client, provider).status_code == 303


def test_a_provider_that_lists_no_client_authentication_gets_basic(
    client: TestClient, provider: FakeProvider
) -> None:
    provider.metadata = {"token_endpoint_auth_methods_supported": None}  # RFC 8414's default

    assert log_in(client, provider).status_code == 303
    assert "client_id" not in provider.token_requests[-1]  # it went in the Basic header


def test_token_response_members_up_to_their_size_limits_are_taken(
    client: TestClient, provider: FakeProvider
) -> None:
    provider.token_response = {
        "access_token": "x" * MAX_TOKEN_LENGTH,
        "refresh_token": "x" * MAX_REFRESH_TOKEN_LENGTH,
        "scope": "openid " + "x" * (MAX_SCOPE_LENGTH - len("openid ")),
    }

    assert log_in(client, provider).status_code == 303


@pytest.mark.parametrize("expires_in", [1, 0.5, 86400, None])
def test_any_positive_token_lifetime_is_taken(
    client: TestClient, provider: FakeProvider, expires_in: float | None
) -> None:
    provider.token_response = {"expires_in": expires_in}

    assert log_in(client, provider).status_code == 303


def test_token_type_is_case_insensitive(client: TestClient, provider: FakeProvider) -> None:
    provider.token_response = {"token_type": "bearer"}

    assert log_in(client, provider).status_code == 303


@pytest.mark.parametrize(
    ("reply", "status", "error"),
    [
        (Response("<html>oops</html>", 200), 502, "bad_provider_response"),
        (Response("[1, 2]", 200, media_type="application/json"), 502, "bad_provider_response"),
        (Response("", 500), 503, "provider_unavailable"),
        (Response("slow down", 429), 503, "provider_unavailable"),
        (Response("", 200), 502, "bad_provider_response"),
        (
            Response('{"error": "server_error"}', 500, media_type="application/json"),
            503,
            "provider_unavailable",
        ),
        (
            Response('{"access_token": "x"}', 300, media_type="application/json"),
            502,
            "bad_provider_response",
        ),
        (
            Response('{"error": "invalid_grant"}', 400, media_type="application/json"),
            400,
            "login_failed",
        ),
        (
            Response('{"error": "invalid_client"}', 401, media_type="application/json"),
            502,
            "bad_provider_response",
        ),
    ],
)
def test_token_endpoint_failures(
    client: TestClient, provider: FakeProvider, reply: Response, status: int, error: str
) -> None:
    provider.replies["token"] = reply

    assert_refused(log_in(client, provider), status, error, client)


def test_provider_unreachable_during_callback(client: TestClient, provider: FakeProvider) -> None:
    authorize_url = start_login(client).headers["location"]
    callback = provider.login(authorize_url)
    provider.reachable = "refused"

    assert_refused(client.get(callback), 503, "provider_unavailable", client)


@pytest.mark.parametrize(
    "make_callback",
    [
        pytest.param(lambda url, state: url.replace(f"state={state}", "state="), id="empty-state"),
        pytest.param(lambda url, state: url.replace(f"&state={state}", ""), id="no-state"),
        pytest.param(lambda url, state: url.replace(state, "A" * 43), id="unknown-state"),
        pytest.param(lambda url, state: url.replace(state, "%3Cscript%3E"), id="odd-state"),
        pytest.param(lambda url, state: url + "&code=second", id="duplicated-code"),
        pytest.param(lambda url, state: url + f"&state={state}", id="duplicated-state"),
        pytest.param(
            lambda url, state: (
                url.split("?")[0] + f"?state={state}&iss=https%3A%2F%2Fprovider.test"
            ),
            id="no-code",
        ),
        pytest.param(lambda url, state: url.replace("iss=https", "iss=http"), id="iss-mismatch"),
        pytest.param(
            lambda url, state: url.replace("&iss=https%3A%2F%2Fprovider.test", ""), id="iss-missing"
        ),
        pytest.param(lambda url, state: url + "&junk=" + "x" * 9000, id="oversized-query"),
    ],
)
def test_bad_callback_requests_are_refused(
    client: TestClient, provider: FakeProvider, make_callback: Callable[[str, str], str]
) -> None:
    authorize_url = start_login(client).headers["location"]
    callback = provider.login(authorize_url)
    provider.requests.clear()

    response = client.get(make_callback(callback, query(authorize_url)["state"]))

    assert response.status_code == 400
    assert response.json()["error"] in ("invalid_request", "login_expired")
    assert "token" not in provider.requests
    assert client.get(PROFILE).status_code == 401


def test_a_callback_query_at_the_size_limit_is_read(
    client: TestClient, provider: FakeProvider
) -> None:
    callback = provider.login(start_login(client).headers["location"])
    path, query_string = callback.split("?")
    padding = "&pad=" + "x" * (MAX_QUERY_LENGTH - len(query_string) - len("&pad="))

    assert client.get(f"{path}?{query_string}{padding}").status_code == 303

    callback = provider.login(start_login(client).headers["location"])
    refused = client.get(f"{callback}{padding}x")
    assert refused.status_code == 400
    assert "too large" in refused.json()["error_description"]


def test_oversized_code_is_not_forwarded(client: TestClient, provider: FakeProvider) -> None:
    state = query(start_login(client).headers["location"])["state"]
    provider.requests.clear()

    response = client.get(
        CALLBACK_PATH, params={"code": "c" * 60_000, "state": state, "iss": ISSUER}
    )

    assert response.status_code == 400
    assert provider.requests == []


def test_every_parameter_of_an_authorization_response_is_bounded() -> None:
    # RFC 6749 §4.1.2 and §4.1.2.1, RFC 9207 (error_uri is never read), Auth0's connect_code
    names = {"code", "state", "iss", "error", "error_description", "connect_code"}
    assert set(CALLBACK_PARAM_LIMITS) == names


def test_one_route_answers_at_the_callback_and_the_schema_leaves_it_out(
    client: TestClient,
) -> None:
    routers = (routes.router, session_routes.router, *feature_routers())
    paths = [getattr(route, "path", None) for router in routers for route in router.routes]
    assert paths.count(CALLBACK_PATH) == 1

    # A browser-only route: no API client calls it.
    assert CALLBACK_PATH not in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize(("name", "limit"), CALLBACK_PARAM_LIMITS.items())
def test_each_callback_parameter_has_its_own_size_limit(
    client: TestClient, provider: FakeProvider, name: str, limit: int
) -> None:
    params = query(provider.login(start_login(client).headers["location"]))
    at_limit = client.get(CALLBACK_PATH, params={**params, name: "x" * limit})
    assert "too large" not in at_limit.text

    params = query(provider.login(start_login(client).headers["location"]))
    provider.requests.clear()
    over = client.get(CALLBACK_PATH, params={**params, name: "x" * (limit + 1)})
    assert over.status_code == 400
    assert over.json()["error"] == "invalid_request"
    assert f"{name} parameter is too large" in over.json()["error_description"]
    assert "token" not in provider.requests


def test_a_callback_works_only_once(client: TestClient, provider: FakeProvider) -> None:
    callback = provider.login(start_login(client).headers["location"])
    assert client.get(callback).status_code == 303
    client.cookies.clear()

    assert_refused(client.get(callback), 400, "login_expired", client)


def test_replayed_callback_of_a_logged_in_user_goes_home(
    client: TestClient, provider: FakeProvider
) -> None:
    callback = provider.login(start_login(client).headers["location"])
    client.get(callback)

    again = client.get(callback)
    assert (again.status_code, again.headers["location"]) == (303, "/")
    assert client.get(PROFILE).status_code == 200


def test_provider_error_is_shown_escaped(client: TestClient, provider: FakeProvider) -> None:
    state = query(start_login(client).headers["location"])["state"]
    params = {"state": state, "iss": ISSUER, "error": "access_denied",
              "error_description": "<script>alert(1)</script>"}  # fmt: skip

    page = client.get(CALLBACK_PATH, params=params, headers={"accept": "text/html"})

    assert page.status_code == 400
    assert "access_denied" in page.text
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert not transaction_cookies(client)


def test_discovery_must_name_the_configured_issuer(
    client: TestClient, provider: FakeProvider
) -> None:
    provider.metadata = {"issuer": "https://evil.test"}

    assert client.get(LOGIN_PATH).status_code == 502


@pytest.mark.parametrize(
    "changes",
    [
        {"token_endpoint": None},
        {"token_endpoint": "javascript:alert(1)"},
        {"authorization_endpoint": "ftp://provider.test/authorize"},
        {"jwks_uri": "https://"},
        {"jwks_uri": 42},
        {"end_session_endpoint": "/logout"},
        {"id_token_signing_alg_values_supported": ["HS256", "none"]},
        {"id_token_signing_alg_values_supported": "RS256"},
        {"token_endpoint_auth_methods_supported": ["tls_client_auth"]},
    ],
)
def test_a_discovery_document_we_cannot_use_is_a_provider_error(
    client: TestClient, provider: FakeProvider, changes: dict[str, Any]
) -> None:
    provider.metadata = changes

    response = client.get(LOGIN_PATH)
    assert response.status_code == 502
    assert response.json()["error"] == "bad_provider_response"


def test_every_request_to_the_provider_asks_for_json(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    seen: list[httpx.Request] = []
    inner = provider.transport

    class Recording(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return await inner.handle_async_request(request)

    provider.transport = Recording()  # type: ignore[assignment]
    client = client_for()
    assert log_in(client, provider).status_code == 303

    assert {request.url.path for request in seen} >= {"/.well-known/openid-configuration",
                                                      "/jwks", "/token"}  # fmt: skip
    assert {request.headers["accept"] for request in seen} == {"application/json"}


def test_a_huge_provider_response_of_unknown_length_is_refused(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    inner = provider.transport

    async def chunks() -> AsyncIterator[bytes]:  # the size shows only while reading
        yield b'{"token_type": "Bearer", "access_token": "x", "pad": "'
        for _ in range(5):
            yield b"x" * 65536
        yield b'"}'

    class Chunked(httpx.AsyncBaseTransport):  # a token endpoint sending no Content-Length
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path != "/token":
                return await inner.handle_async_request(request)
            return httpx.Response(200, headers={"content-type": "application/json"},
                                  stream=ChunkedStream(chunks()))  # fmt: skip

    provider.transport = Chunked()  # type: ignore[assignment]
    client = client_for()

    assert_refused(log_in(client, provider), 502, "bad_provider_response", client)


class ChunkedStream(httpx.AsyncByteStream):
    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._chunks:
            yield chunk


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda key: {**key, "use": "enc"}, id="encryption-key"),
        pytest.param(lambda key: {**key, "kty": "oct", "k": "c2VjcmV0"}, id="symmetric-key"),
        pytest.param(lambda key: "not a key", id="not-an-object"),
    ],
)
def test_keys_that_must_not_verify_signatures_are_ignored(
    client: TestClient, provider: FakeProvider, change: Callable[[dict[str, Any]], Any]
) -> None:
    key = provider.keys[0].as_dict(private=False)
    provider.replies["jwks"] = JSONResponse({"keys": [change(key)]})

    assert_refused(log_in(client, provider), 502, "bad_provider_response", client)


def test_a_published_private_key_is_never_used(client: TestClient, provider: FakeProvider) -> None:
    private = provider.keys[0].as_dict(private=True)
    provider.replies["jwks"] = JSONResponse({"keys": [private]})

    assert_refused(log_in(client, provider), 502, "bad_provider_response", client)


def test_configured_issuer_may_differ_from_the_provider_by_a_trailing_slash(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    client = client_for(auth0_domain=ISSUER + "/")
    assert log_in(client, provider).status_code == 303

    # Tokens must still carry the issuer exactly as the provider's discovery spells it.
    client.cookies.clear()
    provider.id_token_claims = {"iss": ISSUER + "/"}
    assert_refused(log_in(client, provider), 400, "invalid_token", client)


def test_iss_parameter_is_optional_when_not_advertised(
    client: TestClient, provider: FakeProvider
) -> None:
    provider.metadata = {"authorization_response_iss_parameter_supported": None}
    callback = provider.login(start_login(client).headers["location"])

    response = client.get(callback.replace("&iss=https%3A%2F%2Fprovider.test", ""))
    assert response.status_code == 303


def test_client_secret_post_when_basic_is_unsupported(
    client: TestClient, provider: FakeProvider
) -> None:
    provider.metadata = {"token_endpoint_auth_methods_supported": ["client_secret_post"]}

    assert log_in(client, provider).status_code == 303
    assert provider.token_requests[-1]["client_id"] == "dev-client"


def test_basic_auth_form_encodes_credentials(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    provider.client_secret = "p@ss word:with/odd+chars%"
    client = client_for(auth0_client_secret=provider.client_secret)

    assert log_in(client, provider).status_code == 303
    assert client.get(PROFILE).json()["sub"] == "alice"


def test_error_pages_for_browsers_are_html(client: TestClient) -> None:
    page = client.get(f"{CALLBACK_PATH}?state=" + "B" * 43, headers={"accept": "text/html"})

    assert page.status_code == 400
    assert page.headers["content-type"].startswith("text/html")
    assert "Your login expired" in page.text
    assert f'href="{LOGIN_PATH}"' in page.text


def test_callback_url_is_built_from_settings_not_headers(client: TestClient) -> None:
    response = client.get(
        LOGIN_PATH, headers={"host": "evil.example", "x-forwarded-host": "evil.example"}
    )

    assert query(response.headers["location"])["redirect_uri"] == f"{APP_URL}{CALLBACK_PATH}"
