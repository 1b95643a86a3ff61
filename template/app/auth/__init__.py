"""OpenID Connect login for this app. Import what routes need from here:

from app.auth import CurrentUser, OptionalSession
"""

from app.auth.access import CurrentAccessToken, access_token, get_access_token
from app.auth.core import Auth, get_auth
from app.auth.deps import AuthComponents, AuthDep, CurrentSession, CurrentUser, OptionalSession
from app.auth.errors import AuthError, Forbidden, NotAuthenticated
from app.auth.install import install_auth
from app.auth.sessions import AccessToken, Session

__all__ = [
    "AccessToken",
    "Auth",
    "AuthComponents",
    "AuthDep",
    "AuthError",
    "CurrentAccessToken",
    "CurrentSession",
    "CurrentUser",
    "Forbidden",
    "NotAuthenticated",
    "OptionalSession",
    "Session",
    "access_token",
    "get_access_token",
    "get_auth",
    "install_auth",
]
