"""Silent login: log in users who already have a session at the provider, without a page.

`/auth/login?prompt=none` asks the provider to answer at once: with a login when the
user has a session there, with `login_required` (or a similar error) when not; then the
user lands back on `returnTo`, anonymous, instead of on an error page.

`TrySilentLogin` does that once per browser session for a page that works for everyone
but greets users it knows:

    @router.get("/")
    async def home(session: TrySilentLogin) -> ...   # Session | None
"""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import Response

from app.auth.cookies import CookieScope
from app.auth.deps import get_session
from app.auth.errors import NotAuthenticated, wants_html
from app.auth.sessions import Session
from app.auth.urls import requested_path

# Set (for the browser session) when a silent login starts, so it is tried only once.
SILENT_LOGIN_COOKIE = "app_silent_login"


async def try_silent_login(request: Request) -> Session | None:
    """The session; for a browser without one that has not tried yet, a silent login."""
    session = await get_session(request)
    if (
        session is None
        and request.method == "GET"
        and wants_html(request)
        and SILENT_LOGIN_COOKIE not in request.cookies
    ):
        raise NotAuthenticated(
            login_redirect=requested_path(request.scope), login_params={"prompt": "none"}
        )
    return session


def mark_tried(response: Response, cookies: CookieScope) -> None:
    """Remember, until the browser closes, that this browser tried a silent login."""
    response.set_cookie(
        SILENT_LOGIN_COOKIE,
        "1",
        path=cookies.path(),
        secure=cookies.secure,
        httponly=True,
        samesite="lax",
    )


TrySilentLogin = Annotated[Session | None, Depends(try_silent_login)]
