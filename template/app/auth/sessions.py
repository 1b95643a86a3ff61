"""The session: what we keep about a logged-in user, how long it lives, how it is encrypted.

A session ends after `SESSION_INACTIVITY_DURATION` seconds without a request (rolling
expiry), `SESSION_ABSOLUTE_DURATION` seconds after login, or when the provider's session
ends (the ID token's `session_expiry`), whichever comes first. These times live inside
the encrypted data, so a client cannot extend them.

Which request holds which session is the business of `session_cookie.py`; where
sessions are kept, of the stores in `stores/`.
"""

import secrets
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from app.auth.cookies import CookieCipher

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
    # Unix time at which the session ends whatever happens: the provider's session end
    # (`session_expiry` in the ID token), or what is left of a session carried over.
    expires_at: int | None = None
    user_agent: str = ""  # of the browser that logged in, shortened (GET /auth/sessions)
    revision: int = 0  # counts the changes of this login's session (not its renewals)
    # How the user authenticated at this login, as the ID token says (OIDC Core §2):
    # when (`auth_time`, Unix time), how strongly (`acr`) and by which methods (`amr`).
    auth_time: int | None = None
    acr: str | None = None
    amr: tuple[str, ...] = ()

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
        self,
        token: AccessToken,
        *,
        refresh_token: str | None,
        id_token: str | None,
        user: dict[str, Any] | None = None,
    ) -> "Session":
        """This session with a new access token (replacing the one for the same API and
        scopes) and, when the provider rotated them, a new refresh token and ID token
        (and the `user` kept from the new ID token's claims)."""
        same = (token.audience, token.scope)
        others = [t for t in self.access_tokens if (t.audience, t.scope) != same]
        return replace(
            self,
            access_tokens=(token, *others[: MAX_ACCESS_TOKENS - 1]),
            refresh_token=refresh_token or self.refresh_token,
            id_token=id_token or self.id_token,
            user=user or self.user,
        )

    def to_payload(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> "Session | None":
        """Rebuild a session from stored data; None when the data has another shape."""
        try:
            tokens = tuple(AccessToken(**token) for token in payload["access_tokens"])
            amr = tuple(payload.get("amr", ()))
            session = cls(**{**payload, "access_tokens": tokens, "amr": amr})
        except (TypeError, KeyError):
            return None
        valid = (
            isinstance(session.user, dict)
            and isinstance(session.user.get("sub"), str)
            and isinstance(session.id_token, str)
            and isinstance(session.login_id, str)
            and type(session.created_at) in (int, float)
            and type(session.touched_at) is int
            and (session.expires_at is None or type(session.expires_at) is int)
            and isinstance(session.user_agent, str)
            and type(session.revision) is int
            and (session.auth_time is None or type(session.auth_time) is int)
            and (session.acr is None or isinstance(session.acr, str))
            and all(isinstance(method, str) for method in session.amr)
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
        return min(session.touched_at + self.inactivity, self.absolute_end(session))

    def absolute_end(self, session: Session) -> int:
        """When the session ends however active it is."""
        end = int(session.created_at + self.absolute)
        return end if session.expires_at is None else min(end, session.expires_at)

    def needs_touch(self, session: Session, now: int) -> bool:
        return now - session.touched_at >= self.touch_interval

    def touched(self, session: Session, now: int) -> Session:
        return replace(session, touched_at=now)


class SessionCodec:
    """Encrypts sessions for storage (in a cookie or a server-side record) and back.

    A server-side record is encrypted with the id it is filed under (`bound_to`), and
    decrypting checks it: a record copied over another one's is refused, not read as
    the other session.
    """

    def __init__(self, secrets: Sequence[str], *, cache_size: int = 10_000) -> None:
        self._cipher = CookieCipher(secrets, "session")
        self._cache_size = cache_size
        # Decrypting is the costliest part of reading a session, and an authenticated
        # ciphertext always holds the same session: remember recently seen ones.
        # Sessions are immutable; expiry is still checked on every request.
        # Keyed by the value's end (the JWE authentication tag): hashing 22 characters
        # is cheaper than hashing a whole cookie; the whole value is still compared.
        self._decoded: dict[str, tuple[str, str, Session]] = {}

    def encode(self, session: Session, *, bound_to: str = "") -> str:
        payload = session.to_payload()
        if bound_to:
            payload[BINDING] = bound_to
        return self._cipher.encrypt(payload)

    def decode(self, value: str, *, bound_to: str = "") -> Session | None:
        """The session, or None for anything we did not encrypt for `bound_to` (never raises)."""
        tag = value[-22:]
        cached = self._decoded.get(tag)
        if cached is not None and cached[0] == value:
            return cached[2] if cached[1] == bound_to else None
        payload = self._cipher.decrypt(value)
        if payload is None or payload.pop(BINDING, "") != bound_to:
            return None
        session = Session.from_payload(payload)
        if session is not None and self._cache_size:
            if len(self._decoded) >= self._cache_size:
                del self._decoded[next(iter(self._decoded))]
            self._decoded[tag] = (value, bound_to, session)
        return session


BINDING = "bound_to"  # the payload member naming the record a session was encrypted for


def now() -> int:
    return int(time.time())
