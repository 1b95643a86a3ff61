"""Connected Accounts for Token Vault (Auth0): a user connects an account at another
provider (Google, GitHub, ...) and the app calls that provider's APIs on their behalf.

    GET /auth/connect?connection=NAME[&scopes=a&scopes=b][&returnTo=/path]

starts it for the logged-in user. With a My Account API token (scope
`create:me:connected_accounts`, got with the refresh token) the app asks Auth0 to
connect an account at `connection`, keeps Auth0's `auth_session` and a PKCE verifier in
a transaction cookie, and sends the browser to the provider's consent screen. Auth0
sends it back to /auth/callback with a `connect_code`, which the app hands to the My
Account API to finish; then the browser goes on to `returnTo`. `scopes` are the
provider's scopes (by default, those configured for the connection at Auth0).

For your routes:

    accounts = await list_connected_accounts(request)
    await delete_connected_account(request, accounts[0].id)
    token = await get_connection_token(request, "google-oauth2")  # for Google's APIs

or, as a dependency, `token: Annotated[AccessToken, Depends(connection_token("github"))]`.
Connection tokens come from Auth0's Token Vault (a token exchange with the refresh
token) and stay in the session until they are about to expire. Without a connected
account, `AccountNotConnected` (403) says so; send the user to `connect_url(...)`.
"""

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from app.auth.callback import AuthorizationResponse, finishes
from app.auth.connections import connection_name
from app.auth.core import Auth, get_auth
from app.auth.deps import (
    AuthDep,
    browser_action,
    confirm_if_cross_site,
    get_session,
    require_session,
)
from app.auth.errors import AuthError, InvalidRequest, LoginFailed, NotAuthenticated, ProviderError
from app.auth.my_account import (
    CONNECT_SCOPE,
    DELETE_SCOPE,
    READ_SCOPE,
    ConnectedAccount,
    MyAccountApi,
)
from app.auth.provider import OAuthError
from app.auth.routes import NO_STORE, Param, ReturnTo
from app.auth.sessions import MAX_ACCESS_TOKENS, AccessToken, Session
from app.auth.tokens import parse_token_response
from app.auth.transactions import LoginTransaction
from app.auth.urls import AUTH_PREFIX, redirect_within, safe_return_to

logger = logging.getLogger("app.auth")
router = APIRouter(prefix=AUTH_PREFIX, tags=["auth"])

# Auth0's token exchange for a connection's access token (Token Vault).
VAULT_EXCHANGE_GRANT = (
    "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token"
)
REFRESH_SUBJECT_TYPE = "urn:ietf:params:oauth:token-type:refresh_token"
CONNECTION_ACCESS_TYPE = "http://auth0.com/oauth/token-type/federated-connection-access-token"
# Connection tokens are kept among the session's access tokens under this "audience".
CONNECTION_AUDIENCE = "connection:"
MAX_SCOPES = 50
MAX_SCOPE_LENGTH = 512

Scopes = Annotated[
    list[str] | None, Query(description="Scopes to ask the provider for (repeat the parameter)")
]


class AccountNotConnected(AuthError):
    """The user has no connected account at `connection` (or Auth0 no longer holds its
    tokens): send them to `connect_url(connection)`."""

    status_code = 403
    code = "account_not_connected"
    title = "Connect your account first"

    def __init__(self, connection: str) -> None:
        super().__init__(f"Connect your {connection} account to use this page.")
        self.connection = connection


@browser_action(router, "/connect")
async def connect(
    request: Request,
    auth: AuthDep,
    connection: Param = None,
    scopes: Scopes = None,
    return_to: ReturnTo = None,
) -> Response:
    """Connect the logged-in user's account at `connection`: redirect to its consent screen."""
    name = connection_name(connection)
    asked = _checked_scopes(scopes or [])
    question = f"Connect your account at {name}?"
    if page := confirm_if_cross_site(request, question=question, button="Connect"):
        return page
    session = await require_session(request)
    api = MyAccountApi(auth.provider)
    token = await auth.tokens.access_token(
        request, session, audience=api.audience, scope=CONNECT_SCOPE
    )
    transaction = LoginTransaction.start(safe_return_to(return_to), kind="connect")
    ticket = await api.connect(
        token.token,
        connection=name,
        scopes=asked,
        redirect_uri=auth.settings.redirect_uri,
        state=transaction.state,
        code_verifier=transaction.code_verifier,
    )
    response = RedirectResponse(ticket.url, status_code=303, headers=NO_STORE)
    auth.transactions.save(
        request, response, replace(transaction, auth_session=ticket.auth_session)
    )
    logger.info("auth.connect_started sub=%r connection=%r", session.sub, name)
    return response


@finishes("connect")
async def finish_connect(
    request: Request, auth: Auth, transaction: LoginTransaction, answer: AuthorizationResponse
) -> Response:
    """Complete the connection of an account (Auth0 returns to /auth/callback with a
    `connect_code`), then go on to `returnTo`."""
    metadata = await auth.provider.metadata()
    answer.check_issuer(metadata, required=False)
    if answer.error:
        detail = f": {answer.error_description}" if answer.error_description else ""
        raise LoginFailed(f"The account was not connected ({answer.error}){detail}.")
    connect_code = answer.connect_code
    if not connect_code or transaction.auth_session is None:
        raise InvalidRequest("The response has no connect_code.")
    session = await get_session(request)
    if session is None:
        raise NotAuthenticated(
            "Your session ended before the account was connected. Please log in and try again."
        )
    api = MyAccountApi(auth.provider)
    token = await auth.tokens.access_token(
        request, session, audience=api.audience, scope=CONNECT_SCOPE
    )
    account = await api.complete(
        token.token,
        auth_session=transaction.auth_session,
        connect_code=connect_code,
        redirect_uri=auth.settings.redirect_uri,
        code_verifier=transaction.code_verifier,
    )
    logger.info("auth.connected sub=%r connection=%r", session.sub, account.connection)
    return redirect_within(request, transaction.return_to)


