"""The Redis client, configured once for the whole app; used logout tokens kept in Redis."""

import time
from typing import TYPE_CHECKING

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from app.auth.errors import StoreUnavailable

if TYPE_CHECKING:
    from app.auth.settings import AuthSettings


def connect(url: str, settings: "AuthSettings") -> Redis:
    """A client whose pool makes requests wait for a free connection (up to the
    timeout) instead of failing when more than REDIS_MAX_CONNECTIONS are busy."""
    pool = BlockingConnectionPool.from_url(
        url,
        decode_responses=True,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_timeout,
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
        health_check_interval=30,
    )
    return Redis.from_pool(pool)  # the client owns the pool and closes it


class RedisLogoutTokens:
    """Ids of logout tokens already used, as `<prefix>jti:<jti>` keys expiring by themselves."""

    def __init__(self, redis: Redis, *, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def claim(self, jti: str, *, until: int) -> bool:
        ttl = max(until - int(time.time()), 1)
        try:
            return bool(await self._redis.set(f"{self._prefix}jti:{jti}", 1, ex=ttl, nx=True))
        except (RedisError, OSError):
            raise StoreUnavailable("Logout tokens cannot be recorded right now.") from None

    async def release(self, jti: str) -> None:
        try:
            await self._redis.delete(f"{self._prefix}jti:{jti}")
        except (RedisError, OSError):
            raise StoreUnavailable("Logout tokens cannot be recorded right now.") from None
