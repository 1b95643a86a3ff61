"""OpenID Connect login for this app. Import what routes need from here:

from app.auth import CurrentUser, OptionalSession
"""

from app.auth.components import Auth
from app.auth.deps import CurrentSession, CurrentUser, OptionalSession
from app.auth.errors import AuthError
from app.auth.sessions import Session
from app.auth.setup import install_auth

__all__ = [
    "Auth",
    "AuthError",
    "CurrentSession",
    "CurrentUser",
    "OptionalSession",
    "Session",
    "install_auth",
]
