"""Client authentication and login requests against the real provider: Pushed Authorization
Requests (RFC 9126) and ``private_key_jwt`` (RFC 7523).

With PAR the app POSTs the login parameters to the provider (authenticated as the client) and the
browser only carries ``client_id`` and a one-time ``request_uri``. With ``private_key_jwt`` the app
has no client secret: every call to the token, PAR and revocation endpoints carries an assertion
signed with its private key, which the provider checks against the public key registered for the
client (Dynamic Client Registration with ``jwks``).

The keys are made by the project's own Python (joserfc is a dependency of the app, not of these
tests). Every test logs in a user of its own, so the tests share the provider: its counters
(``account_activity``) show the token requests, refreshes and revocations of that user only.

The provider (``server.mjs``) leaves ``requirePushedAuthorizationRequests`` off, so its discovery
document never says ``require_pushed_authorization_requests``; a client registered with that
metadata is the only way to require PAR here, and the app cannot see such a per-client rule.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from app_flows import HTML, finish_login, follow_app, start_login
from components import app_base_url, free_port, provider_logout, wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from app_flows import StartApp
    from components import AppServer, OidcClient, OidcProvider, RenderedProject

JSON = {"Accept": "application/json"}
REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
REQUEST_TIMEOUT = 15.0
DUE_TTL = 30  # seconds: below the apps' default ACCESS_TOKEN_LEEWAY (60), so each use refreshes
BAD_PROVIDER_RESPONSE = "The login service answered incorrectly"

# Run by the project's Python: RSA key pairs named by the arguments (their kid), as JSON.
KEYGEN = """
import json, sys
from joserfc.jwk import RSAKey

keys = []
for kid in sys.argv[1:]:
    key = RSAKey.generate_key(2048, {"kid": kid, "use": "sig", "alg": "RS256"}, private=True)
    pem = key.as_pem(private=True).decode()
    keys.append({"kid": kid, "pem": pem, "jwk": key.as_dict(private=False)})
print(json.dumps(keys))
"""


@dataclass(frozen=True)
class ClientKey:
    """An RSA key pair of a client: the PEM private key for the app, the public JWK for the
    provider."""

    kid: str
    pem: str
    public_jwk: dict[str, Any]

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk]}


@dataclass(frozen=True)
class ClientKeys:
    app: ClientKey
    other: ClientKey  # same kid, another key: what a provider with a stale public key would have


@pytest.fixture(scope="module")
def client_keys(default_project: RenderedProject) -> ClientKeys:
    kid = f"test-{secrets.token_hex(4)}"
    result = subprocess.run(
        [str(default_project.bin("python")), "-c", KEYGEN, kid, kid],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    app_key, other_key = (
        ClientKey(entry["kid"], entry["pem"], entry["jwk"]) for entry in json.loads(result.stdout)
    )
    assert "d" not in app_key.public_jwk and app_key.public_jwk["kty"] == "RSA"
    assert app_key.public_jwk["n"] != other_key.public_jwk["n"]
    return ClientKeys(app_key, other_key)


def new_user(purpose: str) -> str:
    """A login id of this test only: the provider's counters are per account."""
    return f"{purpose}-{secrets.token_hex(4)}"


def register(provider: OidcProvider, ports: list[int], **metadata: Any) -> OidcClient:
    """A client for the apps on ``ports`` (callback, post-logout, back-channel logout URIs)."""
    base_urls = [app_base_url(port) for port in ports]
    return provider.register_client(
        [f"{base_url}/auth/callback" for base_url in base_urls],
        [f"{base_url}/" for base_url in base_urls],
        backchannel_logout_uri=f"{base_urls[0]}/auth/backchannel-logout",
        **metadata,
    )


def register_key_client(
    provider: OidcProvider, port: int, key: ClientKey, **metadata: Any
) -> OidcClient:
    """A ``private_key_jwt`` client whose registered public key is ``key``'s; it has no secret."""
    client = register(
        provider,
        [port],
        token_endpoint_auth_method="private_key_jwt",
        token_endpoint_auth_signing_alg="RS256",
        jwks=key.jwks,
        **metadata,
    )
    assert client.client_secret == "", "a private_key_jwt client should get no secret"
    return client


