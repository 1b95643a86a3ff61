"""The OpenID Connect flows of this app at its provider: login, code exchange, refresh, logout.

The provider itself (discovery, keys, HTTP) is `provider.py`; the checks of the tokens
live in `tokens.py`. The app authenticates to the provider with its client secret
(`client_secret_basic`, or `client_secret_post`) or with a private key
(`private_key_jwt`, RFC 7523: a short-lived signed assertion per request). Login
parameters go in the authorization URL, or are pushed to the provider first (PAR,
RFC 9126) when configured or required.
"""

import logging
import secrets
import time
from typing import Any
from urllib.parse import quote_plus, urlencode, urlsplit

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from app.auth.errors import CONFIGURATION_HINTS, AuthError, LoginFailed, ProviderError, SessionEnded
from app.auth.provider import OAuthError, Provider, ProviderMetadata
from app.auth.settings import signing_algorithm
from app.auth.telemetry import traced
from app.auth.tokens import (
    LogoutToken,
    TokenSet,
    parse_token_response,
    validate_id_token,
    validate_logout_token,
)

logger = logging.getLogger("app.auth")
MAX_REQUEST_URI_LENGTH = 2048
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLIENT_ASSERTION_TTL = 60  # seconds a client assertion is valid


class OidcClient:
    """The OpenID Connect flows of this app's client at its provider."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.config = provider.config

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
        push_if_possible: bool = False,
    ) -> str:
        """Where to send the browser to log in. With PAR the parameters go to the provider
        directly and the URL carries only a reference to them.

        Other flows through the authorization endpoint (account linking) come back to
        their own `redirect_uri`, ask for their own `scope`, and ask for no API.
        `push_if_possible` pushes whenever the provider offers PAR (for parameters that
        should not travel through the browser, such as an `id_token_hint`).
        """
        params = {
            **extra,
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": redirect_uri or self.config.redirect_uri,
            "scope": scope or self.config.scope,
            "state": state,
            "nonce": nonce,
            "code_challenge": create_s256_code_challenge(code_verifier),
            "code_challenge_method": "S256",
        }
        if self.config.audience and scope is None:
            params[self.config.audience_parameter] = self.config.audience
        offered = metadata.pushed_authorization_request_endpoint is not None
        if self.config.use_par or metadata.par_required or (push_if_possible and offered):
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
        return {"client_id": self.config.client_id, "request_uri": parse_par_response(body)}

    @traced("auth.code_exchange")
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
        metadata = await self.provider.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri or self.config.redirect_uri,
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
            hint = CONFIGURATION_HINTS.get(exc.error, "")
            message = f"The login service refused to issue tokens ({exc.error}).{hint}"
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
        original: str | None = None,
    ) -> dict[str, Any]:
        def validate(keys: KeySet) -> dict[str, Any]:
            return validate_id_token(
                id_token,
                keys,
                issuer=metadata.issuer,
                client_id=self.config.client_id,
                algorithms=metadata.signing_algorithms,
                now=now,
                nonce=nonce,
                sub=sub,
                original=original,
            )

        return await self.provider.with_keys(validate)

    @traced("auth.backchannel_logout")
    async def validate_logout_token(self, token: str) -> LogoutToken:
        """Check a back-channel logout token (see `tokens.validate_logout_token`)."""
        metadata = await self.provider.metadata()

        def validate(keys: KeySet) -> LogoutToken:
            return validate_logout_token(
                token,
                keys,
                issuer=metadata.issuer,
                client_id=self.config.client_id,
                algorithms=metadata.signing_algorithms,
                now=int(time.time()),
            )

        return await self.provider.with_keys(validate)

    @traced("auth.refresh")
    async def refresh(
        self,
        refresh_token: str,
        *,
        audience: str | None,
        scope: str | None,
        sub: str,
        id_token: str,
    ) -> tuple[TokenSet, dict[str, Any] | None]:
        """Redeem a refresh token for a new access token (and maybe new refresh/ID tokens);
        with a new ID token, also its validated claims (about the same user `sub`, for the
        same applications as the session's `id_token`)."""
        metadata = await self.provider.metadata()
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        if audience:
            # Auth0 names the API `audience`; RFC 8707 providers call it `resource`.
            form[self.config.audience_parameter] = audience
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
        claims = await self._validate_id_token(
            metadata, tokens.id_token, now=now, sub=sub, original=id_token
        )
        return tokens, claims

    @traced("auth.userinfo")
    async def userinfo(self, access_token: str, *, sub: str) -> dict[str, Any]:
        """The provider's UserInfo for an access token; it must be about the user `sub`."""
        metadata = await self.provider.metadata()
        if metadata.userinfo_endpoint is None:
            raise ProviderError("The login service has no userinfo endpoint.")
        headers = {"Authorization": f"Bearer {access_token}"}
        try:
            claims = await self.provider.request_json(
                "GET", metadata.userinfo_endpoint, headers=headers
            )
        except OAuthError as exc:
            raise ProviderError(f"The login service refused the token ({exc.error}).") from None
        if claims.get("sub") != sub:  # Core §5.3.2: never trust userinfo for another user
            raise ProviderError("The login service's userinfo is about another user.")
        return claims

    @traced("auth.revoke")
    async def revoke(self, refresh_token: str) -> None:
        """RFC 7009: tell the provider the refresh token is no longer needed (best effort)."""
        try:
            metadata = await self.provider.metadata()
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
        client_id = self.config.client_id
        key, secret = self.config.private_key, self.config.client_secret
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
        return await self.provider.request_json(
            "POST", url, data=form, auth=auth, empty_ok=empty_ok
        )

    def logout_url(
        self, metadata: ProviderMetadata | None, *, id_token: str | None, return_url: str
    ) -> str:
        """Where to send the browser to end the provider's session too."""
        client_id = self.config.client_id
        if metadata is not None and metadata.end_session_endpoint:
            params = {"client_id": client_id, "post_logout_redirect_uri": return_url}
            if id_token:
                params["id_token_hint"] = id_token
            endpoint = metadata.end_session_endpoint
            separator = "&" if urlsplit(endpoint).query else "?"
            return endpoint + separator + urlencode(params)
        host = urlsplit(self.config.issuer).hostname or ""
        if host.endswith(".auth0.com"):
            query = urlencode({"client_id": client_id, "returnTo": return_url})
            return f"{self.config.issuer.rstrip('/')}/v2/logout?{query}"
        return return_url


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
