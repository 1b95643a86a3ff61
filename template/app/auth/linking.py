"""Account linking (Auth0, legacy): attach another identity to the logged-in user, or detach it.

    GET /auth/connect?connection=NAME[&connectionScope=...][&returnTo=/path]
    GET /auth/unconnect?connection=NAME[&returnTo=/path]

Both send the browser to the authorization endpoint with scope `openid link_account`
(or `openid unlink_account`), the session's ID token as `id_token_hint` and the
connection as `requested_connection`. Auth0's "Client-Initiated Account Linking"
Action has the user sign in at that connection and links the identity to the user of
the ID token (or unlinks it), then the login goes on as that user. The provider sends
the browser back to /auth/connect/callback (or /auth/unconnect/callback), where the
code is redeemed like a login's: the session gets the new ID token and user claims
but stays the same session. Then the browser goes on to `returnTo`.

Connected Accounts for Token Vault (`account_linking=connected_accounts`) is Auth0's
preferred way for new apps.
"""

import logging
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from app.auth.callback import AuthorizationResponse, complete_transaction, finishes
from app.auth.connections import connection_name
from app.auth.core import Auth
from app.auth.deps import (
    AuthDep,
    browser_action,
    confirm_if_cross_site,
    get_session,
    require_session,
)
from app.auth.errors import InvalidRequest, NotAuthenticated
from app.auth.routes import NO_STORE, Param, ReturnTo, authorization_code
from app.auth.sessions import Session
from app.auth.transactions import LoginTransaction
from app.auth.urls import AUTH_PREFIX, redirect_within, safe_return_to

logger = logging.getLogger("app.auth")
router = APIRouter(prefix=AUTH_PREFIX, tags=["auth"])

LINK, UNLINK = "link", "unlink"
SCOPES = {LINK: "openid link_account", UNLINK: "openid unlink_account"}
CALLBACK_PATHS = {
    LINK: f"{AUTH_PREFIX}/connect/callback",
    UNLINK: f"{AUTH_PREFIX}/unconnect/callback",
}
MAX_CONNECTION_SCOPE_LENGTH = 1024

ConnectionScope = Annotated[
    str | None,
    Query(alias="connectionScope", description="Scopes to ask the connection's provider for"),
]


@browser_action(router, "/connect")
async def connect(
    request: Request,
    auth: AuthDep,
    connection: Param = None,
    connection_scope: ConnectionScope = None,
    return_to: ReturnTo = None,
) -> Response:
    """Link the identity the user signs in with at `connection` to their account."""
    extra = {}
    if connection_scope:
        if len(connection_scope) > MAX_CONNECTION_SCOPE_LENGTH:
            raise InvalidRequest("The connectionScope parameter is too large.")
        extra["requested_connection_scope"] = connection_scope
    return await _start(request, auth, LINK, connection, return_to, extra)


@router.get(
    "/connect/callback", response_class=RedirectResponse, status_code=303, include_in_schema=False
)
async def connect_callback(request: Request, auth: AuthDep) -> Response:
    """Finish linking: redeem the code, update the session, go on to `returnTo`."""
    return await complete_transaction(request, auth)


@browser_action(router, "/unconnect")
async def unconnect(
    request: Request, auth: AuthDep, connection: Param = None, return_to: ReturnTo = None
) -> Response:
    """Unlink the user's identity at `connection` from their account."""
    return await _start(request, auth, UNLINK, connection, return_to, {})


@router.get(
    "/unconnect/callback", response_class=RedirectResponse, status_code=303, include_in_schema=False
)
async def unconnect_callback(request: Request, auth: AuthDep) -> Response:
    """Finish unlinking: redeem the code, update the session, go on to `returnTo`."""
    return await complete_transaction(request, auth)


async def _start(
    request: Request,
    auth: Auth,
    kind: str,
    connection: str | None,
    return_to: str | None,
    extra: dict[str, str],
) -> Response:
    name = connection_name(connection)
    verb = "Link" if kind == LINK else "Unlink"
    question = f"{verb} your account at {name}?"
    if page := confirm_if_cross_site(request, question=question, button=verb):
        return page
    session = await require_session(request)
    metadata = await auth.provider.metadata()
    transaction = LoginTransaction.start(safe_return_to(return_to), kind=kind)
    url = await auth.client.authorization_url(
        metadata,
        state=transaction.state,
        nonce=transaction.nonce,
        code_verifier=transaction.code_verifier,
        extra={**extra, "requested_connection": name, "id_token_hint": session.id_token},
        redirect_uri=auth.settings.app_base_url + CALLBACK_PATHS[kind],
        scope=SCOPES[kind],
        push_if_possible=True,  # the ID token then never appears in the browser's URL
    )
    response = RedirectResponse(url, status_code=303, headers=NO_STORE)
    auth.transactions.save(request, response, transaction)
    logger.info("auth.%s_started sub=%r connection=%r", kind, session.sub, name)
    return response


@finishes(LINK, at=CALLBACK_PATHS[LINK])
@finishes(UNLINK, at=CALLBACK_PATHS[UNLINK])
async def finish_linking(
    request: Request, auth: Auth, transaction: LoginTransaction, answer: AuthorizationResponse
) -> Response:
    """Redeem the code of a (un)linking, give the session the new ID token and claims."""
    kind = transaction.kind
    metadata = await auth.provider.metadata()
    checked = authorization_code(metadata, answer)
    session = await get_session(request)
    if session is None:
        raise NotAuthenticated(
            "Your session ended before the accounts were changed. Please log in and try again."
        )
    tokens, claims = await auth.client.exchange_code(
        checked,
        code_verifier=transaction.code_verifier,
        nonce=transaction.nonce,
        redirect_uri=auth.settings.app_base_url + CALLBACK_PATHS[kind],
        sub=session.sub,
    )

    # The same session (login id, expiry, provider session) with the new ID token and
    # claims; its access tokens stay, as this flow asked for no API. A change like a
    # token refresh: one that rotated the refresh token meanwhile is kept.
    def relinked(current: Session) -> Session:
        return replace(
            current,
            user=auth.user_claims.user(claims),
            id_token=tokens.id_token or current.id_token,
            refresh_token=tokens.refresh_token or current.refresh_token,
        )

    await auth.sessions.change(request, relinked)
    logger.info("auth.%s_completed sub=%r", kind, session.sub)
    return redirect_within(request, transaction.return_to)
