"""Where the auth routes live, and where a redirect may go after login or logout.

`AUTH_PREFIX` is the one place that says where the auth routes are mounted: change it
here (and in the provider's allowed callback and logout URLs) to move them.
"""

from collections.abc import Mapping
from ipaddress import ip_address
from urllib.parse import unquote, urlencode, urlsplit

AUTH_PREFIX = "/auth"
LOGIN_PATH = f"{AUTH_PREFIX}/login"
CALLBACK_PATH = f"{AUTH_PREFIX}/callback"
MAX_RETURN_TO_LENGTH = 2048


def safe_return_to(value: str | None) -> str:
    """`value` if it is a same-origin relative path, otherwise `/`.

    Rejects absolute and protocol-relative URLs (`https://evil`, `//evil`), backslash
    tricks (`/\\evil`), control characters, and all of these hidden behind one or more
    layers of percent-encoding.
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
    return bool(parts.scheme or parts.netloc)
