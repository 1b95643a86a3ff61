"""Where the auth routes live, and where a redirect may go after login or logout.

`AUTH_PREFIX` is the one place that says where the auth routes are mounted: `/auth`, or
the `AUTH_PREFIX` setting (environment or `.env`, e.g. `/account`), read once at import
because routes are declared then. Moving them means changing the provider's allowed
callback and logout URLs too.

Paths in this app's code (`/profile`, `LOGIN_PATH`) are paths of the app itself. When
`APP_BASE_URL` has a path (`https://example.com/portal`, behind a proxy that routes
`/portal/...` here), the app is served under that base path: `app_path()` turns an
app path into the one browsers use (`/portal/profile`), `route_path()` the reverse.
"""

import re
from collections.abc import Mapping, MutableMapping
from ipaddress import ip_address
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.requests import HTTPConnection
from starlette.responses import RedirectResponse

DEFAULT_AUTH_PREFIX = "/auth"
PREFIX_PATTERN = re.compile(r"(/[A-Za-z0-9._~-]+)+")


class _RoutePrefix(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    auth_prefix: str = DEFAULT_AUTH_PREFIX


def _auth_prefix() -> str:
    value = _RoutePrefix().auth_prefix.rstrip("/")
    # An invalid value is reported by the settings (AuthSettings.auth_prefix) at startup.
    return value if PREFIX_PATTERN.fullmatch(value) else DEFAULT_AUTH_PREFIX


AUTH_PREFIX = _auth_prefix()
LOGIN_PATH = f"{AUTH_PREFIX}/login"
CALLBACK_PATH = f"{AUTH_PREFIX}/callback"
MAX_RETURN_TO_LENGTH = 2048


def safe_return_to(value: str | None) -> str:
    """`value` if it is a same-origin relative path, otherwise `/`.

    Rejects absolute and protocol-relative URLs (`https://evil`, `//evil`), backslash
    tricks (`/\\evil`), control characters, dot segments (`/../elsewhere`), and all of
    these hidden behind one or more layers of percent-encoding.
    """
    if not value or len(value) > MAX_RETURN_TO_LENGTH:
        return "/"
    decoded, previous = value, None
    for _ in range(3):  # also catch double and triple encoding
        if _unsafe(decoded):
            return "/"
        previous, decoded = decoded, unquote(decoded)
        if decoded == previous:
            return value
    return "/"


def login_url(return_to: str, params: Mapping[str, str] | None = None) -> str:
    """The login route, returning to `return_to` afterwards (made safe), with login
    parameters for the provider (`{"max_age": "300"}`)."""
    target = safe_return_to(return_to)
    query = {**(params or {}), **({"returnTo": target} if target != "/" else {})}
    return f"{LOGIN_PATH}?{urlencode(query)}" if query else LOGIN_PATH


def app_path(scope: MutableMapping[str, Any], path: str) -> str:
    """`path` of this app (`/profile`) as browsers ask for it: under the base path that
    `APP_BASE_URL` may have (`/portal/profile`). Use it for every redirect and link."""
    return str(scope.get("root_path", "")) + path


def redirect_within(
    request: HTTPConnection, path: str | None, headers: Mapping[str, str] | None = None
) -> RedirectResponse:
    """A 303 to `path` of this app (`returnTo`, made safe), under the app's base path."""
    return RedirectResponse(
        app_path(request.scope, safe_return_to(path)), status_code=303, headers=headers
    )


def route_path(scope: MutableMapping[str, Any]) -> str:
    """The request's path in this app, without the base path (whether the proxy in front
    kept it in the request or took it off)."""
    path, root = str(scope["path"]), str(scope.get("root_path", ""))
    if root and path.startswith(f"{root}/"):
        return path[len(root) :]
    return path


def requested_path(scope: MutableMapping[str, Any]) -> str:
    """The app path and query this request asked for (where to return after a login).

    From the scope, not `request.url` (which fails on a query that is not UTF-8)."""
    path = route_path(scope)
    query = scope.get("query_string", b"").decode("utf-8", errors="replace")
    return f"{path}?{query}" if query else path


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine (where plain http:// is acceptable)."""
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def _unsafe(path: str) -> bool:
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        return True
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in path):
        return True
    parts = urlsplit(path)
    # Dot segments: `/portal/../elsewhere` would leave the app's base path for another
    # app on the same host (browsers resolve `%2e%2e` too; decoding catches that).
    # `/..;/` too: some servers behind the same proxy read it as a dot segment.
    dots = any(segment.split(";")[0] in (".", "..") for segment in parts.path.split("/"))
    return bool(parts.scheme or parts.netloc) or dots
