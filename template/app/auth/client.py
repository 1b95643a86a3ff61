"""Talking to the OpenID provider: discovery, keys, authorization URL, code exchange, logout URL.

HTTP happens here and only here; the checks themselves live in `tokens.py`.
Discovery and the key set are cached; the key set is refetched (at most once a
second) when a token names a key it does not have, which is how providers rotate keys.

The app authenticates to the provider with its client secret (`client_secret_basic`,
or `client_secret_post`) or with a private key (`private_key_jwt`, RFC 7523: a
short-lived signed assertion per request). Login parameters go in the authorization
URL, or are pushed to the provider first (PAR, RFC 9126) when configured or required.
"""

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote_plus, urlencode, urlsplit

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from app.auth.errors import (
    AuthError,
    LoginFailed,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    SessionEnded,
)
from app.auth.settings import AuthSettings, signing_algorithm
from app.auth.tokens import (
    SIGNING_ALGORITHMS,
    LogoutToken,
    TokenSet,
    UnknownSigningKey,
    parse_token_response,
    validate_id_token,
    validate_logout_token,
)

logger = logging.getLogger("app.auth")
METADATA_TTL = 3600  # seconds a discovery document is used before it is fetched again
JWKS_TTL = 3600
JWKS_MIN_REFETCH_INTERVAL = 1.0  # seconds; bounds refetches caused by unknown key ids
MAX_RESPONSE_BYTES = 256 * 1024
MAX_REQUEST_URI_LENGTH = 2048
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLIENT_ASSERTION_TTL = 60  # seconds a client assertion is valid

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """The parts of the discovery document we use, checked."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None
    revocation_endpoint: str | None
    userinfo_endpoint: str | None
    signing_algorithms: tuple[str, ...]
    client_auth_method: str
    iss_parameter_required: bool
    pushed_authorization_request_endpoint: str | None = None
    par_required: bool = False

    @classmethod
    def from_document(
        cls, document: dict[str, Any], *, issuer: str, assertion_algorithm: str | None = None
    ) -> "ProviderMetadata":
        """Check a discovery document. `assertion_algorithm` is how our client assertions
        are signed when the app has a private key; None when it has a client secret."""
        named = document.get("issuer")
        if not isinstance(named, str) or named.rstrip("/") != issuer.rstrip("/"):
            raise ProviderError(
                "The login service's discovery document names another issuer than AUTH0_DOMAIN."
            )
        algorithms = document.get("id_token_signing_alg_values_supported") or ["RS256"]
        allowed = tuple(alg for alg in SIGNING_ALGORITHMS if alg in _str_list(algorithms))
        if not allowed:
            raise ProviderError("The login service signs ID tokens with no algorithm we accept.")
        auth_method = _client_auth_method(document, assertion_algorithm)

        def optional(name: str) -> str | None:
            return _endpoint(document, name) if document.get(name) else None

        return cls(
            issuer=named,  # as the provider spells it: "https://x" or "https://x/"
            authorization_endpoint=_endpoint(document, "authorization_endpoint"),
            token_endpoint=_endpoint(document, "token_endpoint"),
            jwks_uri=_endpoint(document, "jwks_uri"),
            end_session_endpoint=optional("end_session_endpoint"),
            revocation_endpoint=optional("revocation_endpoint"),
            userinfo_endpoint=optional("userinfo_endpoint"),
            signing_algorithms=allowed,
            client_auth_method=auth_method,
            iss_parameter_required=document.get("authorization_response_iss_parameter_supported")
            is True,
            pushed_authorization_request_endpoint=optional("pushed_authorization_request_endpoint"),
            par_required=document.get("require_pushed_authorization_requests") is True,
        )


def _client_auth_method(document: dict[str, Any], assertion_algorithm: str | None) -> str:
    """How to authenticate at the token endpoint, given what the app has and the provider takes."""
    methods = _str_list(
        document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    )
    if assertion_algorithm is not None:
        if "private_key_jwt" not in methods:
            raise ProviderError(
                "The login service does not accept private keys (private_key_jwt) "
                "for client authentication: set AUTH0_CLIENT_SECRET instead."
            )
        algorithms = document.get("token_endpoint_auth_signing_alg_values_supported")
        if algorithms is not None and assertion_algorithm not in _str_list(algorithms):
            raise ProviderError(
                f"The login service does not accept client assertions signed with "
                f"{assertion_algorithm}: use another kind of private key."
            )
        return "private_key_jwt"
    if "client_secret_basic" in methods:
        return "client_secret_basic"
    if "client_secret_post" in methods:
        return "client_secret_post"
    raise ProviderError("The login service supports no client authentication we offer.")


def _str_list(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise ProviderError("The login service's discovery document is malformed.")
    return [item for item in value if isinstance(item, str)]


def _endpoint(document: dict[str, Any], name: str) -> str:
    value = document.get(name)
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("https", "http") or not parts.netloc:
        raise ProviderError(f"The login service's discovery document has no valid {name}.")
    return str(value)


class OidcClient:
    def __init__(
        self, settings: AuthSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        # Loaded here, at startup: never read from a file per request.
        self._private_key = settings.client_private_key
        self._assertion_algorithm = (
            signing_algorithm(self._private_key) if self._private_key is not None else None
        )
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=settings.auth0_timeout,
            follow_redirects=False,
            headers={"Accept": "application/json"},
        )
        self._metadata: ProviderMetadata | None = None
        self._metadata_expires = 0.0
        self._keys: KeySet | None = None
        self._keys_expires = 0.0
        self._keys_fetched = 0.0
        self._keys_refetched = 0.0  # last refetch forced by an unknown key id
        self._metadata_lock = asyncio.Lock()
        self._keys_lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- discovery and keys -------------------------------------------------

    async def metadata(self) -> ProviderMetadata:
        if self._metadata is not None and time.monotonic() < self._metadata_expires:
            return self._metadata
        async with self._metadata_lock:
            if self._metadata is None or time.monotonic() >= self._metadata_expires:
                url = self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
                try:
                    document = await self._request_json("GET", url)
                    self._metadata = ProviderMetadata.from_document(
                        document,
                        issuer=self.settings.issuer,
                        assertion_algorithm=self._assertion_algorithm,
                    )
                except ProviderError:
                    if self._metadata is None:
                        raise
                    # Keep using the last good document while the provider misbehaves.
                self._metadata_expires = time.monotonic() + METADATA_TTL
            return self._metadata

    async def signing_keys(self, *, refetch: bool = False) -> KeySet:
        """The provider's keys; `refetch` asks for a fresh copy (rate-limited, shared)."""
        asked_at = time.monotonic()
        if self._keys is not None and asked_at < self._keys_expires and not refetch:
            return self._keys
        async with self._keys_lock:
            now = time.monotonic()
            expired = self._keys is None or now >= self._keys_expires
            fetched_meanwhile = self._keys_fetched >= asked_at
            too_soon = now - self._keys_refetched < JWKS_MIN_REFETCH_INTERVAL
            if expired or (refetch and not fetched_meanwhile and not too_soon):
                if not expired:
                    self._keys_refetched = now
                metadata = await self.metadata()
                try:
                    self._keys = _import_key_set(await self._request_json("GET", metadata.jwks_uri))
                    self._keys_fetched = time.monotonic()
                except ProviderError:
                    if self._keys is None or refetch:
                        raise
                    # Keep using the last good key set while the provider misbehaves.
                self._keys_expires = time.monotonic() + JWKS_TTL
            if self._keys is None:  # pragma: no cover - the fetch above raised instead
                raise ProviderError("The login service's keys are not available.")
            return self._keys

    # -- the login flow ------------------------------------------------------

    async def authorization_url(
        self,
        metadata: ProviderMetadata,
        *,
        state: str,
        nonce: str,
        code_verifier: str,
        extra: dict[str, str],
        redirect_uri: str | None = None,
        scope: str | None = None,
    ) -> str:
        """Where to send the browser to log in. With PAR the parameters go to the provider
        directly and the URL carries only a reference to them.

        Other flows through the authorization endpoint (account linking) come back to
        their own `redirect_uri`, ask for their own `scope`, and ask for no API.
        """
        params = {
            **extra,
            "response_type": "code",
            "client_id": self.settings.auth0_client_id,
            "redirect_uri": redirect_uri or self.settings.redirect_uri,
            "scope": scope or self.settings.auth0_scope,
            "state": state,
            "nonce": nonce,
            "code_challenge": create_s256_code_challenge(code_verifier),
            "code_challenge_method": "S256",
        }
        if self.settings.auth0_audience and scope is None:
            params[self.settings.auth0_audience_parameter] = self.settings.auth0_audience
        if self.settings.auth0_use_par or metadata.par_required:
            params = await self._push_authorization_request(metadata, params)
        separator = "&" if urlsplit(metadata.authorization_endpoint).query else "?"
        return metadata.authorization_endpoint + separator + urlencode(params)

    async def _push_authorization_request(
        self, metadata: ProviderMetadata, params: dict[str, str]
    ) -> dict[str, str]:
        """RFC 9126: POST the login parameters; return what the authorization URL carries."""
        endpoint = metadata.pushed_authorization_request_endpoint
        if endpoint is None:
            reason = "requires" if metadata.par_required else "AUTH0_USE_PAR asks for"
            raise ProviderError(
                f"The login service {reason} pushed authorization requests "
                "but has no endpoint for them."
            )
        try:
            body = await self.token_request(metadata, params, endpoint=endpoint)
        except OAuthError as exc:
            raise ProviderError(
                f"The login service refused the login request ({exc.error})."
            ) from None
        return {"client_id": self.settings.auth0_client_id, "request_uri": parse_par_response(body)}

    async def exchange_code(
        self,
        code: str,
        *,
        code_verifier: str,
        nonce: str,
        redirect_uri: str | None = None,
        sub: str | None = None,
    ) -> tuple[TokenSet, dict[str, Any]]:
        """Redeem an authorization code; return the checked tokens and the ID token's claims.

        `redirect_uri` is the one the authorization request named (by default the login's);
        with `sub`, the ID token must be about that user (a flow for a logged-in user).
        """
        metadata = await self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri or self.settings.redirect_uri,
            "code_verifier": code_verifier,
        }
        try:
            body = await self.token_request(metadata, form)
        except OAuthError as exc:
            if exc.error in ("invalid_grant", "invalid_request"):
                raise LoginFailed(
                    "The login code was rejected (it may have expired or been used already). "
                    "Please log in again."
                ) from None
            message = f"The login service refused to issue tokens ({exc.error})."
            raise ProviderError(message) from None
        now = int(time.time())
        tokens = parse_token_response(body, now=now)  # with an ID token, or it raises
        id_token = tokens.id_token or ""
        claims = await self._validate_id_token(metadata, id_token, nonce=nonce, now=now, sub=sub)
        return tokens, claims

    async def _validate_id_token(
        self,
        metadata: ProviderMetadata,
        id_token: str,
        *,
        now: int,
        nonce: str | None = None,
        sub: str | None = None,
    ) -> dict[str, Any]:
        def validate(keys: KeySet) -> dict[str, Any]:
            return validate_id_token(
                id_token,
                keys,
                issuer=metadata.issuer,
                client_id=self.settings.auth0_client_id,
                algorithms=metadata.signing_algorithms,
                now=now,
                nonce=nonce,
                sub=sub,
            )

        return await self._with_keys(validate)

    async def validate_logout_token(self, token: str) -> LogoutToken:
        """Check a back-channel logout token (see `tokens.validate_logout_token`)."""
        metadata = await self.metadata()

        def validate(keys: KeySet) -> LogoutToken:
            return validate_logout_token(
                token,
                keys,
                issuer=metadata.issuer,
                client_id=self.settings.auth0_client_id,
                algorithms=metadata.signing_algorithms,
                now=int(time.time()),
            )

        return await self._with_keys(validate)

    async def _with_keys(self, validate: Callable[[KeySet], T]) -> T:
        """Run a token check with the cached keys, once more with fresh keys on an unknown kid."""
        try:
            return validate(await self.signing_keys())
        except UnknownSigningKey:
            return validate(await self.signing_keys(refetch=True))

    async def refresh(
        self, refresh_token: str, *, audience: str | None, scope: str | None, sub: str
    ) -> tuple[TokenSet, dict[str, Any] | None]:
        """Redeem a refresh token for a new access token (and maybe new refresh/ID tokens);
        with a new ID token, also its validated claims (about the same user `sub`)."""
        metadata = await self.metadata()
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        if audience:
            # Auth0 names the API `audience`; RFC 8707 providers call it `resource`.
            form[self.settings.auth0_audience_parameter] = audience
        if scope:
            form["scope"] = scope
        try:
            body = await self.token_request(metadata, form)
        except OAuthError as exc:
            if exc.error == "invalid_grant":
                raise SessionEnded() from None
            raise ProviderError(f"The login service refused to refresh ({exc.error}).") from None
        now = int(time.time())
        tokens = parse_token_response(body, now=now, id_token_required=False)
        if tokens.id_token is None:
            return tokens, None
        return tokens, await self._validate_id_token(metadata, tokens.id_token, now=now, sub=sub)

    async def userinfo(self, access_token: str, *, sub: str) -> dict[str, Any]:
        """The provider's UserInfo for an access token; it must be about the user `sub`."""
        metadata = await self.metadata()
        if metadata.userinfo_endpoint is None:
            raise ProviderError("The login service has no userinfo endpoint.")
        headers = {"Authorization": f"Bearer {access_token}"}
        try:
            claims = await self._request_json("GET", metadata.userinfo_endpoint, headers=headers)
        except OAuthError as exc:
            raise ProviderError(f"The login service refused the token ({exc.error}).") from None
        if claims.get("sub") != sub:  # Core §5.3.2: never trust userinfo for another user
            raise ProviderError("The login service's userinfo is about another user.")
        return claims

    async def revoke(self, refresh_token: str) -> None:
        """RFC 7009: tell the provider the refresh token is no longer needed (best effort)."""
        try:
            metadata = await self.metadata()
            if metadata.revocation_endpoint is None:
                return
            form = {"token": refresh_token, "token_type_hint": "refresh_token"}
            endpoint = metadata.revocation_endpoint
            await self.token_request(metadata, form, endpoint=endpoint, empty_ok=True)
        except AuthError as exc:
            logger.info("auth.revoke_failed %s", exc.code)

    async def token_request(
        self,
        metadata: ProviderMetadata,
        form: dict[str, str],
        *,
        endpoint: str | None = None,
        empty_ok: bool = False,
    ) -> dict[str, Any]:
        """POST to the token endpoint (or `endpoint`), authenticated as this client."""
        client_id = self.settings.auth0_client_id
        key, secret = self._private_key, self.settings.auth0_client_secret
        auth = None
        if key is not None:
            assertion = client_assertion(
                key, client_id=client_id, audience=metadata.issuer, now=int(time.time())
            )
            form = {
                **form,
                "client_id": client_id,
                "client_assertion_type": CLIENT_ASSERTION_TYPE,
                "client_assertion": assertion,
            }
        elif secret is not None and metadata.client_auth_method == "client_secret_basic":
            # RFC 6749 §2.3.1: form-encode both parts before the Basic scheme encodes them.
            auth = httpx.BasicAuth(quote_plus(client_id), quote_plus(secret.get_secret_value()))
        elif secret is not None:
            form = {**form, "client_id": client_id, "client_secret": secret.get_secret_value()}
        url = endpoint or metadata.token_endpoint
        return await self._request_json("POST", url, data=form, auth=auth, empty_ok=empty_ok)

    def logout_url(
        self, metadata: ProviderMetadata | None, *, id_token: str | None, return_url: str
    ) -> str:
        """Where to send the browser to end the provider's session too."""
        client_id = self.settings.auth0_client_id
        if metadata is not None and metadata.end_session_endpoint:
            params = {"client_id": client_id, "post_logout_redirect_uri": return_url}
            if id_token:
                params["id_token_hint"] = id_token
            endpoint = metadata.end_session_endpoint
            separator = "&" if urlsplit(endpoint).query else "?"
            return endpoint + separator + urlencode(params)
        host = urlsplit(self.settings.issuer).hostname or ""
        if host.endswith(".auth0.com"):
            query = urlencode({"client_id": client_id, "returnTo": return_url})
            return f"{self.settings.issuer.rstrip('/')}/v2/logout?{query}"
        return return_url

    # -- HTTP ------------------------------------------------------------------

    async def _request_json(
        self, method: str, url: str, *, empty_ok: bool = False, **kwargs: Any
    ) -> dict[str, Any]:
        """Send a request; return its JSON object body (bounded in size; `{}` if `empty_ok`)."""
        status, body = await self.send(method, url, **kwargs)
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        success = 200 <= status < 300  # PAR answers 201 Created
        if success and isinstance(data, dict):
            return data
        if success and empty_ok and not body.strip():
            return {}
        if 400 <= status < 500 and isinstance(data, dict) and isinstance(data.get("error"), str):
            raise OAuthError(data["error"][:64])
        if status >= 500 or status == 429:
            raise ProviderUnavailable(
                "The login service is having trouble right now. Please try again shortly."
            )
        raise ProviderError("The login service sent a response we could not understand.")

    async def send(self, method: str, url: str, **kwargs: Any) -> tuple[int, bytes]:
        """Send a request; return its status and body, which may be no larger than
        MAX_RESPONSE_BYTES. Network failures and timeouts become provider errors."""
        try:
            async with self._http.stream(method, url, **kwargs) as response:
                declared = response.headers.get("content-length", "0")
                if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
                    raise ProviderError("The login service's response is too large.")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_RESPONSE_BYTES:
                        raise ProviderError("The login service's response is too large.")
        except httpx.TimeoutException:
            raise ProviderTimeout(
                "The login service did not answer in time. Please try again."
            ) from None
        except httpx.HTTPError:
            raise ProviderUnavailable(
                "The login service cannot be reached right now. Please try again shortly."
            ) from None
        return response.status_code, bytes(body)


