"""OpenID Connect login for this app. Import what routes need from here:

from app.auth import CurrentUser, OptionalSession
"""

from app.auth.access import CurrentAccessToken, access_token, get_access_token
from app.auth.api_token_checks import ApiToken
from app.auth.api_tokens import Caller, CurrentApiToken, require_scopes, require_session_or_token
from app.auth.authorization import (
    require,
    require_acr,
    require_claims,
    require_permissions,
    require_recent_login,
    require_roles,
)
from app.auth.core import Auth, get_auth
from app.auth.deps import (
    AuthComponents,
    AuthDep,
    CurrentSession,
    CurrentUser,
    OptionalSession,
    require_same_origin,
)
from app.auth.errors import AuthError, Forbidden, NotAuthenticated
from app.auth.install import install_auth
from app.auth.logout_notice import JustLoggedOut
from app.auth.sessions import AccessToken, Session
from app.auth.silent_login import TrySilentLogin

__all__ = [
    "AccessToken",
    "ApiToken",
    "Auth",
    "AuthComponents",
    "AuthDep",
    "AuthError",
    "Caller",
    "CurrentAccessToken",
    "CurrentApiToken",
    "CurrentSession",
    "CurrentUser",
    "Forbidden",
    "JustLoggedOut",
    "NotAuthenticated",
    "OptionalSession",
    "Session",
    "TrySilentLogin",
    "access_token",
    "get_access_token",
    "get_auth",
    "install_auth",
    "require",
    "require_acr",
    "require_claims",
    "require_permissions",
    "require_recent_login",
    "require_roles",
    "require_same_origin",
    "require_scopes",
    "require_session_or_token",
]
