"""Example pages: a public home page and a protected profile page. Make them yours."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.auth import CurrentUser, OptionalSession
from app.templating import templates

router = APIRouter(tags=["pages"])


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, session: OptionalSession) -> HTMLResponse:
    user = session.user if session else None
    return templates.TemplateResponse(request, "index.html", {"user": user})


@router.get("/profile", response_class=HTMLResponse)
async def profile(request: Request, user: CurrentUser) -> HTMLResponse:
    return templates.TemplateResponse(request, "profile.html", {"user": user})
