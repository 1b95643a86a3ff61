"""The session: what we keep about a logged-in user, how long it lives, and where it is stored.

A session ends after `SESSION_INACTIVITY_DURATION` seconds without a request (rolling
expiry) and `SESSION_ABSOLUTE_DURATION` seconds after login, whichever comes first.
Both times live inside the encrypted data, so a client cannot extend them.
"""

import secrets
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

from fastapi import Request
from fastapi.responses import Response

from app.auth.cookies import CookieCipher

# Per-request auth state lives in the ASGI scope under this key (see middleware.py).
SCOPE_KEY = "app.auth"


MAX_ACCESS_TOKENS = 8  # per session: one per API (audience) and scope set asked for


@dataclass(frozen=True, slots=True)
class AccessToken:
    """An access token for one API (`audience`) with some scopes."""

    token: str
    expires_at: int | None  # Unix time; None when the provider did not say
    scope: str | None
    audience: str | None  # None: no particular API (e.g. the provider's userinfo)

    def covers(self, audience: str | None, scope: str | None) -> bool:
        granted = set((self.scope or "").split())
        return self.audience == audience and set((scope or "").split()) <= granted

    def valid_for(self, seconds: int) -> bool:
        return self.expires_at is None or self.expires_at - seconds > time.time()


@dataclass(frozen=True, slots=True)
class Session:
    user: dict[str, Any]  # the claims kept by `policy.session_user`; always has "sub"
    id_token: str
    refresh_token: str | None
    access_tokens: tuple[AccessToken, ...]  # one per API and set of scopes asked for
    sid: str | None  # the provider's session id, for back-channel logout
    login_id: str  # random id of this login, to end just this session
    created_at: float  # Unix time of the login, sub-second (orders logins and logouts)
    touched_at: int  # Unix time of the last renewal (rolling expiry)

    @classmethod
    def start(cls, user: dict[str, Any], **tokens: Any) -> "Session":
        """A new session, as created at login."""
        started = time.time()
        return cls(
            user=user,
            login_id=secrets.token_urlsafe(16),
            created_at=started,
            touched_at=int(started),
            **tokens,
        )

    @property
    def sub(self) -> str:
        return str(self.user["sub"])

    def access_token(self, audience: str | None, scope: str | None = None) -> AccessToken | None:
        """The stored token for that API and those scopes, valid or not."""
        return next((t for t in self.access_tokens if t.covers(audience, scope)), None)

    def refreshed(
        self, token: AccessToken, *, refresh_token: str | None, id_token: str | None
    ) -> "Session":
        """This session with a new access token (replacing the one for the same API and
        scopes) and, when the provider rotated them, a new refresh token and ID token."""
        same = (token.audience, token.scope)
        others = [t for t in self.access_tokens if (t.audience, t.scope) != same]
        return replace(
            self,
            access_tokens=(token, *others[: MAX_ACCESS_TOKENS - 1]),
            refresh_token=refresh_token or self.refresh_token,
            id_token=id_token or self.id_token,
        )

    def to_payload(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> "Session | None":
        """Rebuild a session from stored data; None when the data has another shape."""
        try:
            tokens = tuple(AccessToken(**token) for token in payload["access_tokens"])
            session = cls(**{**payload, "access_tokens": tokens})
        except (TypeError, KeyError):
            return None
        valid = (
            isinstance(session.user, dict)
            and isinstance(session.user.get("sub"), str)
            and isinstance(session.id_token, str)
            and isinstance(session.login_id, str)
            and type(session.created_at) in (int, float)
            and type(session.touched_at) is int
        )
        return session if valid else None


@dataclass(frozen=True, slots=True)
class SessionLifetime:
    inactivity: int
    absolute: int

    @property
    def touch_interval(self) -> int:
        """How stale `touched_at` may get before it is renewed (not on every request)."""
        return min(300, self.inactivity // 10)

    def is_expired(self, session: Session, now: int) -> bool:
        return now >= self.ends_at(session)

    def ends_at(self, session: Session) -> int:
        return int(min(session.touched_at + self.inactivity, session.created_at + self.absolute))

    def absolute_end(self, session: Session) -> int:
        return int(session.created_at + self.absolute)

    def needs_touch(self, session: Session, now: int) -> bool:
        return now - session.touched_at >= self.touch_interval

    def touched(self, session: Session, now: int) -> Session:
        return replace(session, touched_at=now)


class SessionCodec:
    """Encrypts sessions for storage (in a cookie or a server-side record) and back."""

    CACHE_SIZE = 1024

    def __init__(self, secrets: Sequence[str]) -> None:
        self._cipher = CookieCipher(secrets, "session")
        # Decrypting is the costliest part of reading a session, and an authenticated
        # ciphertext always holds the same session: remember recently seen ones.
        # Sessions are immutable; expiry is still checked on every request.
        # Keyed by the value's end (the JWE authentication tag): hashing 22 characters
        # is cheaper than hashing a whole cookie; the whole value is still compared.
        self._decoded: dict[str, tuple[str, Session]] = {}

    def encode(self, session: Session) -> str:
        return self._cipher.encrypt(session.to_payload())

    def decode(self, value: str) -> Session | None:
        """The session, or None for anything we did not encrypt (never raises)."""
        tag = value[-22:]
        cached = self._decoded.get(tag)
        if cached is not None and cached[0] == value:
            return cached[1]
        payload = self._cipher.decrypt(value)
        session = Session.from_payload(payload) if payload is not None else None
        if session is not None:
            if len(self._decoded) >= self.CACHE_SIZE:
                del self._decoded[next(iter(self._decoded))]
            self._decoded[tag] = (value, session)
        return session


class RequestAuthState:
    """What the auth code did during one request; the middleware applies it to the response."""

    __slots__ = ("deferred_headers", "loaded", "session", "stored")

    def __init__(self) -> None:
        self.loaded = False
        self.session: Session | None = None
        self.stored: str | None = None  # the session's record as read (server-side stores)
        self.deferred_headers: list[tuple[bytes, bytes]] = []


def request_state(request: Request) -> RequestAuthState:
    state = request.scope.get(SCOPE_KEY)
    if state is None:
        state = request.scope[SCOPE_KEY] = RequestAuthState()
    return state


class SessionStore(Protocol):
    """Where sessions live. The app uses exactly one store, chosen when it was generated."""

    async def load(self, request: Request) -> Session | None:
        """The request's valid session, or None (missing, unreadable, expired)."""

    async def save(self, request: Request, response: Response, session: Session) -> None:
        """Store the session and attach whatever the browser must keep to the response."""

    async def touch(self, request: Request, session: Session) -> None:
        """Extend the rolling expiry (from any request; the response is not at hand)."""

    async def update(self, request: Request, session: Session) -> None:
        """Replace the request's session by `session` (new tokens), unless it ended meanwhile."""

    def refresh_lock(self, request: Request) -> AbstractAsyncContextManager[None]:
        """Held while the request's session refreshes its tokens: across all app
        instances for server-side stores (the refresh token may be used only once)."""

    async def delete(self, request: Request, response: Response) -> None:
        """End the request's session: also a copy of its cookie must not work afterwards."""

    async def end_sessions(self, *, sub: str | None = None, sid: str | None = None) -> int | None:
        """End every session of user `sub`, of provider session `sid`, or matching both.

        Returns how many ended, when the store can tell.
        """

    async def claim_logout_token(self, jti: str, *, expires_at: int) -> bool:
        """Remember a logout token's id until `expires_at`; False when it was seen before."""

    async def release_logout_token(self, jti: str) -> None:
        """Forget a claimed logout token (its logout failed and may be retried)."""

    async def aclose(self) -> None:
        """Release connections when the app stops."""


def now() -> int:
    return int(time.time())
