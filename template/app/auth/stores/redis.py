"""Sessions in Redis: one encrypted record per session, expiring by itself.

Keys (all under REDIS_KEY_PREFIX):
    session:<record id>   the encrypted session; its TTL is the session's remaining life
    sub:<sub>             set of record ids of that user's sessions
    sid:<sid>             set of record ids created from that provider session
    ended-sid:<sid>       the provider ended that provider session (back-channel logout):
                          a login from it that finishes later is refused
    lock:<record id>      held while one request changes the session's tokens
    jti:<jti>             a logout token already used (refused if replayed)

In a Redis Cluster the record id is hash-tagged (`session:{<record id>}`, `lock:{...}`),
so that a session's record and lock are on one node for the script that uses both; other
commands use one key each, so REDIS_URL may name one server, a sentinel set or a cluster
(see redis_client.py).

The index sets let back-channel logout end "all sessions of this user" or "of this
provider session" without scanning keys; ended sessions leave them, and a login
prunes its user's set of sessions that expired. Records read are kept in memory for as
long as Redis says they are unchanged (redis_cache.py), so most reads need no round trip.
"""

import asyncio
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings
from redis.exceptions import RedisError

from app.auth.errors import StoreUnavailable
from app.auth.sessions import Session, SessionCodec, SessionLifetime, now
from app.auth.stores.base import LostLock, Stored
from app.auth.stores.redis_cache import TrackedCache
from app.auth.stores.redis_client import (
    RedisClient,
    RedisLogoutTokens,
    check_redis_url,
    close,
    connect,
    get_many,
    in_slot,
)
from app.auth.stores.server import is_session_id, new_id, record_id

if TYPE_CHECKING:
    from app.auth.settings import AuthSettings

logger = logging.getLogger("app.auth")

# Replace a record only if it is still the one read, and (with a fence token) only while
# the writer still holds the session's lock: 1 written, 0 changed meanwhile, -1 lock lost.
REPLACE_IF_UNCHANGED = """
if ARGV[4] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[4] then return -1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
    return 1
end
return 0
"""
DELETE_IF_OWNED = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class StoreSettings(BaseSettings):
    """The Redis store's settings (part of `AuthSettings`)."""

    # Where sessions live: one server, a sentinel set or a cluster (redis_client.py).
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_key_prefix: str = "auth:"
    # Seconds to wait for Redis before answering 503.
    redis_timeout: float = Field(default=2.0, gt=0, le=60)
    # Connections to Redis per app process; more concurrent requests wait for one.
    redis_max_connections: int = Field(default=100, gt=0)
    # Sessions kept in memory per app process, dropped the moment Redis announces a
    # change (see app/auth/stores/redis_cache.py); 0 reads Redis on every request.
    redis_cache_size: int = Field(default=10_000, ge=0)

    _check_url = field_validator("redis_url")(check_redis_url)


