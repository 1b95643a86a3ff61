"""Who may use a route: dependencies that read as English in the route's signature.

    from app.auth.authorization import require_roles, require_recent_login

    @router.get("/admin", dependencies=[Depends(require_roles("admin"))])
    async def admin() -> ...

    @router.post("/payouts")
    async def payout(session: Annotated[Session, Depends(require_recent_login(300))]) -> ...

Each returns the session. Anonymous browsers are sent to log in and other clients get
401; a logged-in user who is not allowed gets 403 (a page, or JSON). Roles and
permissions are the session user's `roles` and `permissions` (see `user.py`). For
bearer-token APIs see `api_tokens.py`.
"""

import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request

from app.auth.deps import SessionCookie, require_session
from app.auth.errors import Forbidden, NotAuthenticated
from app.auth.sessions import Session
from app.auth.urls import requested_path

SessionDependency = Callable[..., Awaitable[Session]]
# OpenID's name for "logged in with more than one factor" (PAPE); Auth0 uses it.
MULTI_FACTOR = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"


def require(
    predicate: Callable[[Session], bool], *, message: str = "Your account may not open this page."
) -> SessionDependency:
    """The session, if `predicate(session)` holds; 403 with `message` if not."""

    async def allowed_session(request: Request, _: SessionCookie) -> Session:
        session = await require_session(request)
        if not predicate(session):
            raise Forbidden(message)
        return session

    return allowed_session


def require_claims(**expected: Any) -> SessionDependency:
    """Users whose claims have these values: `require_claims(email_verified=True)`."""
    return require(
        lambda session: all(session.user.get(name) == value for name, value in expected.items())
    )


def require_roles(*roles: str) -> SessionDependency:
    """Users with every one of these roles."""
    return require(lambda session: _has_all(session.user.get("roles"), roles))


def require_permissions(*permissions: str) -> SessionDependency:
    """Users with every one of these permissions."""
    return require(lambda session: _has_all(session.user.get("permissions"), permissions))


def require_recent_login(max_age: int) -> SessionDependency:
    """Users who logged in (entered their credentials) at most `max_age` seconds ago; others
    log in again first (`max_age` is sent to the provider, and checked at the callback).
    Only the ID token's `auth_time` says when that was: without one (providers may leave
    it out unless `max_age` is asked for), the user logs in again too, since the session's
    start may have been a single sign-on that asked for no credentials."""

    async def recent_session(request: Request, _: SessionCookie) -> Session:
        session = await require_session(request)
        if session.auth_time is None or time.time() - session.auth_time > max_age:
            raise _log_in_again(request, {"max_age": str(max_age)})
        return session

    return recent_session


def require_acr(*values: str) -> SessionDependency:
    """Users who logged in with one of these authentication classes (`acr`), e.g.
    `require_acr(MULTI_FACTOR)`; others log in again, asking the provider for it."""

    async def strong_session(request: Request, _: SessionCookie) -> Session:
        session = await require_session(request)
        if session.acr not in values:
            raise _log_in_again(request, {"acr_values": " ".join(values)})
        return session

    return strong_session


def _has_all(granted: Any, wanted: tuple[str, ...]) -> bool:
    return isinstance(granted, list) and set(wanted) <= set(granted)


def _log_in_again(request: Request, params: dict[str, str]) -> NotAuthenticated:
    return NotAuthenticated(
        "This page needs a new login.",
        login_redirect=requested_path(request.scope),
        login_params=params,
    )
