"""API routes take access tokens from the provider (RFC 6750 bearer, RFC 9449 DPoP) and
answer refusals as those RFCs say: never with a login redirect."""

import hashlib
import hmac
import json
import secrets
import time
from base64 import urlsafe_b64encode
from collections.abc import Callable
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient
from joserfc import jws, jwt
from joserfc.jwk import ECKey

from app.auth import Caller, require_session_or_token
from devserver.provider import FakeProvider
from tests.helpers import APP_URL, claims_of, log_in, unsigned_token

AUDIENCE = "https://api.example.com"
ORDERS = "/api/orders"


@pytest.fixture
def api(client_for: Callable[..., TestClient]) -> TestClient:
    """A client of the app configured to take tokens for AUDIENCE."""
    return client_for(api_audience=AUDIENCE)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def challenge(response: Any) -> str:
    return str(response.headers["www-authenticate"])


def test_a_valid_token_with_the_scope(api: TestClient, provider: FakeProvider) -> None:
    token = provider.access_token("bob", audience=AUDIENCE, scope="read:orders")

    response = api.get(ORDERS, headers=bearer(token))

    assert response.status_code == 200
    assert response.json()[0]["customer"] == "bob"


def test_auth0_rbac_permissions_count_as_scopes(api: TestClient, provider: FakeProvider) -> None:
    token = provider.access_token(audience=AUDIENCE, permissions=["read:orders"])

    assert api.get(ORDERS, headers=bearer(token)).status_code == 200


def test_null_permissions_are_none(api: TestClient, provider: FakeProvider) -> None:
    now = int(time.time())
    claims = {"iss": provider.issuer, "sub": "bob", "aud": AUDIENCE, "iat": now, "exp": now + 60}
    token = provider.sign(
        {**claims, "scope": "read:orders", "permissions": None}, {"typ": "at+jwt"}
    )

    assert api.get(ORDERS, headers=bearer(token)).status_code == 200  # was a 500


def test_a_token_without_the_scope_is_insufficient(api: TestClient, provider: FakeProvider) -> None:
    token = provider.access_token(audience=AUDIENCE, scope="read:invoices")

    response = api.get(ORDERS, headers=bearer(token))

    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"
    assert challenge(response).startswith('Bearer error="insufficient_scope"')
    assert 'scope="read:orders"' in challenge(response)


def test_no_token_gets_a_bare_challenge_never_a_login_redirect(api: TestClient) -> None:
    response = api.get(ORDERS, headers={"Accept": "text/html"})

    assert response.status_code == 401
    assert challenge(response) == "Bearer"  # RFC 6750 §3.1: no error code without a token
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("claims", "header"),
    [
        ({"exp": int(time.time()) - 3600}, {}),  # expired
        ({"aud": "https://other-api.example.com"}, {}),  # another API
        ({"iss": "https://evil.example.com"}, {}),  # another issuer
        ({"nbf": int(time.time()) + 3600}, {}),  # not valid yet
        ({"iat": int(time.time()) + 3600}, {}),  # issued in the future
        ({"sub": None}, {}),  # about no one
        ({}, {"typ": "id+jwt"}),  # not an access token
        ({"scope": ["read:orders"]}, {}),  # a scope that is not a string
        ({"permissions": "read:orders"}, {}),  # permissions that are not a list
    ],
)
def test_invalid_tokens_are_refused(
    api: TestClient, provider: FakeProvider, claims: dict[str, Any], header: dict[str, Any]
) -> None:
    token = provider.access_token(
        audience=AUDIENCE, header=header, **{"scope": "read:orders", **claims}
    )

    response = api.get(ORDERS, headers=bearer(token))

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert challenge(response).startswith('Bearer error="invalid_token"')


@pytest.mark.parametrize("alg", ["none", "HS256"])
def test_unsigned_and_symmetric_tokens_are_refused(
    api: TestClient, provider: FakeProvider, alg: str
) -> None:
    claims = claims_of(provider.access_token(audience=AUDIENCE, scope="read:orders"))

    response = api.get(ORDERS, headers=bearer(unsigned_token(claims, alg)))

    assert response.status_code == 401


def test_a_token_hmac_signed_with_the_public_key_is_refused(
    api: TestClient, provider: FakeProvider
) -> None:
    # The classic confusion attack: HS256 keyed with the provider's public key.
    public_pem = provider.keys[0].as_pem(private=False)
    claims = claims_of(provider.access_token(audience=AUDIENCE, scope="read:orders"))
    signing_input = f"{b64({'alg': 'HS256', 'typ': 'at+jwt'})}.{b64(claims)}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{urlsafe_b64encode(mac).rstrip(b'=').decode()}"

    assert api.get(ORDERS, headers=bearer(forged)).status_code == 401


def test_a_token_without_a_type_is_refused(api: TestClient, provider: FakeProvider) -> None:
    claims = claims_of(provider.access_token(audience=AUDIENCE, scope="read:orders"))
    key = provider.keys[0]
    untyped = jws.serialize_compact({"alg": "RS256", "kid": key.kid}, json.dumps(claims), key)

    assert api.get(ORDERS, headers=bearer(untyped)).status_code == 401


