"""GET /auth/access-token: the session's access token, for a front end that calls APIs itself.

Mount this only when browser code must call an API directly. The safer default for
a backend-for-frontend (BFF) is to keep tokens on the server and call APIs from your
routes (see `app.auth.access`): a token handed to JavaScript can be stolen by any
script that runs on your pages (XSS), a session cookie (HttpOnly) cannot.
"""

from typing import Any

from fastapi import APIRouter, Request

from app.auth.access import get_access_token
from app.auth.deps import get_session
from app.auth.errors import NotAuthenticated
from app.auth.urls import AUTH_PREFIX

router = APIRouter(prefix=AUTH_PREFIX, tags=["auth"])


@router.get("/access-token")
async def access_token(request: Request) -> dict[str, Any]:
    """A valid access token for AUTH0_AUDIENCE (refreshed if needed); 401 without a session."""
    if await get_session(request) is None:
        raise NotAuthenticated()
    token = await get_access_token(request)
    return {"token": token.token, "expires_at": token.expires_at, "scope": token.scope}
