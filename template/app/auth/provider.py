"""The OpenID provider as this app knows it: what it was told, the discovery document, the keys.

`ProviderConfig` is what the settings say (made once, at startup). `Provider` fetches and
caches the discovery document and the key set; the key set is refetched (at most once a
second) when a token names a key it does not have, which is how providers rotate keys.
All HTTP to the provider goes through `Provider.send`: responses are bounded in size, and
network failures and timeouts become provider errors. The flows are in `client.py`.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from joserfc.jwk import ECKey, KeySet, RSAKey
from pydantic import SecretStr

from app.auth.bodies import parse_json, read_at_most
from app.auth.errors import ProviderError, ProviderTimeout, ProviderUnavailable
from app.auth.telemetry import span
from app.auth.tokens import SIGNING_ALGORITHMS, UnknownSigningKey
from app.auth.urls import is_loopback

logger = logging.getLogger("app.auth")
METADATA_TTL = 3600  # seconds a discovery document is used before it is fetched again
JWKS_TTL = 3600
JWKS_MIN_REFETCH_INTERVAL = 1.0  # seconds; bounds refetches caused by unknown key ids
MAX_RESPONSE_BYTES = 256 * 1024

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """How this app is registered at its provider (`AuthSettings.provider_config()`)."""

    issuer: str
    client_id: str
    client_secret: SecretStr | None
    private_key: RSAKey | ECKey | None  # signs client assertions (private_key_jwt)
    assertion_algorithm: str | None  # how; None with a client secret
    redirect_uri: str
    scope: str
    audience: str | None
    audience_parameter: str  # "audience" (Auth0) or "resource" (RFC 8707)
    use_par: bool
    timeout: float  # seconds per request to the provider


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
            logger.warning("auth.issuer_mismatch configured=%r discovered=%r", issuer, named)
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
    """An endpoint of the document: https, or http only when the issuer itself is an http
    URL of this machine (a development provider). Secrets, codes and tokens never travel
    to an endpoint in the clear because a discovery document says so."""
    value = document.get(name)
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("https", "http") or not parts.netloc:
        raise ProviderError(f"The login service's discovery document has no valid {name}.")
    issuer = urlsplit(str(document.get("issuer", "")))
    local_issuer = issuer.scheme == "http" and is_loopback(issuer.hostname or "")
    if parts.scheme == "http" and not local_issuer:
        raise ProviderError(f"The login service's {name} is not an https:// URL.")
    return str(value)


class Provider:
    """The provider's discovery document and keys (cached), and the HTTP client to it."""

    def __init__(
        self, config: ProviderConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=config.timeout,
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

    async def metadata(self) -> ProviderMetadata:
        if self._metadata is not None and time.monotonic() < self._metadata_expires:
            return self._metadata
        async with self._metadata_lock:
            if self._metadata is None or time.monotonic() >= self._metadata_expires:
                url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
                try:
                    with span("auth.discovery", **{"url.full": url}):
                        document = await self.request_json("GET", url)
                    self._metadata = ProviderMetadata.from_document(
                        document,
                        issuer=self.config.issuer,
                        assertion_algorithm=self.config.assertion_algorithm,
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
                    with span("auth.jwks", **{"url.full": metadata.jwks_uri}):
                        keys = await self.request_json("GET", metadata.jwks_uri)
                    self._keys = _import_key_set(keys)
                    self._keys_fetched = time.monotonic()
                except ProviderError:
                    if self._keys is None or refetch:
                        raise
                    # Keep using the last good key set while the provider misbehaves.
                self._keys_expires = time.monotonic() + JWKS_TTL
            if self._keys is None:  # pragma: no cover - the fetch above raised instead
                raise ProviderError("The login service's keys are not available.")
            return self._keys

    async def with_keys(self, validate: Callable[[KeySet], T]) -> T:
        """Run a token check with the cached keys, once more with fresh keys on an unknown kid."""
        try:
            return validate(await self.signing_keys())
        except UnknownSigningKey:
            return validate(await self.signing_keys(refetch=True))

    # -- HTTP ------------------------------------------------------------------

    async def request_json(
        self, method: str, url: str, *, empty_ok: bool = False, **kwargs: Any
    ) -> dict[str, Any]:
        """Send a request; return its JSON object body (bounded in size; `{}` if `empty_ok`)."""
        status, body = await self.send(method, url, **kwargs)
        try:
            data = parse_json(body)
        except ValueError:
            data = None
        success = 200 <= status < 300  # PAR answers 201 Created
        if success and isinstance(data, dict):
            return data
        if success and empty_ok and not body.strip():
            return {}
        if 400 <= status < 500 and isinstance(data, dict) and isinstance(data.get("error"), str):
            error = data["error"][:64]
            logger.warning("auth.provider_refused url=%r status=%s error=%r", url, status, error)
            raise OAuthError(error)
        # For whoever runs the app: where and what (never on the page a user sees).
        logger.warning("auth.provider_answer_unusable url=%r status=%s", url, status)
        if status >= 500 or status == 429:
            raise ProviderUnavailable(
                "The login service is having trouble right now. Please try again shortly."
            )
        raise ProviderError("The login service sent a response we could not understand.")

    async def send(self, method: str, url: str, **kwargs: Any) -> tuple[int, bytes]:
        """Send a request; return its status and body, which may be no larger than
        MAX_RESPONSE_BYTES. Network failures and timeouts become provider errors.

        The whole exchange has `timeout` seconds: httpx's timeout bounds each read, which
        a provider (or a proxy) sending a byte at a time would never reach."""
        try:
            async with (
                asyncio.timeout(self.config.timeout),
                self._http.stream(method, url, **kwargs) as response,
            ):
                declared = response.headers.get("content-length", "0")
                if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
                    raise ProviderError("The login service's response is too large.")
                body = await read_at_most(response.aiter_bytes(), MAX_RESPONSE_BYTES)
                if body is None:
                    raise ProviderError("The login service's response is too large.")
        except (httpx.TimeoutException, TimeoutError):
            logger.warning("auth.provider_timeout url=%r", url)
            raise ProviderTimeout(
                "The login service did not answer in time. Please try again."
            ) from None
        except httpx.HTTPError as exc:
            logger.warning("auth.provider_unreachable url=%r cause=%r", url, str(exc) or exc)
            raise ProviderUnavailable(
                "The login service cannot be reached right now. Please try again shortly."
            ) from None
        return response.status_code, body


class OAuthError(ProviderError):
    """An OAuth error response (`{"error": ...}`) from the provider."""

    def __init__(self, error: str) -> None:
        super().__init__(f"OAuth error {error}")
        self.error = error


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
