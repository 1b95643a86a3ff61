"""Every error the auth code raises, and the one place that turns them into responses.

    AuthError                   base class: catch this to handle any auth failure
    ├── NotAuthenticated        401: no valid session (browsers are sent to log in instead)
    │   └── SessionEnded        401: the provider refused to refresh the session's tokens
    ├── Forbidden               403: logged in, but not allowed (`authorization.py`)
    │   ├── LoginRefused        403: `policy.on_login` refused the login
    │   └── CrossSiteRequest    403: a state-changing request sent by another site
    ├── NotFound                404: no such session (or the store cannot list them)
    ├── InvalidRequest          400: missing, duplicated or oversized parameters
    │   ├── UnsupportedMediaType 415: a body in a format the route does not take
    │   └── LoginExpired        400: no login in progress for this `state`
    ├── LoginFailed             400: the provider answered the login with an `error`
    ├── InvalidToken            400: a token or token response failed validation
    ├── ProviderError           502: the provider sent something unusable
    │   ├── ProviderUnavailable 503: the provider could not be reached
    │   └── ProviderTimeout     504: the provider did not answer in time
    └── StoreUnavailable        503: the session store could not be reached

Messages are written for the person who sees the error page; they never contain
tokens, codes or secrets. Logs quote (`%r`) what came with a request, so that no request
can write a line of its own into them. Templates and JSON encoding escape whatever they quote.
"""

import logging
from collections.abc import Mapping

from fastapi import Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from app.auth.telemetry import count
from app.auth.urls import AUTH_PREFIX, LOGIN_PATH, app_path, login_url, route_path
from app.templating import templates

logger = logging.getLogger("app.auth")

# What to change when the provider refuses a login for a reason of configuration.
CONFIGURATION_HINTS = {
    "invalid_scope": (
        " It does not offer a scope the app asks for: change AUTH0_SCOPE (a provider"
        " without refresh tokens may refuse offline_access)."
    ),
    "unauthorized_client": (
        " The app's client may not log users in this way: allow the Authorization Code"
        " grant (and Refresh Token, for offline_access) in the client's settings at the"
        " login service."
    ),
    "invalid_client": (
        " It does not accept the app's client credentials: check AUTH0_CLIENT_ID and"
        " AUTH0_CLIENT_SECRET (or the private key)."
    ),
}


class AuthError(Exception):
    status_code = 400
    code = "auth_error"
    title = "Sign-in problem"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotAuthenticated(AuthError):
    status_code = 401
    code = "unauthorized"
    title = "Please log in"

    def __init__(
        self,
        message: str = "You need to log in.",
        *,
        login_redirect: str | None = None,
        login_params: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        # Where a browser should go after logging in; None answers 401 to everyone.
        self.login_redirect = login_redirect
        # What that login asks the provider for (e.g. `max_age` for a recent login).
        self.login_params = dict(login_params or {})


class SessionEnded(NotAuthenticated):
    code = "session_ended"
    title = "Your session has ended"

    def __init__(self) -> None:
        super().__init__("Your session has ended at the login service. Please log in again.")


class Forbidden(AuthError):
    status_code = 403
    code = "forbidden"
    title = "Access denied"

    def __init__(self, message: str = "Your account may not open this page.") -> None:
        super().__init__(message)


class LoginRefused(Forbidden):
    code = "login_refused"
    title = "Login refused"


class CrossSiteRequest(Forbidden):
    code = "cross_site_request"
    title = "Request refused"

    def __init__(self) -> None:
        super().__init__("This request came from another site. Please use this app's pages.")


class NotFound(AuthError):
    status_code = 404
    code = "not_found"
    title = "Not found"


class InvalidRequest(AuthError):
    code = "invalid_request"


class UnsupportedMediaType(InvalidRequest):
    status_code = 415
    code = "unsupported_media_type"


class LoginExpired(InvalidRequest):
    code = "login_expired"
    title = "Your login expired"


class WrongAddress(InvalidRequest):
    """A login started at another name of this machine than `APP_BASE_URL` says (localhost
    vs 127.0.0.1): its cookies would stay with that name and the login could not finish."""

    code = "wrong_address"
    title = "Open the app at its own address"

    def __init__(self, opened: str, configured: str, retry_url: str) -> None:
        super().__init__(
            f"This app's address is {configured} (APP_BASE_URL), but this page was opened at "
            f"{opened}. Browsers keep cookies apart for the two, so a login started here "
            f"cannot finish: use {configured} instead."
        )
        self.retry_url = retry_url


class LoginFailed(AuthError):
    code = "login_failed"
    title = "Login did not complete"


class InvalidToken(AuthError):
    code = "invalid_token"
    title = "Login could not be verified"


class ProviderError(AuthError):
    status_code = 502
    code = "bad_provider_response"
    title = "The login service answered incorrectly"


class ProviderUnavailable(ProviderError):
    status_code = 503
    code = "provider_unavailable"
    title = "The login service is unavailable"


class ProviderTimeout(ProviderError):
    status_code = 504
    code = "provider_timeout"
    title = "The login service did not answer in time"


class StoreUnavailable(AuthError):
    status_code = 503
    code = "session_store_unavailable"
    title = "Sessions are unavailable"

    def __init__(
        self, message: str = "Sessions cannot be read right now. Please try again shortly."
    ) -> None:
        super().__init__(message)


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


async def auth_error_handler(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, AuthError):  # pragma: no cover - registered for AuthError only
        raise exc
    if isinstance(exc, NotAuthenticated) and exc.login_redirect and wants_html(request):
        url = login_url(exc.login_redirect, exc.login_params)
        return RedirectResponse(app_path(request.scope, url), status_code=303)
    count("auth.errors", code=exc.code)
    if exc.status_code >= 500:
        logger.warning("auth.error code=%s path=%r: %r", exc.code, _path(request), exc.message)
    else:
        logger.info("auth.error code=%s path=%r", exc.code, _path(request))

    headers = {"Cache-Control": "no-store"}
    if wants_html(request):
        context = {
            "title": exc.title,
            "message": exc.message,
            "code": exc.code,
            "login_url": getattr(exc, "retry_url", None)
            or app_path(request.scope, login_url(_destination(request))),
        }
        return templates.TemplateResponse(
            request, "error.html", context, status_code=exc.status_code, headers=headers
        )
    body = {"error": exc.code, "error_description": exc.message}
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


def _destination(request: Request) -> str:
    """Where the user was going when the error happened (for "log in again")."""
    path = _path(request)
    if path == LOGIN_PATH:
        return request.query_params.get("returnTo") or "/"
    return "/" if path.startswith(f"{AUTH_PREFIX}/") else path


def _path(request: Request) -> str:
    # Not `request.url`: it decodes the raw query string and fails on invalid UTF-8.
    return route_path(request.scope)