class OAuthError(ProviderError):
    """An OAuth error response (`{"error": ...}`) from the provider."""

    def __init__(self, error: str) -> None:
        super().__init__(f"OAuth error {error}")
        self.error = error


def client_assertion(key: RSAKey | ECKey, *, client_id: str, audience: str, now: int) -> str:
    """A `private_key_jwt` client assertion (RFC 7523 §3): single use, valid for a minute.

    `audience` is the provider's issuer, which Auth0 requires and other providers accept.
    """
    algorithm = signing_algorithm(key)
    header = {"alg": algorithm, **({"kid": key.kid} if key.kid else {})}
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": secrets.token_urlsafe(24),
        "iat": now,
        "exp": now + CLIENT_ASSERTION_TTL,
    }
    return jwt.encode(header, claims, key, algorithms=[algorithm])


def parse_par_response(body: dict[str, Any]) -> str:
    """The `request_uri` of a pushed authorization response (RFC 9126 §2.2), checked."""
    request_uri, expires_in = body.get("request_uri"), body.get("expires_in")
    if (
        not isinstance(request_uri, str)
        or not 0 < len(request_uri) <= MAX_REQUEST_URI_LENGTH
        or not isinstance(expires_in, int)
        or isinstance(expires_in, bool)
        or expires_in <= 0
    ):
        raise ProviderError("The login service's answer to the login request is malformed.")
    return request_uri


def _import_key_set(document: dict[str, Any]) -> KeySet:
    """The provider's public signing keys; keys we cannot or must not use are skipped."""
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise ProviderError("The login service's key set is malformed.")
    usable = []
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("kty") not in ("RSA", "EC", "OKP"):
            continue
        if entry.get("use", "sig") != "sig" or "d" in entry:
            continue
        try:
            usable.append(KeySet.import_key_set({"keys": [entry]}).keys[0])
        except Exception:  # noqa: S112 - one malformed key must not break the others
            continue
    if not usable:
        raise ProviderError("The login service publishes no usable signing keys.")
    return KeySet(usable)
