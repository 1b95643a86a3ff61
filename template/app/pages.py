"""Example pages: a public home page and a protected profile page. Make them yours."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.auth import CurrentAccessToken, CurrentSession, CurrentUser, OptionalSession, get_auth
from app.templating import templates

router = APIRouter(tags=["pages"])


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, session: OptionalSession) -> HTMLResponse:
    user = session.user if session else None
    return templates.TemplateResponse(request, "index.html", {"user": user})


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