def assert_pushed(authorize_url: str, provider: OidcProvider, client_id: str) -> None:
    """The browser-facing authorization URL is a PAR reference: ``client_id`` and ``request_uri``
    only, none of the login parameters (state, nonce, PKCE challenge, redirect URI, scope)."""
    parts = urlsplit(authorize_url)
    endpoint = provider.metadata()["authorization_endpoint"]
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == endpoint, authorize_url
    query = parse_qs(parts.query, keep_blank_values=True)
    assert sorted(query) == ["client_id", "request_uri"], authorize_url
    assert query["client_id"] == [client_id]
    (request_uri,) = query["request_uri"]
    assert request_uri.startswith(REQUEST_URI_PREFIX), request_uri


def assert_not_pushed(authorize_url: str) -> None:
    """A plain authorization URL: the login parameters are in it."""
    query = parse_qs(urlsplit(authorize_url).query)
    assert "request_uri" not in query, authorize_url
    assert {"state", "nonce", "code_challenge", "redirect_uri"} <= set(query), authorize_url


def log_in(client: httpx.Client, app: AppServer, user: str, authorize_url: str) -> None:
    """Finish the login started at ``authorize_url``: the user lands on /profile, logged in."""
    callback = client.get(finish_login(client, app, authorize_url, user), headers=HTML)
    assert callback.status_code == 303, callback.text[:1000]
    assert callback.headers["location"] == "/profile"
    page = follow_app(client, app, callback)
    assert page.status_code == 200, page.text[:1000]
    assert f"{user}@example.com" in page.text
    profile = client.get(app.url("/auth/profile"), headers=JSON)
    assert profile.status_code == 200, profile.text
    assert profile.json()["sub"] == user


def log_out(client: httpx.Client, app: AppServer, user: str) -> None:
    """Log out at the app, then at the provider; the app's session is gone.

    In between, the app's revocation request (sent after its logout answer) must have been
    accepted: the provider revoked the user's grant through RFC 7009, which authenticates the
    client like the token endpoint does. No token request of the user failed.
    """
    logout = client.get(app.url("/auth/logout?returnTo=/"), headers=HTML)
    assert logout.status_code == 303, logout.text[:1000]
    assert logout.headers["location"].startswith(f"{app.provider.issuer}/session/end?")
    assert client.get(app.url("/auth/profile"), headers=JSON).status_code == 401
    provider = app.provider
    wait_for(
        lambda: provider.account_activity(user).revoked_grants.get("revocation") == 1,
        5,
        f"the provider to revoke {user}'s grant",
    )
    activity = provider.account_activity(user)
    assert activity.revoked_grants == {"revocation": 1}, activity
    assert activity.token_errors == {}, activity
    assert activity.live_grants == 0, activity
    assert provider_logout(client, logout.headers["location"]) == app.url("/")


def log_since(app: AppServer, offset: int) -> str:
    return app.log_path.read_bytes()[offset:].decode(errors="replace")


def log_size(app: AppServer) -> int:
    return app.log_path.stat().st_size


# --- Pushed Authorization Requests ------------------------------------------------------------


def test_par_configured_with_a_client_secret(
    oidc_provider: OidcProvider, start_app: StartApp
) -> None:
    app = start_app(oidc_provider, AUTH0_USE_PAR="true")  # client_secret_basic
    user = new_user("par")
    with httpx.Client(timeout=REQUEST_TIMEOUT) as client:
        authorize_url = start_login(client, app, "/profile")
        assert_pushed(authorize_url, oidc_provider, app.client.client_id)

        log_in(client, app, user, authorize_url)

        used_again = client.get(authorize_url)  # a request_uri is good for one login only
        assert used_again.is_redirect, used_again.text[:500]
        refusal = parse_qs(urlsplit(used_again.headers["location"]).query)
        assert refusal["error"] == ["invalid_request_uri"], refusal
        log_out(client, app, user)


