"""What the server-side stores share: an opaque session id in the cookie.

The cookie carries only a random 256-bit id. Stores key their records by a hash of
it, so a leaked database or Redis dump holds no usable cookie values, and the
records themselves are encrypted with SESSION_SECRET, so it holds no tokens either.
Each record is encrypted for its own key: a record copied over another is refused.
"""

import hashlib
import re
import secrets

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")


def new_id() -> str:
    return secrets.token_urlsafe(32)


def is_session_id(value: str) -> bool:
    """Whether `value` could be a session id (anything else is not looked up)."""
    return ID_PATTERN.fullmatch(value) is not None


def record_id(session_id: str) -> str:
    """The key a store files a session under: a hash of the cookie's id, never the id."""
    return hashlib.sha256(session_id.encode()).hexdigest()
