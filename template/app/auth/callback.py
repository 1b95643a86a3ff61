"""Returns from the provider: the authorization response, read once, and who finishes it.

Each flow that sends the browser to the provider (login; account linking and Connected
Accounts when generated) registers a *finisher* for the kind of transaction it starts,
at the path the provider returns to (`@finishes("login")`). A callback route calls
`complete_transaction`, which checks the query, takes the transaction of its `state`
and hands the parsed response to the finisher of the transaction's kind.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response

from app.auth.core import Auth
from app.auth.errors import AuthError, InvalidRequest, LoginExpired, auth_error_handler
from app.auth.provider import ProviderMetadata
from app.auth.transactions import LoginTransaction
from app.auth.urls import CALLBACK_PATH, redirect_within, route_path

MAX_QUERY_LENGTH = 8192
# The parameters a provider may send back, and their longest accepted values.
PARAM_LIMITS = {
    "code": 2048,
    "state": 128,
    "iss": 2048,
    "error": 128,
    "error_description": 1024,
    "connect_code": 256,  # Auth0 Connected Accounts
}


@dataclass(frozen=True, slots=True)
class AuthorizationResponse:
    """The query of a return from the provider, checked for size and repetition."""

    state: str | None
    code: str | None
    iss: str | None
    error: str | None
    error_description: str | None
    connect_code: str | None

    @classmethod
    def of(cls, request: Request) -> "AuthorizationResponse":
        if len(request.scope.get("query_string", b"")) > MAX_QUERY_LENGTH:
            raise InvalidRequest("The login response is too large.")
        params = request.query_params
        values: dict[str, str | None] = {}
        for name, limit in PARAM_LIMITS.items():
            given = params.getlist(name)
            if len(given) > 1:
                raise InvalidRequest(f"The login response repeats the {name} parameter.")
            if given and len(given[0]) > limit:
                raise InvalidRequest(f"The login response's {name} parameter is too large.")
            values[name] = given[0] if given else None
        return cls(**values)

    def check_issuer(self, metadata: ProviderMetadata, *, required: bool = True) -> None:
        """RFC 9207: the `iss` parameter says which provider answered (mix-up defence).
        `required=False`: a response outside RFC 9207 (Auth0's connect) may omit it."""
        if self.iss is not None and self.iss != metadata.issuer:
            raise InvalidRequest("The login response came from another login service (iss).")
        if self.iss is None and required and metadata.iss_parameter_required:
            raise InvalidRequest(
                "The login response does not say which login service sent it (iss)."
            )


Finisher = Callable[[Request, Auth, LoginTransaction, AuthorizationResponse], Awaitable[Response]]
_finishers: dict[tuple[str, str], Finisher] = {}  # (path, transaction kind) -> finisher


def finishes(kind: str, *, at: str = CALLBACK_PATH) -> Callable[[Finisher], Finisher]:
    """Register a finisher for transactions of `kind` that return to path `at`."""

    def register(finisher: Finisher) -> Finisher:
        _finishers[(at, kind)] = finisher
        return finisher

    return register


async def complete_transaction(request: Request, auth: Auth) -> Response:
    """What every return from the provider shares: check the query, take the transaction
    of `state` (its cookie is removed whatever the outcome) and let the finisher of its
    kind answer. A transaction no finisher at this path takes is refused; errors become
    error pages."""
    cleanup = Response()  # collects the removal of the transaction cookie
    try:
        answer = AuthorizationResponse.of(request)
        if not answer.state:
            raise InvalidRequest("The login response has no state parameter.")
        transaction = auth.transactions.pop(request, cleanup, answer.state)
        path = route_path(request.scope)
        finisher = _finishers.get((path, transaction.kind)) if transaction else None
        if transaction is None or finisher is None:
            if await auth.sessions.current(request) is not None:
                # A reload or "back" onto an old callback URL of a logged-in user.
                response: Response = redirect_within(request, "/")
            else:
                raise LoginExpired(
                    "This login has expired, was already completed, or was started in "
                    "another browser. Please log in again."
                )
        else:
            response = await finisher(request, auth, transaction, answer)
    except AuthError as exc:
        response = await auth_error_handler(request, exc)
    for name, value in cleanup.raw_headers:
        if name == b"set-cookie":
            response.raw_headers.append((name, value))
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # keep the code out of Referer headers
    return response
