"""The /auth routes. Thin: each one reads the request and calls into the modules below it."""

import json
import logging
import time
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.background import BackgroundTask

from app.auth import policy
from app.auth.bodies import read_at_most
from app.auth.callback import AuthorizationResponse, complete_transaction, finishes
from app.auth.core import Auth
from app.auth.deps import (
    AuthDep,
    browser_action,
    confirm_if_cross_site,
    get_session,
    require_same_origin,
)
from app.auth.errors import (
    CONFIGURATION_HINTS,
    InvalidRequest,
    InvalidToken,
    LoginFailed,
    NotAuthenticated,
    ProviderError,
    UnsupportedMediaType,
    WrongAddress,
)
from app.auth.login_requirements import (
    SILENT_LOGIN_ERRORS,
    authentication,
    check_login,
    login_params,
    needs_userinfo,
)
from app.auth.logout_notice import leave_notice
from app.auth.provider import ProviderMetadata
from app.auth.sessions import Session
from app.auth.silent_login import mark_tried
from app.auth.telemetry import count
from app.auth.transactions import LoginTransaction
from app.auth.urls import AUTH_PREFIX, LOGIN_PATH, is_loopback, redirect_within, safe_return_to

logger = logging.getLogger("app.auth")
router = APIRouter(prefix=AUTH_PREFIX, tags=["auth"])

NO_STORE = {"Cache-Control": "no-store"}
MAX_LOGIN_PARAM_LENGTH = 512
MAX_LOGOUT_BODY = 64 * 1024
MAX_SID_LENGTH = 255
# Characters of a UserInfo claim's JSON kept; a larger one (a picture as a data: URL, a
# hostile provider) is left out rather than make the session too large to keep.
MAX_USERINFO_CLAIM = 2048
FRONTCHANNEL_PAGE = "<!doctype html><title>Logged out</title><p>Logged out.</p>"

SameOrigin = Depends(require_same_origin)
ReturnTo = Annotated[str | None, Query(alias="returnTo", description="App path to return to")]
Param = Annotated[str | None, Query()]


@router.get("/login", response_class=RedirectResponse, status_code=303, include_in_schema=False)
async def login(request: Request, auth: AuthDep, return_to: ReturnTo = None) -> Response:
    """Start a login: redirect to the provider's authorization endpoint."""
    _check_address(request, auth.settings.app_base_url)
    params = request.query_params
    extra = {
        name: value
        for name in policy.LOGIN_PARAMS
        if (value := params.get(name)) and len(value) <= MAX_LOGIN_PARAM_LENGTH
    }
    settings = auth.settings
    consent = (
        settings.auth0_offline_access_prompt == "consent"
        and "offline_access" in settings.auth0_scope.split()
    )
    extra = login_params(extra, organization=settings.auth0_organization, consent=consent)
    metadata = await auth.provider.metadata()
    transaction = LoginTransaction.start(safe_return_to(return_to), asked=extra)
    url = await auth.client.authorization_url(
        metadata,
        state=transaction.state,
        nonce=transaction.nonce,
        code_verifier=transaction.code_verifier,
        extra=extra,
    )
    response = RedirectResponse(url, status_code=303, headers=NO_STORE)
    auth.transactions.save(request, response, transaction)
    if transaction.prompt == "none":
        mark_tried(response, auth.settings.cookie_scope)
    return response


def _check_address(request: Request, base_url: str) -> None:
    """Refuse a login at `localhost` when `APP_BASE_URL` says `127.0.0.1` (or the reverse):
    the callback would come back to the other name, without this browser's login cookie."""
    base = urlsplit(base_url)
    try:  # the Host header is the client's: it may not even parse
        opened = urlsplit("//" + request.headers.get("host", ""))
        same_port = opened.port == base.port
    except ValueError:
        return
    if (
        same_port
        and opened.hostname != base.hostname
        and is_loopback(opened.hostname or "")
        and is_loopback(base.hostname or "")
    ):
        query = request.scope.get("query_string", b"").decode("latin-1")
        retry = base_url + LOGIN_PATH + (f"?{query}" if query else "")
        raise WrongAddress(
            f"{base.scheme}://{opened.netloc}", f"{base.scheme}://{base.netloc}", retry
        )


@router.get("/callback", response_class=RedirectResponse, status_code=303, include_in_schema=False)
async def callback(request: Request, auth: AuthDep) -> Response:
    """Where the provider returns: `code`, `state`, `iss`, `error`, `error_description`
    (and Auth0's `connect_code`). Finishes the login, or whichever flow the `state`'s
    transaction belongs to."""
    return await complete_transaction(request, auth)


