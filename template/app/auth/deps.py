"""Dependencies for routes: the session, the logged-in user, the app's `Auth`.

@router.get("/orders")
async def orders(user: CurrentUser) -> list[Order]: ...
"""

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request, Security
from fastapi.responses import RedirectResponse, Response
from fastapi.security import APIKeyCookie
from fastapi.types import DecoratedCallable

from app.auth import policy
from app.auth.core import Auth, get_auth
from app.auth.errors import CrossSiteRequest, Forbidden, NotAuthenticated
from app.auth.session_cookie import SESSION_COOKIE, request_state
from app.auth.sessions import Session
from app.auth.urls import app_path, requested_path, route_path
from app.templating import templates

# Names the session cookie in the OpenAPI schema (/docs) of the routes that need one.
session_scheme = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, description="The session cookie set at login."
)
SessionCookie = Annotated[str | None, Security(session_scheme)]


async def get_session(request: Request) -> Session | None:
    """The request's session, or None. Read once per request, renewed when due."""
    state = request_state(request)
    if state.loaded:
        return state.session
    return await get_auth(request).sessions.current(request)


async def require_session(request: Request) -> Session:
    """The session; anonymous browsers are sent to log in, other clients get 401."""
    session = await get_session(request)
    if session is None:
        raise NotAuthenticated(login_redirect=requested_path(request.scope))
    if not policy.authorize(session.user, request):
        raise Forbidden()
    return session


def sent_by_this_app(request: Request, *, navigation: bool = False) -> bool:
    """Whether a browser sent this request from one of this app's pages.

    Browsers say where a request comes from (`Sec-Fetch-Site`, or else `Origin`, or for a
    navigation `Referer`); a request with none of them comes from no web page at all (curl,
    your scripts), so no other site sent it. A `navigation` (a GET that opens a page) may
    also come from the address bar or a bookmark (`Sec-Fetch-Site: none`).
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin" or (navigation and site == "none")
    app_origin = get_auth(request).settings.app_origin
    origin = request.headers.get("origin")
    if origin is not None:
        return origin.lower() == app_origin
    referer = request.headers.get("referer") if navigation else None
    if referer is not None:
        parts = urlsplit(referer)
        return f"{parts.scheme}://{parts.netloc}".lower() == app_origin
    return True


def browser_action(
    router: APIRouter, path: str
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """A route that starts at a link (GET) or a form (POST), answers with a redirect, and
    is left out of the API schema (no API client calls it). See `confirm_if_cross_site`."""
    return router.api_route(
        path,
        methods=["GET", "POST"],
        response_class=RedirectResponse,
        status_code=303,
        include_in_schema=False,
    )


def confirm_if_cross_site(request: Request, *, question: str, button: str) -> Response | None:
    """For a route that changes state on GET (it starts at a link) and POST: None when one of
    this app's pages sent the request. A GET from another site's page (a link, a redirect)
    gets a page that asks `question`, with a `button` that POSTs to the same URL; any other
    request from another site is refused (403)."""
    if request.method != "GET":
        require_same_origin(request)
        return None
    if sent_by_this_app(request, navigation=True):
        return None
    path = app_path(request.scope, route_path(request.scope))
    query = request.scope.get("query_string", b"").decode("latin-1")
    action = f"{path}?{query}" if query else path
    context = {"question": question, "button": button, "action": action}
    return templates.TemplateResponse(
        request, "confirm.html", context, headers={"Cache-Control": "no-store"}
    )


def require_same_origin(request: Request) -> None:
    """Refuse a state-changing request that a browser sent on behalf of another site."""
    if not sent_by_this_app(request):
        raise CrossSiteRequest()


async def require_user(request: Request) -> dict[str, Any]:
    """The logged-in user's claims (see `policy.SESSION_CLAIMS`)."""
    return (await require_session(request)).user


async def _optional_session(request: Request, _: SessionCookie) -> Session | None:
    return await get_session(request)


async def _current_session(request: Request, _: SessionCookie) -> Session:
    return await require_session(request)


async def _current_user(request: Request, _: SessionCookie) -> dict[str, Any]:
    return await require_user(request)


AuthDep = Annotated[Auth, Depends(get_auth)]
AuthComponents = AuthDep  # its name before v0.2; kept so code written for v0.1 still runs
OptionalSession = Annotated[Session | None, Depends(_optional_session)]
CurrentSession = Annotated[Session, Depends(_current_session)]
CurrentUser = Annotated[dict[str, Any], Depends(_current_user)]
