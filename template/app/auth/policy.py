"""Your app's auth policy: the decisions you are expected to change.

The protocol code elsewhere in `app/auth/` calls these functions; keeping your
edits here means template updates (security fixes) rarely touch the same lines.
"""

from typing import Any

from fastapi import Request

from app.auth.sessions import Session
from app.auth.tokens import TokenSet

# ID-token claims kept in the session (and returned by GET /auth/profile).
SESSION_CLAIMS = (
    "sub",
    "name",
    "given_name",
    "family_name",
    "nickname",
    "preferred_username",
    "email",
    "email_verified",
    "picture",
    "locale",
    "updated_at",
    "org_id",
    "org_name",
)
# The user's roles and permissions are kept too, as `roles` and `permissions`, from the
# claims named by AUTH_ROLES_CLAIM and AUTH_PERMISSIONS_CLAIM (see `user.py`).

# Query parameters of /auth/login passed on to the provider; all others are dropped.
# (`/auth/login?screen_hint=signup` opens Auth0's sign-up page, for example.)
LOGIN_PARAMS = (
    "screen_hint",
    "login_hint",
    "prompt",
    "ui_locales",
    "organization",
    "invitation",
    "connection",
    "max_age",  # a recent login: the provider asks for the password again if older
    "acr_values",  # a stronger login, e.g. with a second factor
)


def session_user(claims: dict[str, Any]) -> dict[str, Any]:
    """The user data kept in the session, from the validated ID token's claims."""
    return {name: claims[name] for name in SESSION_CLAIMS if name in claims}


async def on_login(request: Request, session: Session, tokens: TokenSet) -> Session:
    """Called at every login, before the session is stored: return the session to keep.

    Enrich it, e.g. with your own user id (kept in the session, shown by /auth/profile):
        user_id = await users.id_for(session.sub)          # your database
        return replace(session, user={**session.user, "user_id": user_id})
    or refuse the login with an error page: `raise LoginRefused("Your account is closed.")`
    (from app.auth.errors). Where the user goes next is `after_login`'s choice.
    """
    return session


def after_login(session: Session, return_to: str) -> str:
    """Where to send the user after a successful login (an app path; others become `/`)."""
    return return_to


def authorize(user: dict[str, Any], request: Request) -> bool:
    """Whether a logged-in user may use any protected route at all (False answers 403).

    For example, to require a verified email address everywhere:
        return user.get("email_verified") is True
    Per route, use the dependencies of `authorization.py` (`require_roles("admin")`, ...).
    """
    return True