def authorization_code(metadata: ProviderMetadata, answer: AuthorizationResponse) -> str:
    """The code of an authorization response, once the response is checked."""
    answer.check_issuer(metadata)
    if answer.error:
        logger.warning(
            "auth.login_error error=%r description=%r", answer.error, answer.error_description
        )
        hint = CONFIGURATION_HINTS.get(answer.error, "")
        detail = f": {answer.error_description}" if answer.error_description else ""
        raise LoginFailed(f"The login service reported an error ({answer.error}){detail}.{hint}")
    if not answer.code:
        raise InvalidRequest("The login response has no authorization code.")
    return answer.code


@finishes("login")
async def finish_login(
    request: Request, auth: Auth, transaction: LoginTransaction, answer: AuthorizationResponse
) -> Response:
    """Redeem the code of a login, start the session, and send the user on."""
    metadata = await auth.provider.metadata()
    answer.check_issuer(metadata)
    if transaction.prompt == "none" and answer.error in SILENT_LOGIN_ERRORS:
        # A silent login found no session at the provider: carry on without one.
        logger.info("auth.silent_login_declined error=%r", answer.error)
        return redirect_within(request, transaction.return_to)
    code = authorization_code(metadata, answer)
    tokens, claims = await auth.client.exchange_code(
        code, code_verifier=transaction.code_verifier, nonce=transaction.nonce
    )
    check_login(claims, transaction, now=int(time.time()))
    claims = await _with_userinfo(auth, claims, tokens.access_token, metadata)
    sid = claims.get("sid")
    access_token = tokens.access_token_for(auth.settings.auth0_audience)
    session = Session.start(
        auth.user_claims.user(claims),
        id_token=tokens.id_token,
        refresh_token=tokens.refresh_token,
        access_tokens=(access_token,),
        sid=sid if isinstance(sid, str) else None,
        expires_at=provider_session_end(claims),
        **authentication(claims),
    )
    session = await policy.on_login(request, session, tokens)
    target = policy.after_login(session, transaction.return_to)
    await auth.sessions.start(request, session)
    logger.info("auth.login sub=%r", session.sub)
    count("auth.logins")
    return redirect_within(request, target)


async def _with_userinfo(
    auth: Auth, claims: dict[str, Any], access_token: str, metadata: ProviderMetadata
) -> dict[str, Any]:
    """The ID token's claims, completed from UserInfo when needed (the ID token wins)."""
    settings = auth.settings
    if metadata.userinfo_endpoint is None or not needs_userinfo(
        claims, scope=settings.auth0_scope, setting=settings.auth_userinfo
    ):
        return claims
    try:
        userinfo = await auth.client.userinfo(access_token, sub=str(claims["sub"]))
    except ProviderError as exc:  # the login goes on with the ID token's claims
        logger.warning("auth.userinfo_failed: %r", exc.message)
        return claims
    kept = {
        k: v
        for k, v in userinfo.items()
        if len(json.dumps(v, ensure_ascii=False)) <= MAX_USERINFO_CLAIM
    }
    if len(kept) < len(userinfo):
        logger.warning("auth.userinfo_claims_too_large: %r", sorted(set(userinfo) - set(kept)))
    return {**kept, **claims}


def provider_session_end(claims: Mapping[str, Any]) -> int | None:
    """When the provider's session ends, if the ID token says (Auth0's `session_expiry`)."""
    value = claims.get("session_expiry")
    return value if type(value) is int and value > 0 else None


@browser_action(router, "/logout")
async def logout(request: Request, auth: AuthDep, return_to: ReturnTo = None) -> Response:
    """End the session here, then at the provider, then come back to `returnTo`. A link on
    another site's page gets a page that asks first (its button POSTs here)."""
    if page := confirm_if_cross_site(request, question="Log out?", button="Log out"):
        return page
    return await _log_out(request, auth, return_to)


