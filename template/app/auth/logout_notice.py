"""After a logout the next page can say so: `/auth/logout` leaves a short-lived cookie
(the provider's logout page comes in between), and the `JustLoggedOut` dependency reads
it once:

    @router.get("/")
    async def home(request: Request, logged_out: JustLoggedOut) -> ...  # bool
"""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import Response

from app.auth.cookies import CookieScope
from app.auth.core import get_auth
from app.auth.session_cookie import request_state

LOGGED_OUT_COOKIE = "app_logged_out"
NOTICE_LIFETIME = 600  # seconds: time enough for the provider's logout page


def leave_notice(response: Response, cookies: CookieScope) -> None:
    response.set_cookie(
        LOGGED_OUT_COOKIE,
        "1",
        max_age=NOTICE_LIFETIME,
        path=cookies.path(),
        secure=cookies.secure,
        httponly=True,
        samesite="lax",
    )


async def just_logged_out(request: Request) -> bool:
    """Whether this browser logged out just before; true once (the cookie goes)."""
    if LOGGED_OUT_COOKIE not in request.cookies:
        return False
    cookies = get_auth(request).settings.cookie_scope
    removal = Response()
    removal.delete_cookie(
        LOGGED_OUT_COOKIE, path=cookies.path(), secure=cookies.secure, httponly=True
    )
    request_state(request).cookies[LOGGED_OUT_COOKIE] = removal.headers["set-cookie"].encode()
    return True


JustLoggedOut = Annotated[bool, Depends(just_logged_out)]
