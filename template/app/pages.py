"""Example pages: a public home page, a protected profile page, your sessions. Make them yours."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.auth import (
    CurrentAccessToken,
    CurrentSession,
    CurrentUser,
    JustLoggedOut,
    OptionalSession,
    get_auth,
)
from app.auth.session_routes import describe
from app.templating import templates

router = APIRouter(tags=["pages"])


@router.get("/", response_class=HTMLResponse)
async def home(
    request: Request, session: OptionalSession, logged_out: JustLoggedOut
) -> HTMLResponse:
    user = session.user if session else None
    context = {"user": user, "logged_out": logged_out and user is None}
    return templates.TemplateResponse(request, "index.html", context)


@router.get("/profile", response_class=HTMLResponse)
async def profile(request: Request, user: CurrentUser) -> HTMLResponse:
    return templates.TemplateResponse(request, "profile.html", {"user": user})


@router.get("/api-example", response_class=HTMLResponse)
async def api_example(
    request: Request, session: CurrentSession, token: CurrentAccessToken
) -> HTMLResponse:
    """Calls an API on the user's behalf with their access token (refreshed when due).

    The API here is the provider's UserInfo endpoint; yours is called the same way:
    `Authorization: Bearer {token.token}`.
    """
    claims = await get_auth(request).client.userinfo(token.token, sub=session.sub)
    context = {"user": session.user, "claims": claims, "expires_at": token.expires_at}
    return templates.TemplateResponse(request, "api_example.html", context)


@router.get("/sessions", response_class=HTMLResponse)
async def sessions(request: Request, session: CurrentSession) -> HTMLResponse:
    """Where the user is logged in, with buttons that end sessions (see session_routes.py)."""
    found = await get_auth(request).sessions.list(request)
    listed = None
    if found is not None:
        listed = [describe(other, current=other.login_id == session.login_id) for other in found]
    return templates.TemplateResponse(
        request, "sessions.html", {"user": session.user, "sessions": listed}
    )