def test_par_required_by_the_client_registration(
    oidc_provider: OidcProvider, start_app: StartApp
) -> None:
    """The provider requires PAR of this client only (client metadata): its discovery document
    does not say so, so the app can only learn it from ``AUTH0_USE_PAR``. Without it the provider
    refuses the login, and the app shows the provider's reason."""
    assert "require_pushed_authorization_requests" not in oidc_provider.metadata()
    plain_port, par_port = free_port(), free_port()
    client = register(
        oidc_provider, [plain_port, par_port], require_pushed_authorization_requests=True
    )
    plain_app = start_app(oidc_provider, client=client, port=plain_port)
    par_app = start_app(oidc_provider, client=client, port=par_port, AUTH0_USE_PAR="true")
    with httpx.Client(timeout=REQUEST_TIMEOUT) as browser:
        authorize_url = start_login(browser, plain_app, "/profile")
        assert_not_pushed(authorize_url)
        refused = browser.get(authorize_url)
        assert refused.is_redirect, refused.text[:500]
        callback_url = refused.headers["location"]
        assert callback_url.startswith(plain_app.url("/auth/callback?")), callback_url
        assert parse_qs(urlsplit(callback_url).query)["error"] == ["invalid_request"]
        callback = browser.get(callback_url, headers=HTML)
        assert callback.status_code == 400, callback.text[:1000]
        assert "Pushed Authorization Request must be used" in callback.text
        assert browser.get(plain_app.url("/auth/profile")).status_code == 401

        user = new_user("par-required")
        authorize_url = start_login(browser, par_app, "/profile")
        assert_pushed(authorize_url, oidc_provider, client.client_id)
        log_in(browser, par_app, user, authorize_url)


# --- private_key_jwt --------------------------------------------------------------------------


def provider_errors(log: str) -> list[str]:
    """The auth errors in an app's log, except the 401s the tests' own checks cause."""
    lines = log.splitlines()
    return [line for line in lines if "auth.error" in line and "code=unauthorized" not in line]


def test_private_key_jwt_login_refresh_and_logout(
    oidc_provider: OidcProvider, start_app: StartApp, client_keys: ClientKeys
) -> None:
    key = client_keys.app
    port = free_port()
    client = register_key_client(oidc_provider, port, key)
    app = start_app(
        oidc_provider,
        client=client,
        port=port,
        AUTH0_PRIVATE_KEY=key.pem,
        AUTH0_PRIVATE_KEY_ID=key.kid,
    )
    offset = log_size(app)
    user = new_user("pkjwt")
    oidc_provider.configure_account(user, access_token_ttl=DUE_TTL)  # due at once: refreshes
    with httpx.Client(timeout=REQUEST_TIMEOUT) as browser:
        authorize_url = start_login(browser, app, "/profile")
        assert_not_pushed(authorize_url)
        log_in(browser, app, user, authorize_url)

        api_page = browser.get(app.url("/api-example"), headers=HTML)  # refreshes, then UserInfo
        assert api_page.status_code == 200, api_page.text[:1000]
        assert f'"sub": "{user}"' in api_page.text
        activity = oidc_provider.account_activity(user)
        assert (activity.logins, activity.refreshes) == (1, 1), activity

        log_out(browser, app, user)
    log = log_since(app, offset)
    assert not provider_errors(log) and "Traceback" not in log, log


def test_private_key_jwt_with_a_key_file_and_no_key_id(
    oidc_provider: OidcProvider,
    start_app: StartApp,
    client_keys: ClientKeys,
    tmp_path: Path,
) -> None:
    """The key read from AUTH0_PRIVATE_KEY_FILE; assertions without ``kid`` (the client has one
    registered key, so the provider needs none)."""
    key = client_keys.app
    key_file = tmp_path / "client-key.pem"
    key_file.write_text(key.pem)
    key_file.chmod(0o600)
    port = free_port()
    client = register_key_client(oidc_provider, port, key)
    app = start_app(oidc_provider, client=client, port=port, AUTH0_PRIVATE_KEY_FILE=str(key_file))
    user = new_user("pkjwt-file")
    with httpx.Client(timeout=REQUEST_TIMEOUT) as browser:
        log_in(browser, app, user, start_login(browser, app, "/profile"))
        log_out(browser, app, user)