def connect_url(connection: str, *, return_to: str = "/", scopes: tuple[str, ...] = ()) -> str:
    """The link that connects an account at `connection`, then returns to `return_to`."""
    params = [("connection", connection), *(("scopes", scope) for scope in scopes)]
    params.append(("returnTo", safe_return_to(return_to)))
    return f"{AUTH_PREFIX}/connect?{urlencode(params)}"


async def list_connected_accounts(
    request: Request, *, connection: str | None = None
) -> list[ConnectedAccount]:
    """The logged-in user's connected accounts (at one `connection`, if given)."""
    name = connection_name(connection) if connection is not None else None
    api, token = await _my_account(request, READ_SCOPE)
    return await api.list_accounts(token, connection=name)


async def delete_connected_account(request: Request, account_id: str) -> None:
    """Disconnect one of the user's accounts; its tokens are removed from Auth0's Token Vault."""
    api, token = await _my_account(request, DELETE_SCOPE)
    await api.delete_account(token, account_id)
    logger.info("auth.disconnected account=%r", account_id)

    # The account's connection is not known here: forget every kept connection token.
    def without_connection_tokens(current: Session) -> Session:
        kept = tuple(t for t in current.access_tokens if not _for_a_connection(t))
        return replace(current, access_tokens=kept)

    await get_auth(request).sessions.change(request, without_connection_tokens)


async def get_connection_token(request: Request, connection: str) -> AccessToken:
    """An access token for the API of the provider behind `connection`, from Token Vault."""
    name = connection_name(connection)
    audience = CONNECTION_AUDIENCE + name
    auth = get_auth(request)
    leeway = auth.settings.access_token_leeway
    kept = (await require_session(request)).access_token(audience)
    if kept is not None and kept.valid_for(leeway):
        return kept

    async def with_connection_token(current: Session) -> Session:
        kept = current.access_token(audience)
        if kept is not None and kept.valid_for(leeway):
            return current  # fetched by another request meanwhile
        if current.refresh_token is None:
            raise NotAuthenticated("Please log in again to use your connected accounts.")
        token = await exchange_for_connection(auth, current.refresh_token, name)
        others = [t for t in current.access_tokens if t.audience != audience]
        return replace(current, access_tokens=(token, *others[: MAX_ACCESS_TOKENS - 1]))

    changed = await auth.sessions.change(request, with_connection_token)
    token = changed.access_token(audience)
    if token is None:  # pragma: no cover - `with_connection_token` adds one or raises
        raise NotAuthenticated()
    return token


def connection_token(connection: str) -> Callable[[Request], Awaitable[AccessToken]]:
    """A dependency giving an access token for the provider behind `connection`."""

    async def dependency(request: Request) -> AccessToken:
        return await get_connection_token(request, connection)

    return dependency


async def exchange_for_connection(auth: Auth, refresh_token: str, connection: str) -> AccessToken:
    """Auth0's Token Vault exchange: the refresh token for the connection's access token."""
    form = {
        "grant_type": VAULT_EXCHANGE_GRANT,
        "subject_token_type": REFRESH_SUBJECT_TYPE,
        "subject_token": refresh_token,
        "connection": connection,
        "requested_token_type": CONNECTION_ACCESS_TYPE,
    }
    client = auth.client
    try:
        body = await client.token_request(await client.provider.metadata(), form)
    except OAuthError as exc:
        if exc.error == "federated_connection_refresh_token_not_found":
            raise AccountNotConnected(connection) from None
        message = f"The login service refused a token for {connection} ({exc.error})."
        raise ProviderError(message) from None
    issued = body.get("issued_token_type")
    if issued is not None and issued != CONNECTION_ACCESS_TYPE:
        raise ProviderError("The login service issued another type of token than asked for.")
    tokens = parse_token_response(body, now=int(time.time()), id_token_required=False)
    return tokens.access_token_for(CONNECTION_AUDIENCE + connection)


def _checked_scopes(scopes: list[str]) -> list[str]:
    if len(scopes) > MAX_SCOPES or any(
        not scope.strip() or len(scope) > MAX_SCOPE_LENGTH for scope in scopes
    ):
        raise InvalidRequest("The scopes parameter is empty or too large.")
    return scopes


async def _my_account(request: Request, scope: str) -> tuple[MyAccountApi, str]:
    """The My Account API and a token for it with `scope`, for the logged-in user."""
    session = await require_session(request)
    auth = get_auth(request)
    api = MyAccountApi(auth.provider)
    token = await auth.tokens.access_token(request, session, audience=api.audience, scope=scope)
    return api, token.token


def _for_a_connection(token: AccessToken) -> bool:
    return (token.audience or "").startswith(CONNECTION_AUDIENCE)
