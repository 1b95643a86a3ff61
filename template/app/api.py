"""Your app's JSON API, for clients that hold an access token. Make it yours.

Clients send `Authorization: Bearer <access token>`, a JWT the provider issued for
API_AUDIENCE (by default AUTH0_AUDIENCE); `require_scopes` checks it and what it grants
(see `app/auth/api_tokens.py`). Try it offline with the development provider: its
`provider.access_token(...)` (in tests) or `/token` (client credentials) issues one.
"""

from typing import Annotated

from fastapi import APIRouter, Depends

from app.auth import ApiToken, Caller, require_scopes, require_session_or_token

router = APIRouter(prefix="/api", tags=["api"])


@router.get("/orders")
async def orders(
    token: Annotated[ApiToken, Depends(require_scopes("read:orders"))],
) -> list[dict[str, str]]:
    """The caller's orders; needs a token with the `read:orders` scope (or permission)."""
    return [{"id": "1001", "customer": token.sub, "status": "shipped"}]


@router.get("/me")
async def me(caller: Annotated[Caller, Depends(require_session_or_token())]) -> dict[str, str]:
    """Who is calling: this app's logged-in user (session cookie) or a token's subject."""
    return {"sub": caller.sub, "by": "session" if caller.session else "token"}