def test_private_key_jwt_with_par(
    oidc_provider: OidcProvider, start_app: StartApp, client_keys: ClientKeys
) -> None:
    """Both together: the PAR request and the code exchange each carry an assertion (each with a
    jti of its own: the provider refuses a replayed one). The key is given on one line with
    literal ``\\n``, as some consoles store it."""
    key = client_keys.app
    port = free_port()
    client = register_key_client(
        oidc_provider, port, key, require_pushed_authorization_requests=True
    )
    app = start_app(
        oidc_provider,
        client=client,
        port=port,
        AUTH0_PRIVATE_KEY=key.pem.strip().replace("\n", "\\n"),
        AUTH0_PRIVATE_KEY_ID=key.kid,
        AUTH0_USE_PAR="true",
    )
    offset = log_size(app)
    user = new_user("pkjwt-par")
    with httpx.Client(timeout=REQUEST_TIMEOUT) as browser:
        authorize_url = start_login(browser, app, "/profile")
        assert_pushed(authorize_url, oidc_provider, client.client_id)
        log_in(browser, app, user, authorize_url)
        log_out(browser, app, user)
    log = log_since(app, offset)
    assert not provider_errors(log) and "Traceback" not in log, log


# --- A key the provider does not know ---------------------------------------------------------


def test_wrong_private_key_fails_the_callback_with_a_clear_502(
    oidc_provider: OidcProvider, start_app: StartApp, client_keys: ClientKeys
) -> None:
    """The provider has another public key for the client (same kid): the code exchange is
    refused with ``invalid_client``, and the user gets an error page, not a 500 nor a session."""
    port = free_port()
    client = register_key_client(oidc_provider, port, client_keys.other)
    app = start_app(
        oidc_provider,
        client=client,
        port=port,
        AUTH0_PRIVATE_KEY=client_keys.app.pem,
        AUTH0_PRIVATE_KEY_ID=client_keys.app.kid,
    )
    offset = log_size(app)
    user = new_user("pkjwt-wrong")
    with httpx.Client(timeout=REQUEST_TIMEOUT) as browser:
        callback_url = finish_login(browser, app, start_login(browser, app, "/profile"), user)
        callback = browser.get(callback_url, headers=HTML)

        assert callback.status_code == 502, callback.text[:1000]
        assert callback.headers["content-type"].startswith("text/html")
        assert BAD_PROVIDER_RESPONSE in callback.text
        assert "refused to issue tokens (invalid_client)" in callback.text
        assert "Traceback" not in callback.text
        assert client_keys.app.pem.splitlines()[1] not in callback.text
        assert browser.get(app.url("/auth/profile"), headers=JSON).status_code == 401
    assert oidc_provider.account_activity(user).logins == 0
    log = log_since(app, offset)
    assert "auth.error code=bad_provider_response path='/auth/callback'" in log, log
    assert "Traceback" not in log, log


def test_wrong_private_key_with_par_fails_the_login_with_a_clear_502(
    oidc_provider: OidcProvider, start_app: StartApp, client_keys: ClientKeys
) -> None:
    """With PAR the provider refuses the pushed request already: /auth/login answers 502 (an
    error page for browsers, JSON for API clients) and sends no one to the provider."""
    port = free_port()
    client = register_key_client(oidc_provider, port, client_keys.other)
    app = start_app(
        oidc_provider,
        client=client,
        port=port,
        AUTH0_PRIVATE_KEY=client_keys.app.pem,
        AUTH0_PRIVATE_KEY_ID=client_keys.app.kid,
        AUTH0_USE_PAR="true",
    )
    with httpx.Client(timeout=REQUEST_TIMEOUT) as browser:
        page = browser.get(app.url("/auth/login?returnTo=/profile"), headers=HTML)
        assert page.status_code == 502, page.text[:1000]
        assert BAD_PROVIDER_RESPONSE in page.text
        assert "refused the login request (invalid_client)" in page.text
        assert "Traceback" not in page.text

        api = browser.get(app.url("/auth/login"), headers=JSON)
        assert api.status_code == 502, api.text
        assert api.json()["error"] == "bad_provider_response"
        assert "invalid_client" in api.json()["error_description"]
        assert not [name for name in browser.cookies if name.startswith("app_tx")]