class RedisSessionStore:
    def __init__(
        self,
        redis: RedisClient,
        cache: TrackedCache[Stored],
        codec: SessionCodec,
        lifetime: SessionLifetime,
        *,
        prefix: str,
    ) -> None:
        self.lifetime = lifetime
        self.logout_tokens = RedisLogoutTokens(redis, prefix=prefix)
        self._redis = redis
        self._cache = cache
        self._codec = codec
        self._prefix = prefix
        self._replace = redis.register_script(REPLACE_IF_UNCHANGED)
        self._unlock = redis.register_script(DELETE_IF_OWNED)

    def _key(self, record: str) -> str:
        return f"{self._prefix}session:{in_slot(self._redis, record)}"

    def _lock_key(self, record: str) -> str:
        return f"{self._prefix}lock:{in_slot(self._redis, record)}"

    def _index_keys(self, session: Session) -> list[str]:
        keys = [f"{self._prefix}sub:{session.sub}"]
        if session.sid:
            keys.append(f"{self._prefix}sid:{session.sid}")
        return keys

    async def read(self, key: str) -> Stored | None:
        if not is_session_id(key):
            return None
        record = record_id(key)
        return self._cache.get(self._key(record)) or await self._read(key, record)

    async def _read(self, key: str, record: str) -> Stored | None:
        """The session from Redis (kept in the cache when it may be)."""
        version = self._cache.version
        async with _reachable():
            value = await self._redis.get(self._key(record))
        if value is None:
            return None
        data = _text(value)
        session = self._codec.decode(data, bound_to=record)
        if session is None:
            return None
        stored = Stored(key, session, data)
        self._cache.put(self._key(record), stored, version)
        return stored

    async def create(self, session: Session) -> Stored | None:
        key = new_id()
        record = record_id(key)
        data = self._codec.encode(session, bound_to=record)
        async with _reachable():
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.set(self._key(record), data, ex=self._ttl(session))
                for index_key in self._index_keys(session):
                    pipe.sadd(index_key, record)
                    pipe.expire(index_key, self.lifetime.absolute)
                await pipe.execute()
            # Only once the record is in the indexes: a back-channel logout marks the
            # provider session ended before it reads the indexes, so it sees the record
            # or this sees its mark.
            if session.sid and await self._redis.exists(f"{self._prefix}ended-sid:{session.sid}"):
                await self.delete(key, session)
                return None
            await self._prune(f"{self._prefix}sub:{session.sub}")
        return Stored(key, session, data)

    async def _prune(self, index_key: str) -> None:
        """Drop the records that expired from a user's set of sessions."""
        members = [_text(member) for member in await self._redis.smembers(index_key)]
        if len(members) < 2:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for member in members:
                pipe.exists(self._key(member))
            found = await pipe.execute()
        dead = [member for member, exists in zip(members, found, strict=True) if not exists]
        if dead:
            await self._redis.srem(index_key, *dead)

    async def replace(self, old: Stored, session: Session, *, fence: str = "") -> Stored | None:
        record = record_id(old.key)
        data = self._codec.encode(session, bound_to=record)
        keys = [self._key(record), self._lock_key(record)]
        self._cache.forget(keys[0])
        async with _reachable():
            # Only over the very record that was read: a logout (record gone) or a change
            # by another request (record changed) that happened meanwhile wins.
            done = await self._replace(
                keys=keys, args=[old.version, data, self._ttl(session), fence]
            )
        if done == -1:
            raise LostLock()
        return Stored(old.key, session, data) if done else None

    def _ttl(self, session: Session) -> int:
        return max(self.lifetime.ends_at(session) - now(), 1)

    async def delete(self, key: str, session: Session | None) -> None:
        if not is_session_id(key):
            return
        record = record_id(key)
        self._cache.forget(self._key(record))
        if session is None:
            stored = await self._read(key, record)
            session = stored.session if stored else None
        async with _reachable(), self._redis.pipeline(transaction=False) as pipe:
            pipe.delete(self._key(record))
            for index_key in self._index_keys(session) if session else ():
                pipe.srem(index_key, record)
            await pipe.execute()

    @asynccontextmanager
    async def lock(self, key: str, session: Session, *, ttl: float) -> AsyncIterator[str]:
        record = record_id(key)
        lock_key, token = self._lock_key(record), secrets.token_hex(8)
        deadline = time.monotonic() + ttl
        async with _reachable():
            while not await self._redis.set(lock_key, token, nx=True, px=math.ceil(ttl * 1000)):
                if time.monotonic() > deadline:
                    raise StoreUnavailable("Another request is changing this session; try again.")
                await asyncio.sleep(0.05)
        # The holder reads the session again: from Redis, never from memory, so that it
        # sees the tokens of a change that another instance finished just before.
        self._cache.forget(self._key(record))
        try:
            yield token
        finally:
            async with _reachable():
                await self._unlock(keys=[lock_key], args=[token])

    async def end_sessions(self, *, sub: str | None = None, sid: str | None = None) -> int:
        """End every session of `sub`, of provider session `sid`, or both; return how many."""
        index_keys = [
            f"{self._prefix}{kind}:{value}" for kind, value in (("sub", sub), ("sid", sid)) if value
        ]
        if not index_keys:
            return 0
        async with _reachable():
            if sid:
                ended = f"{self._prefix}ended-sid:{sid}"
                await self._redis.set(ended, 1, ex=self.lifetime.absolute)
            async with self._redis.pipeline(transaction=False) as pipe:
                for index_key in index_keys:
                    pipe.smembers(index_key)
                members = [{_text(record) for record in found} for found in await pipe.execute()]
            return await self._end(sorted(set.intersection(*members)), index_keys)

    async def _end(self, records: Sequence[str], index_keys: Sequence[str]) -> int:
        if not records:
            return 0
        keys = [self._key(record) for record in records]
        self._cache.forget(*keys)
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:  # one by one: in a cluster they are on different nodes
                pipe.delete(key)
            for index_key in index_keys:
                pipe.srem(index_key, *records)
            deleted = (await pipe.execute())[: len(keys)]
        return sum(deleted)

    async def end_login(self, sub: str, login_id: str) -> bool:
        for record, session in await self._sessions_of(sub):
            if session.login_id == login_id:
                async with _reachable():
                    return bool(await self._end([record], self._index_keys(session)))
        return False

    async def list_sessions(self, sub: str) -> Sequence[Session]:
        return [session for _, session in await self._sessions_of(sub)]

    async def _sessions_of(self, sub: str) -> list[tuple[str, Session]]:
        index_key = f"{self._prefix}sub:{sub}"
        async with _reachable():
            records = sorted(_text(member) for member in await self._redis.smembers(index_key))
            values = await get_many(self._redis, [self._key(r) for r in records])
            dead = [record for record, value in zip(records, values, strict=True) if not value]
            if dead:
                await self._redis.srem(index_key, *dead)
        found = []
        for record, value in zip(records, values, strict=True):
            session = self._codec.decode(_text(value), bound_to=record) if value else None
            if session is not None and session.sub == sub:
                found.append((record, session))
        return found

    async def open(self) -> None:
        pass  # Redis is reached when first needed

    async def aclose(self) -> None:
        await self._cache.aclose()
        await close(self._redis)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@asynccontextmanager
async def _reachable() -> AsyncIterator[None]:
    try:
        yield
    except (RedisError, OSError) as exc:
        logger.warning("auth.store_unavailable store=redis error=%s", type(exc).__name__)
        raise StoreUnavailable() from None


def build_store(settings: "AuthSettings", lifetime: SessionLifetime) -> RedisSessionStore:
    cache: TrackedCache[Stored] = TrackedCache(
        settings.redis_url,
        f"{settings.redis_key_prefix}session:",
        name="session-cache",
        size=settings.redis_cache_size,  # each about 6 KB: the record and its session
        timeout=settings.redis_timeout,
    )
    return RedisSessionStore(
        connect(settings.redis_url, settings),
        cache,
        SessionCodec(settings.session_secrets, cache_size=settings.redis_cache_size),
        lifetime,
        prefix=settings.redis_key_prefix,
    )
