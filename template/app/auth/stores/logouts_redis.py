"""Logout records in Redis, shared by app instances on any number of machines (logouts.py).

Template-owned: the cache of what was read (redis_cache.py) is performance tuning you
are not expected to edit; template updates keep it current.

Keys (under REDIS_KEY_PREFIX): `logout:<kind>:<value>` for the records (logouts.py),
`lock:<name>` for the locks. In a Redis Cluster, a login's newest version and its lock
are written by one script, so they share a hash tag: `logout:newer:{login:<id>}` and
`lock:{login:<id>}` (one server or a sentinel set keeps the names without braces).
"""

import asyncio
import contextlib
import math
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.exceptions import RedisError

from app.auth.errors import StoreUnavailable
from app.auth.sessions import Session
from app.auth.stores.base import LostLock
from app.auth.stores.logouts import LOCK_POLL, NEWER, STARTED, applies, keys_of
from app.auth.stores.redis_cache import TrackedCache
from app.auth.stores.redis_client import RedisClient, close, get_many, in_slot, is_cluster

DELETE_IF_OWNED = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
SET_IF_LOCKED = """
if redis.call('GET', KEYS[2]) ~= ARGV[3] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""


class RedisLogoutRecords:
    """Records in Redis, shared by app instances on any number of machines.

    Every request checks them, so what was read (records, and that there is none) is
    kept in memory while Redis announces changes of these keys (see redis_cache.py):
    most checks need no round trip. In the cache, "" stands for "no record".
    """

    def __init__(self, redis: RedisClient, cache: TrackedCache[str], *, prefix: str) -> None:
        self._redis = redis
        self._cache = cache
        self._prefix = prefix
        self._unlock = redis.register_script(DELETE_IF_OWNED)
        self._set_if_locked = redis.register_script(SET_IF_LOCKED)

    async def check(self, session: Session, *, new: bool = False) -> tuple[bool, str | None]:
        kinds = [STARTED, *keys_of(session), (NEWER, session.login_id)]
        keys = [self._key(kind, value) for kind, value in kinds]
        values: list[str | None] = [self._cache.get(key) for key in keys]
        if None in values:
            version = self._cache.version
            try:
                found = await get_many(self._redis, keys)
            except RedisError:
                raise StoreUnavailable("Logout records cannot be read right now.") from None
            values = [value.decode() if isinstance(value, bytes) else value for value in found]
            for key, value in zip(keys, values, strict=True):
                self._cache.put(key, value or "", version)
        started, *records, newest = values
        if not started:  # lost (Redis restarted empty): from now on, or from a new login on
            started = await self._start(keys[0], at=session.created_at if new else None)
        if session.created_at < float(started):
            return True, None  # from before these records were started: they may be lost
        if any(
            value and applies(kind, float(value), session)
            for (kind, _), value in zip(kinds[1:-1], records, strict=True)
        ):
            return True, None
        revision, _, value = (newest or "0 ").partition(" ")
        return False, value if int(revision) > session.revision else None

    def _key(self, kind: str, value: str) -> str:
        if kind == NEWER and is_cluster(self._redis):  # see above
            value = in_slot(self._redis, f"login:{value}")
        return f"{self._prefix}logout:{kind}:{value}"

    @asynccontextmanager
    async def lock(self, name: str, *, ttl: float) -> AsyncIterator[str]:
        key, token = f"{self._prefix}lock:{in_slot(self._redis, name)}", secrets.token_hex(8)
        deadline = time.monotonic() + ttl
        try:
            while not await self._redis.set(key, token, nx=True, px=math.ceil(ttl * 1000)):
                if time.monotonic() > deadline:
                    raise StoreUnavailable("Another request is changing this session; try again.")
                await asyncio.sleep(LOCK_POLL)
        except RedisError:
            raise StoreUnavailable("Logout records cannot be written right now.") from None
        try:
            yield token
        finally:
            with contextlib.suppress(RedisError):
                await self._unlock(keys=[key], args=[token])

    async def record_newer(self, session: Session, value: str, *, until: int, fence: str) -> None:
        key = self._key(NEWER, session.login_id)
        lock = f"{self._prefix}lock:{in_slot(self._redis, f'login:{session.login_id}')}"
        self._cache.forget(key)
        ttl = max(until - int(time.time()), 1)
        try:
            done = await self._set_if_locked(
                keys=[key, lock], args=[f"{session.revision} {value}", ttl, fence]
            )
        except RedisError:
            raise StoreUnavailable("Logout records cannot be written right now.") from None
        if not done:
            raise LostLock()

    async def open(self) -> None:
        await self._start(self._key(*STARTED))

    async def _start(self, key: str, *, at: float | None = None) -> str:
        """Write down when the records were started (now or `at`, unless another instance
        did)."""
        self._cache.forget(key)
        try:
            await self._redis.set(key, at or time.time(), nx=True)
            started = await self._redis.get(key)
        except RedisError:
            raise StoreUnavailable("Logout records cannot be read right now.") from None
        return str(started or time.time())

    async def record(self, kind: str, value: str, *, until: int) -> None:
        ttl = max(until - int(time.time()), 1)
        key = self._key(kind, value)
        self._cache.forget(key)
        try:
            await self._redis.set(key, time.time(), ex=ttl)
        except RedisError:
            raise StoreUnavailable("Logout records cannot be written right now.") from None

    async def aclose(self) -> None:
        await self._cache.aclose()
        await close(self._redis)
