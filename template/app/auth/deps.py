"""Dependencies for routes: the session, the logged-in user, the app's `Auth`.

@router.get("/orders")
async def orders(user: CurrentUser) -> list[Order]: ...
"""

from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyCookie

from app.auth import policy
from app.auth.core import Auth, get_auth
from app.auth.errors import CrossSiteRequest, Forbidden, NotAuthenticated
from app.auth.session_cookie import SESSION_COOKIE, request_state
from app.auth.sessions import Session

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
        # From the scope, not `request.url` (which fails on a query that is not UTF-8).
        path = str(request.scope["path"])
        query = request.scope.get("query_string", b"").decode("utf-8", errors="replace")
        raise NotAuthenticated(login_redirect=f"{path}?{query}" if query else path)
    if not policy.authorize(session.user, request):
        raise Forbidden()
    return session


def require_same_origin(request: Request) -> None:
    """Refuse a state-changing request that a browser sent on behalf of another site.

    Browsers say where a request comes from (`Sec-Fetch-Site`, or else `Origin`); a
    request with neither comes from no browser page at all, so no other site sent it.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        if site != "same-origin":
            raise CrossSiteRequest()
        return
    origin = request.headers.get("origin")
    if origin is not None and origin.lower() != get_auth(request).settings.app_base_url.lower():
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
