"""Checking the access tokens that API requests carry (see `api_tokens.py` for the routes).

Template-owned protocol code. `ApiTokens.check` reads the `Authorization` header (Bearer,
RFC 6750; or DPoP, RFC 9449), validates the token (`tokens.validate_access_token`) and,
for a key-bound token, its proof (`dpop.py`, each proof accepted once). Good tokens are
remembered, by the header that carried them, until they expire (up to CACHE_SIZE), so a
client's repeated calls cost no signature check. Refusals are `ApiTokenError`s, answered
with RFC 6750's `WWW-Authenticate` challenges and JSON bodies.
"""

import logging
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from app.auth.dpop import check_proof
from app.auth.errors import InvalidToken
from app.auth.provider import Provider
from app.auth.stores.base import LogoutTokens
from app.auth.tokens import CLOCK_LEEWAY, SIGNING_ALGORITHMS, validate_access_token
from app.auth.urls import route_path

logger = logging.getLogger("app.auth")
CACHE_SIZE = 10_000  # checked tokens remembered
MAX_AUTHORIZATION_LENGTH = 16_384
# What RFC 6750 §3 allows inside error_description's quotes.
NOT_IN_CHALLENGE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A checked access token: who it is about, what it allows, all its claims."""

    sub: str
    scopes: frozenset[str]  # `scope` and `permissions` together
    claims: dict[str, Any]
    expires_at: float
    jkt: str | None  # the thumbprint of the key it is bound to (DPoP), if any


class ApiTokenError(Exception):
    """A request an API route refuses, answered as RFC 6750 (or RFC 9449) says."""

    def __init__(
        self,
        status_code: int,
        error: str | None,
        description: str,
        *,
        scope: str | None = None,
        dpop: bool = False,
    ) -> None:
        super().__init__(description)
        self.status_code, self.error, self.description = status_code, error, description
        self.scope, self.dpop = scope, dpop

    def response(self) -> Response:
        params = []
        if self.error:
            params.append(f'error="{self.error}"')
            description = NOT_IN_CHALLENGE.sub("", self.description)
            params.append(f'error_description="{description}"')
        if self.scope:
            params.append(f'scope="{self.scope}"')
        if self.dpop:
            params.append(f'algs="{" ".join(SIGNING_ALGORITHMS)}"')
        scheme = "DPoP" if self.dpop else "Bearer"
        challenge = f"{scheme} {', '.join(params)}" if params else scheme
        body = {"error": self.error or "unauthorized", "error_description": self.description}
        headers = {"WWW-Authenticate": challenge, "Cache-Control": "no-store"}
        return JSONResponse(body, status_code=self.status_code, headers=headers)


async def api_token_error_handler(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, ApiTokenError):  # pragma: no cover - registered for it only
        raise exc
    logger.info("auth.api_token_refused status=%s error=%s", exc.status_code, exc.error)
    return exc.response()


class ApiTokens:
    """Checks the access tokens of API requests; remembers the good ones until they expire."""

    def __init__(
        self,
        provider: Provider,
        used_ids: LogoutTokens,
        *,
        audience: str | None,
        types: tuple[str, ...],
        base_url: str,
    ) -> None:
        self._provider = provider
        self._used_ids = used_ids
        self._audience = audience
        self._types = tuple(kind.lower() for kind in types)
        self._base_url = base_url
        # Tokens checked before, by the `Authorization` header that carried them.
        self._checked: OrderedDict[bytes, ApiToken] = OrderedDict()

    async def check(self, request: Request) -> ApiToken:
        """The request's access token, checked; `ApiTokenError` if there is none valid."""
        header = _authorization(request)
        scheme, token = _credentials(header)
        api_token = self._checked.get(header)
        now = time.time()
        if api_token is None or api_token.expires_at + CLOCK_LEEWAY <= now:
            api_token = await self._validate(token, header, now=int(now))
        if api_token.jkt is not None or scheme == "dpop":
            await self._check_proof(request, scheme, token, api_token)
        return api_token

    async def _validate(self, token: str, header: bytes, *, now: int) -> ApiToken:
        if self._audience is None:
            logger.warning("auth.api_token_refused: set API_AUDIENCE to accept API tokens")
            raise ApiTokenError(401, "invalid_token", "This app takes no API tokens.")
        metadata = await self._provider.metadata()
        audience, types = self._audience, self._types
        try:
            claims = await self._provider.with_keys(
                lambda keys: validate_access_token(
                    token, keys, issuer=metadata.issuer, audience=audience, types=types, now=now
                )
            )
        except InvalidToken as exc:
            raise ApiTokenError(401, "invalid_token", exc.message) from None
        scopes = set(str(claims.get("scope") or "").split()) | set(claims.get("permissions") or ())
        cnf = claims.get("cnf")
        jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
        api_token = ApiToken(
            sub=claims["sub"],
            scopes=frozenset(scopes),
            claims=claims,
            expires_at=float(claims["exp"]),
            jkt=jkt if isinstance(jkt, str) else None,
        )
        self._checked[header] = api_token
        if len(self._checked) > CACHE_SIZE:
            self._checked.popitem(last=False)
        return api_token

    async def _check_proof(
        self, request: Request, scheme: str, token: str, api_token: ApiToken
    ) -> None:
        if api_token.jkt is None or scheme != "dpop":
            raise ApiTokenError(
                401, "invalid_token", "Send a key-bound token with the DPoP scheme.", dpop=True
            )
        proofs = request.headers.getlist("dpop")
        if len(proofs) != 1:
            raise ApiTokenError(401, "invalid_dpop_proof", "Send one DPoP proof.", dpop=True)
        try:
            proof = check_proof(
                proofs[0],
                method=request.method,
                url=self._base_url + route_path(request.scope),
                access_token=token,
                jkt=api_token.jkt,
                now=int(time.time()),
            )
        except InvalidToken as exc:
            raise ApiTokenError(401, "invalid_dpop_proof", exc.message, dpop=True) from None
        replay_key = f"dpop:{api_token.jkt}:{proof.jti}"
        if not await self._used_ids.claim(replay_key, until=proof.expires_at):
            raise ApiTokenError(
                401, "invalid_dpop_proof", "This DPoP proof was used before.", dpop=True
            )


def _authorization(request: Request) -> bytes:
    """The request's one `Authorization` header, as sent (ASGI names are lower case)."""
    headers = [value for name, value in request.scope["headers"] if name == b"authorization"]
    if not headers:
        raise ApiTokenError(401, None, "Send an access token (Authorization: Bearer ...).")
    if len(headers) > 1 or len(headers[0]) > MAX_AUTHORIZATION_LENGTH:
        raise ApiTokenError(400, "invalid_request", "Send one Authorization header.")
    return bytes(headers[0])


def _credentials(header: bytes) -> tuple[str, str]:
    """The scheme (lower case) and token of an `Authorization` header."""
    scheme, _, token = header.decode("latin-1").partition(" ")
    scheme, token = scheme.lower(), token.strip()
    if scheme not in ("bearer", "dpop"):
        raise ApiTokenError(401, None, "Send the access token with the Bearer scheme.")
    if not token or " " in token:
        raise ApiTokenError(400, "invalid_request", "The Authorization header is malformed.")
    return scheme, token