def b64(part: dict[str, Any]) -> str:
    return urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()


def test_a_new_signing_key_is_fetched_once(api: TestClient, provider: FakeProvider) -> None:
    first = provider.access_token(audience=AUDIENCE, scope="read:orders")
    assert api.get(ORDERS, headers=bearer(first)).status_code == 200
    provider.rotate_keys()
    provider.requests.clear()

    rotated = provider.access_token(audience=AUDIENCE, scope="read:orders")
    assert api.get(ORDERS, headers=bearer(rotated)).status_code == 200
    assert provider.requests == ["jwks"]

    unknown = provider.access_token(audience=AUDIENCE, scope="read:orders", header={"kid": "x"})
    assert api.get(ORDERS, headers=bearer(unknown)).status_code == 401
    assert provider.requests.count("jwks") <= 2  # refetches are rate-limited


def test_types_are_configurable(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    strict = client_for(api_audience=AUDIENCE, api_token_types=("at+jwt",))
    plain_jwt = provider.access_token(audience=AUDIENCE, scope="read:orders", header={"typ": "JWT"})
    rfc_9068 = provider.access_token(audience=AUDIENCE, scope="read:orders")

    assert strict.get(ORDERS, headers=bearer(plain_jwt)).status_code == 401
    assert strict.get(ORDERS, headers=bearer(rfc_9068)).status_code == 200


def test_auth0_audience_is_the_default_api_audience(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    client = client_for(auth0_audience=AUDIENCE)
    token = provider.access_token(audience=AUDIENCE, scope="read:orders")

    assert client.get(ORDERS, headers=bearer(token)).status_code == 200


def test_without_an_audience_the_app_takes_no_tokens(
    client: TestClient, provider: FakeProvider
) -> None:
    token = provider.access_token(audience=AUDIENCE, scope="read:orders")

    assert client.get(ORDERS, headers=bearer(token)).status_code == 401


@pytest.mark.parametrize(
    "authorization",
    ["Bearer", "Bearer a b", "Basic YWxpY2U6c2VjcmV0", "Bearer " + "x" * 20_000],
)
def test_malformed_authorization_headers(api: TestClient, authorization: str) -> None:
    response = api.get(ORDERS, headers={"Authorization": authorization})

    assert response.status_code in (400, 401)
    assert "www-authenticate" in response.headers


def test_two_authorization_headers_are_a_bad_request(
    api: TestClient, provider: FakeProvider
) -> None:
    token = provider.access_token(audience=AUDIENCE, scope="read:orders")
    headers = [("Authorization", f"Bearer {token}"), ("Authorization", "Bearer other")]

    response = api.get(ORDERS, headers=headers)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_a_login_with_the_audience_gets_a_token_the_api_takes(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    scope = "openid profile offline_access read:orders"
    browser = client_for(auth0_audience=AUDIENCE, auth0_scope=scope)
    assert log_in(browser, provider).status_code == 303
    issued = provider.issued[-1]["access_token"]  # the JWT the session holds

    api_client = client_for(auth0_audience=AUDIENCE)
    assert api_client.get(ORDERS, headers=bearer(issued)).json()[0]["customer"] == "alice"


def test_client_credentials_tokens_of_the_development_provider(
    api: TestClient, provider: FakeProvider
) -> None:
    form = {"grant_type": "client_credentials", "audience": AUDIENCE, "scope": "read:orders"}
    assert api.portal is not None
    answer = api.portal.call(_token_request, provider, form)

    orders = api.get(ORDERS, headers=bearer(answer["access_token"])).json()
    assert orders[0]["customer"] == provider.client_id


async def _token_request(provider: FakeProvider, form: dict[str, str]) -> dict[str, Any]:
    async with httpx.AsyncClient(transport=provider.transport) as http:
        response = await http.post(
            f"{provider.issuer}/token", data=form, auth=(provider.client_id, provider.client_secret)
        )
    body: dict[str, Any] = response.json()
    return body


# -- one route for sessions and tokens ------------------------------------------------


def test_session_or_token(api: TestClient, provider: FakeProvider) -> None:
    assert api.get("/api/me").status_code == 401
    token = provider.access_token("bob", audience=AUDIENCE)
    assert api.get("/api/me", headers=bearer(token)).json() == {"sub": "bob", "by": "token"}

    assert log_in(api, provider, "alice").status_code == 303
    assert api.get("/api/me").json() == {"sub": "alice", "by": "session"}


# -- DPoP ---------------------------------------------------------------------------------


class DPoPClient:
    """A client holding a key, proving it with each request (RFC 9449 §4)."""

    def __init__(self) -> None:
        self.key = ECKey.generate_key("P-256")
        self.jkt = self.key.thumbprint()

    def proof(
        self, token: str, *, method: str = "GET", url: str = APP_URL + ORDERS, **claims: Any
    ) -> str:
        ath = urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).rstrip(b"=").decode()
        body = {
            "htm": method,
            "htu": url,
            "iat": int(time.time()),
            "jti": secrets.token_urlsafe(12),
        }
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.key.as_dict(private=False)}
        return jwt.encode(header, {**body, "ath": ath, **claims}, self.key)


@pytest.fixture
def dpop() -> DPoPClient:
    return DPoPClient()


def bound_token(provider: FakeProvider, dpop: DPoPClient) -> str:
    return provider.access_token(audience=AUDIENCE, scope="read:orders", cnf={"jkt": dpop.jkt})


def test_a_bound_token_with_its_proof(
    api: TestClient, provider: FakeProvider, dpop: DPoPClient
) -> None:
    token = bound_token(provider, dpop)

    response = api.get(
        ORDERS, headers={"Authorization": f"DPoP {token}", "DPoP": dpop.proof(token)}
    )

    assert response.status_code == 200


def test_a_proof_issued_at_nan_is_refused(
    api: TestClient, provider: FakeProvider, dpop: DPoPClient
) -> None:
    token = bound_token(provider, dpop)  # its holder signs its proofs: they may be hostile

    response = api.get(
        ORDERS,
        headers={"Authorization": f"DPoP {token}", "DPoP": dpop.proof(token, iat=float("nan"))},
    )

    assert response.status_code == 401  # was a 500 (int(nan))


def test_a_proof_nested_too_deeply_is_refused(
    api: TestClient, provider: FakeProvider, dpop: DPoPClient
) -> None:
    token = bound_token(provider, dpop)
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": dpop.key.as_dict(private=False)}
    proof = jws.serialize_compact(header, b"[" * 1300 + b"]" * 1300, dpop.key)

    response = api.get(ORDERS, headers={"Authorization": f"DPoP {token}", "DPoP": proof})

    assert response.status_code == 401  # was a 500 (RecursionError)


def test_a_bound_token_as_a_bearer_token_is_refused(
    api: TestClient, provider: FakeProvider, dpop: DPoPClient
) -> None:
    response = api.get(ORDERS, headers=bearer(bound_token(provider, dpop)))

    assert response.status_code == 401
    assert challenge(response).startswith('DPoP error="invalid_token"')
    assert "ES256" in challenge(response)


def test_a_proof_is_accepted_once(
    api: TestClient, provider: FakeProvider, dpop: DPoPClient
) -> None:
    token = bound_token(provider, dpop)
    headers = {"Authorization": f"DPoP {token}", "DPoP": dpop.proof(token)}

    assert api.get(ORDERS, headers=headers).status_code == 200
    replayed = api.get(ORDERS, headers=headers)
    assert replayed.status_code == 401
    assert 'error="invalid_dpop_proof"' in challenge(replayed)


@pytest.mark.parametrize(
    "wrong",
    [
        {"method": "POST"},
        {"url": "https://evil.example.com/api/orders"},
        {"url": APP_URL + "/api/other"},
        {"iat": int(time.time()) - 3600},
        {"iat": int(time.time()) + 3600},
        {"ath": "not-the-token-hash"},
        {"jti": None},
    ],
)
def test_proofs_for_another_request_or_token_are_refused(
    api: TestClient, provider: FakeProvider, dpop: DPoPClient, wrong: dict[str, Any]
) -> None:
    token = bound_token(provider, dpop)
    method, url = wrong.pop("method", "GET"), wrong.pop("url", APP_URL + ORDERS)
    proof = dpop.proof(token, method=method, url=url, **wrong)

    response = api.get(ORDERS, headers={"Authorization": f"DPoP {token}", "DPoP": proof})

    assert response.status_code == 401
    assert 'error="invalid_dpop_proof"' in challenge(response)


def test_a_proof_signed_with_another_key_is_refused(
    api: TestClient, provider: FakeProvider, dpop: DPoPClient
) -> None:
    token = bound_token(provider, dpop)
    thief = DPoPClient()

    response = api.get(
        ORDERS, headers={"Authorization": f"DPoP {token}", "DPoP": thief.proof(token)}
    )

    assert response.status_code == 401


def test_a_proof_is_required(api: TestClient, provider: FakeProvider, dpop: DPoPClient) -> None:
    response = api.get(ORDERS, headers={"Authorization": f"DPoP {bound_token(provider, dpop)}"})

    assert response.status_code == 401
    assert challenge(response).startswith("DPoP ")


def test_a_session_may_not_change_things_from_another_site(
    api: TestClient, provider: FakeProvider
) -> None:
    router = APIRouter()

    @router.post("/api/orders")
    async def place_order(caller: Annotated[Caller, Depends(require_session_or_token())]) -> None:
        return None

    api.app.include_router(router)  # type: ignore[attr-defined]
    assert log_in(api, provider).status_code == 303

    assert api.post(ORDERS, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert api.post(ORDERS, headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
    token = provider.access_token(audience=AUDIENCE)  # tokens are not sent by browsers on their own
    assert (
        api.post(ORDERS, headers={**bearer(token), "Sec-Fetch-Site": "cross-site"}).status_code
        == 200
    )
