"""Sessions kept in an encrypted, chunked cookie; only logouts are recorded on the server.

The cookie's value is the session itself (encrypted), so it is also the session's key:
a change of the session is a new key. Logouts are written down in the logout records
(logouts.py) and every read checks them, so that a logout is final even for a copy of
the cookie.
"""

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import TYPE_CHECKING

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings

from app.auth.cookies import CHUNK_SIZE, MAX_CHUNKS
from app.auth.errors import ProviderError
from app.auth.sessions import Session, SessionCodec, SessionLifetime, now
from app.auth.stores.base import LogoutTokens, Stored
from app.auth.stores.logouts import LogoutRecords
from app.auth.stores.logouts_redis import RedisLogoutRecords
from app.auth.stores.logouts_sqlite import SqliteLogoutRecords
from app.auth.stores.redis_cache import TrackedCache
from app.auth.stores.redis_client import RedisLogoutTokens, check_redis_url, connect

if TYPE_CHECKING:
    from app.auth.settings import AuthSettings

MAX_VALUE_LENGTH = CHUNK_SIZE * MAX_CHUNKS  # what the browser keeps for us, at most


class StoreSettings(BaseSettings):
    """The cookie store's settings (part of `AuthSettings`)."""

    # Where logouts are recorded (so a copied cookie stops working): a SQLite file,
    # or Redis when REDIS_URL is set (needed when instances run on several machines):
    # one server, a sentinel set or a cluster (see app/auth/stores/redis_client.py).
    logout_records_path: str = "logout-records.db"
    redis_url: str | None = None
    redis_key_prefix: str = "auth:"
    redis_timeout: float = Field(default=2.0, gt=0, le=60)
    # Connections to Redis per app process; more concurrent requests wait for one.
    redis_max_connections: int = Field(default=100, gt=0)
    # Sessions whose logout records (or their absence) each app process keeps in memory,
    # dropped the moment Redis announces a change (app/auth/stores/redis_cache.py); 0:
    # always ask.
    redis_cache_size: int = Field(default=10_000, ge=0)

    _check_url = field_validator("redis_url")(check_redis_url)


class CookieSessionStore:
    def __init__(
        self,
        codec: SessionCodec,
        lifetime: SessionLifetime,
        logouts: LogoutRecords,
        logout_tokens: LogoutTokens,
    ) -> None:
        self.lifetime = lifetime
        self.logout_tokens = logout_tokens
        self.logouts = logouts
        self._codec = codec

    async def read(self, key: str) -> Stored | None:
        session = self._decode(key)
        if session is None:
            return None
        ended, newest = await self.logouts.check(session)
        if ended:
            return None
        newer = self._codec.decode(newest) if newest is not None else None
        if newer is None or newer.login_id != session.login_id:
            return Stored(key, session, key)
        # Another process changed this login's session since this cookie was written.
        touched = max(session.touched_at, newer.touched_at)
        return Stored(key, replace(newer, touched_at=touched), key, stale=True)

    def _decode(self, key: str) -> Session | None:
        return self._codec.decode(key) if len(key) <= MAX_VALUE_LENGTH else None

    async def create(self, session: Session) -> Stored | None:
        ended, _ = await self.logouts.check(session, new=True)
        return None if ended else self._encode(session)

    async def replace(self, old: Stored, session: Session, *, fence: str = "") -> Stored | None:
        # Nothing on the server to compare with; a logout recorded meanwhile still wins.
        ended, _ = await self.logouts.check(session)
        if ended:
            return None
        stored = self._encode(session)
        if fence:  # a change under the lock: the other processes use it from now on
            until = self.lifetime.absolute_end(session)
            await self.logouts.record_newer(stored.session, stored.key, until=until, fence=fence)
        return stored

    def _encode(self, session: Session) -> Stored:
        """The session as its cookie value. When access tokens for many APIs would not fit
        in the cookies a browser keeps, the oldest ones are left out (a refresh gets them
        again when needed)."""
        value = self._codec.encode(session)
        while len(value) > MAX_VALUE_LENGTH and len(session.access_tokens) > 1:
            session = replace(session, access_tokens=session.access_tokens[:-1])
            value = self._codec.encode(session)
        if len(value) > MAX_VALUE_LENGTH:  # large claims kept (policy.py) or huge tokens
            raise ProviderError("This login is too large to keep in the session cookie.")
        return Stored(value, session, value)

    async def delete(self, key: str, session: Session | None) -> None:
        session = session or self._decode(key)
        if session is not None:  # so that a copy of the cookie stops working too
            until = self.lifetime.absolute_end(session)
            await self.logouts.record("login", session.login_id, until=until)

    def lock(self, key: str, session: Session, *, ttl: float) -> AbstractAsyncContextManager[str]:
        # Per login, in the logout records: shared by the processes that share them.
        return self.logouts.lock(f"login:{session.login_id}", ttl=ttl)

    async def end_sessions(self, *, sub: str | None = None, sid: str | None = None) -> None:
        # A provider session belongs to one user: the sid alone picks the sessions.
        until = now() + self.lifetime.absolute
        if sid:
            await self.logouts.record("sid", sid, until=until)
        elif sub:
            await self.logouts.record("sub", sub, until=until)

    async def end_login(self, sub: str, login_id: str) -> bool:
        await self.logouts.record("login", login_id, until=now() + self.lifetime.absolute)
        return True

    async def list_sessions(self, sub: str) -> Sequence[Session] | None:
        return None  # each session lives in its browser only

    async def open(self) -> None:
        await self.logouts.open()

    async def aclose(self) -> None:
        await self.logouts.aclose()


def build_store(settings: "AuthSettings", lifetime: SessionLifetime) -> CookieSessionStore:
    logouts: LogoutRecords
    tokens: LogoutTokens
    if settings.redis_url:
        redis = connect(settings.redis_url, settings)
        cache: TrackedCache[str] = TrackedCache(
            settings.redis_url,
            f"{settings.redis_key_prefix}logout:",
            name="logout-cache",
            # Four keys a session (its login, user, provider session, newest version),
            # most of them absent: what the cache keeps of those is a few bytes.
            size=4 * settings.redis_cache_size,
            timeout=settings.redis_timeout,
        )
        logouts = RedisLogoutRecords(redis, cache, prefix=settings.redis_key_prefix)
        tokens = RedisLogoutTokens(redis, prefix=settings.redis_key_prefix)
    else:
        logouts = tokens = SqliteLogoutRecords(settings.logout_records_path)
    codec = SessionCodec(settings.session_secrets)
    return CookieSessionStore(codec, lifetime, logouts, tokens)
