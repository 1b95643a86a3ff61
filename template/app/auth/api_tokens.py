"""APIs in this app: routes that take access tokens (RFC 6750 bearer, or RFC 9449 DPoP).

    from app.auth.api_tokens import ApiToken, require_scopes

    @router.get("/api/orders")
    async def orders(token: Annotated[ApiToken, Depends(require_scopes("read:orders"))]):
        ...  # token.sub, token.scopes, token.claims

A token must be a JWT access token (RFC 9068) from the app's provider for API_AUDIENCE
(by default AUTH0_AUDIENCE): signed with one of the provider's keys (the key set the app
caches for ID tokens; one refetch for an unknown key id; asymmetric algorithms only),
from its issuer, for that audience, valid now (a minute's leeway), of a type
API_TOKEN_TYPES allows. Its scopes are its `scope` and Auth0's RBAC `permissions`
together. A token bound to a key (`cnf.jkt`) must come with the `DPoP` scheme and a proof
(`dpop.py`); a proof is accepted once.

Errors follow RFC 6750 §3 (and RFC 9449 §7.1): 401 with `WWW-Authenticate` naming the
problem (`invalid_token`; no error code when the request had no token), 403
`insufficient_scope`, 400 `invalid_request`, with JSON bodies; never a login redirect.
Checked tokens are remembered until they expire (up to 10,000), so a
client's repeated calls cost no signature check.

`require_session_or_token` lets one route serve the app's own pages (session cookie)
and API clients (token) alike.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase

from app.auth import policy
from app.auth.api_token_checks import ApiToken, ApiTokenError
from app.auth.core import get_auth
from app.auth.deps import SessionCookie, get_session, require_same_origin
from app.auth.errors import Forbidden
from app.auth.sessions import Session

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
BEARER = "HTTPBearer"  # the scheme's name in the OpenAPI schema
BEARER_MODEL = HTTPBearerModel(
    bearerFormat="JWT", description="An access token for this app's API."
)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who called a route that takes a session or a token: exactly one of them is set."""

    session: Session | None
    token: ApiToken | None

    @property
    def sub(self) -> str:
        return self.session.sub if self.session else self.token.sub if self.token else ""


class BearerScheme(SecurityBase):
    """Names `Authorization: Bearer` in the OpenAPI schema (/docs) of routes that may take a
    token; reads nothing (`ApiTokens.check` does, for DPoP tokens too)."""

    def __init__(self) -> None:
        self.model, self.scheme_name = BEARER_MODEL, BEARER

    async def __call__(self) -> None:
        return None


class ScopedToken(SecurityBase):
    """The dependency `require_scopes` makes: the request's checked access token, if it
    grants `scopes`. A security scheme itself, so that /docs shows the bearer scheme on
    its routes at the cost of one dependency (FastAPI's cost grows with each)."""

    def __init__(self, scopes: frozenset[str]) -> None:
        self.model, self.scheme_name = BEARER_MODEL, BEARER
        self.scopes = scopes

    async def __call__(self, request: Request) -> ApiToken:
        return _granting(await get_auth(request).api_tokens.check(request), self.scopes)


def require_scopes(*scopes: str) -> ScopedToken:
    """A token that grants every one of these scopes (or Auth0 permissions); 403 if not."""
    return ScopedToken(frozenset(scopes))


def _granting(token: ApiToken, scopes: frozenset[str]) -> ApiToken:
    if not scopes <= token.scopes:
        raise ApiTokenError(
            403,
            "insufficient_scope",
            "The access token does not grant what this route needs.",
            scope=" ".join(sorted(scopes)),
            dpop=token.jkt is not None,
        )
    return token


def require_session_or_token(*scopes: str) -> Callable[..., Awaitable[Caller]]:
    """A route for the app's own pages and for API clients: a request with an
    `Authorization` header must carry a token with `scopes`; one without, a session
    (then `scopes` are not asked: sessions are the app's own users). Anonymous requests
    get 401 as an API would, never a login redirect."""
    wanted = frozenset(scopes)

    async def caller(
        request: Request, _bearer: Annotated[None, Security(BearerScheme())], _cookie: SessionCookie
    ) -> Caller:
        if "authorization" in request.headers:
            token = _granting(await get_auth(request).api_tokens.check(request), wanted)
            return Caller(session=None, token=token)
        session = await get_session(request)
        if session is None:
            raise ApiTokenError(401, None, "Log in, or send an access token.")
        if request.method not in SAFE_METHODS:
            require_same_origin(request)  # a cookie is sent whichever site made the request
        if not policy.authorize(session.user, request):
            raise Forbidden()
        return Caller(session=session, token=None)

    return caller


# Any valid token, whatever it grants.
CurrentApiToken = Annotated[ApiToken, Depends(require_scopes())]