async def _log_out(request: Request, auth: Auth, return_to: str | None) -> Response:
    session = await auth.sessions.end(request)  # never fails: the cookie goes in any case
    return_url = auth.settings.app_base_url + safe_return_to(return_to)
    try:
        metadata = await auth.provider.metadata()
    except ProviderError:
        metadata = None  # never let a provider problem keep a user logged in here
    url = auth.client.logout_url(
        metadata, id_token=session.id_token if session else None, return_url=return_url
    )
    response = RedirectResponse(url, status_code=303, headers=NO_STORE)
    if session is not None:
        leave_notice(response, auth.settings.cookie_scope)  # "You are logged out."
        logger.info("auth.logout sub=%r", session.sub)
        count("auth.logouts", kind="rp")
        if session.refresh_token:
            # After the response is sent, so a slow provider never holds up a logout.
            response.background = BackgroundTask(auth.client.revoke, session.refresh_token)
    return response


@router.post("/backchannel-logout", include_in_schema=False)
async def backchannel_logout(request: Request, auth: AuthDep) -> Response:
    """OpenID Connect Back-Channel Logout 1.0: the provider ends sessions here."""
    try:
        token = await _logout_token(request)
        logout = await auth.client.validate_logout_token(token)
    except (InvalidRequest, InvalidToken) as exc:
        logger.warning("auth.backchannel_logout rejected: %r", exc.message)
        error = "invalid_request" if exc.status_code == 400 else exc.code
        body = {"error": error, "error_description": exc.message}
        return JSONResponse(body, status_code=exc.status_code, headers=NO_STORE)
    if await auth.logout_tokens.used(logout.jti):
        body = {
            "error": "invalid_request",
            "error_description": "This logout token was used before.",
        }
        return JSONResponse(body, status_code=400, headers=NO_STORE)
    # Claimed once the sessions ended: when either step fails (503), the provider sends
    # the token again, and it is taken (two deliveries at once end the same sessions).
    await auth.sessions.end_sessions(sub=logout.sub, sid=logout.sid)
    await auth.logout_tokens.claim(logout.jti, until=logout.expires_at)
    logger.info("auth.backchannel_logout sub=%r sid=%r", logout.sub, logout.sid)
    count("auth.logouts", kind="backchannel")
    return Response(status_code=200, headers=NO_STORE)


@router.get("/frontchannel-logout", include_in_schema=False)
async def frontchannel_logout(request: Request, auth: AuthDep) -> Response:
    """OpenID Connect Front-Channel Logout 1.0: the provider's logout page loads this in an
    iframe with `iss` and `sid`, and the app ends that provider session's sessions. A
    request naming another issuer, or no provider session, ends nothing: register the app
    with `frontchannel_logout_session_required`, since its cookies (SameSite=Lax) are not
    sent to an iframe of another site. The answer may be framed by the provider only."""
    params = request.query_params
    iss, sid = params.get("iss"), params.get("sid")
    metadata = await auth.provider.metadata()
    if iss == metadata.issuer and sid and len(sid) <= MAX_SID_LENGTH:
        ended = await auth.sessions.end_sessions(sid=sid)
        logger.info("auth.frontchannel_logout sid=%r ended=%s", sid, ended)
        count("auth.logouts", kind="frontchannel")
    else:
        logger.info("auth.frontchannel_logout ignored: iss or sid missing or not the provider's")
    issuer = urlsplit(metadata.issuer)
    headers = {
        "Cache-Control": "no-cache, no-store",
        "Content-Security-Policy": f"frame-ancestors {issuer.scheme}://{issuer.netloc}",
    }
    return HTMLResponse(FRONTCHANNEL_PAGE, headers=headers)


async def _logout_token(request: Request) -> str:
    """The `logout_token` of a form-encoded body, read with a size limit."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise UnsupportedMediaType("Send the logout token as application/x-www-form-urlencoded.")
    body = await read_at_most(request.stream(), MAX_LOGOUT_BODY)
    if body is None:
        raise InvalidRequest("The request body is too large.")
    try:
        fields = parse_qs(body.decode(), max_num_fields=20, strict_parsing=bool(body))
    except ValueError:
        raise InvalidRequest("The request body is not valid form data.") from None
    tokens = fields.get("logout_token", [])
    if len(tokens) != 1 or not tokens[0]:
        raise InvalidRequest("Send exactly one logout_token.")
    return tokens[0]


# The session cookie is documented for the schema only: this route reads it without a
# dependency (see below).
@router.get("/profile", openapi_extra={"security": [{"APIKeyCookie": []}]})
async def profile(request: Request) -> dict[str, Any]:
    """The logged-in user's claims; 401 without a session."""
    # Called directly rather than as a dependency: this route is hit on every page
    # load of single-page front ends, and FastAPI's dependency solving costs more
    # than reading the session does.
    session = await get_session(request)
    if session is None:
        raise NotAuthenticated()
    return session.user
