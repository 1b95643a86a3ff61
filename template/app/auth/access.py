"""Access tokens for calling APIs on the user's behalf, refreshed when they run out.

A route that takes `token: CurrentAccessToken` gets a valid token for AUTH0_AUDIENCE
and sends it as `Authorization: Bearer {token.token}`. For another API, or more
scopes, make a dependency: `billing = access_token(audience="https://billing.example",
scope="read:invoices")` and take `token: Annotated[AccessToken, Depends(billing)]`.
Outside a dependency, `await get_access_token(request, audience=...)` does the same.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from app.auth.core import get_auth
from app.auth.deps import require_session
from app.auth.sessions import AccessToken


async def get_access_token(
    request: Request, *, audience: str | None = None, scope: str | None = None
) -> AccessToken:
    """The session's access token for `audience` (default AUTH0_AUDIENCE) and `scope`."""
    session = await require_session(request)
    auth = get_auth(request)
    return await auth.tokens.access_token(
        request, session, audience=audience or auth.settings.auth0_audience, scope=scope
    )


def access_token(
    *, audience: str | None = None, scope: str | None = None
) -> Callable[[Request], Awaitable[AccessToken]]:
    """A dependency giving an access token for another API or more scopes."""

    async def dependency(request: Request) -> AccessToken:
        return await get_access_token(request, audience=audience, scope=scope)

    return dependency


CurrentAccessToken = Annotated[AccessToken, Depends(access_token())]
