"""Dependencies for routes: the session, the logged-in user, the app's `Auth`.

@router.get("/orders")
async def orders(user: CurrentUser) -> list[Order]: ...
"""

from typing import Annotated, Any

from fastapi import Depends, Request

from app.auth import policy
from app.auth.core import Auth, get_auth
from app.auth.errors import Forbidden, NotAuthenticated
from app.auth.session_cookie import request_state
from app.auth.sessions import Session


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


async def require_user(request: Request) -> dict[str, Any]:
    """The logged-in user's claims (see `policy.SESSION_CLAIMS`)."""
    return (await require_session(request)).user


AuthDep = Annotated[Auth, Depends(get_auth)]
AuthComponents = AuthDep  # its name before v0.2; kept so code written for v0.1 still runs
OptionalSession = Annotated[Session | None, Depends(get_session)]
CurrentSession = Annotated[Session, Depends(require_session)]
CurrentUser = Annotated[dict[str, Any], Depends(require_user)]
