"""Values of Redis keys kept in memory for as long as Redis says they are unchanged.

Template-owned performance tuning: you are not expected to edit this module (template
updates keep it current); the stores use it through `get`, `put` and `forget`.

Reading a session (or the logout records of a cookie session) from Redis costs a
network round trip, most of what a request costs. This cache keeps what this process
has read, and a connection of its own asks Redis to announce every change of a key
under the cache's prefix (client-side caching in broadcasting mode, `CLIENT TRACKING
ON BCAST`): whenever any app instance changes or deletes such a key, or Redis expires
one, Redis tells every instance and each drops its copy.

Redis writes the announcement out in the same step as its reply to the instance that
made the change, and the announcement is applied straight from the event loop's I/O
callback, before the handler of any request that arrives after it runs. So a logout on
one instance normally holds on the others from their next request on. The announcement
travels on another connection than that reply, though: if the network holds it back, a
copy may be used after the change, for at most TRUST_WINDOW seconds (see below).
Refreshing tokens never relies on a copy (see `RedisSessionStore.refresh_lock`), when
sessions live in Redis.

The cache is used only while its connection is up and Redis answered a ping sent less
than TRUST_WINDOW seconds ago (pings go every PING_INTERVAL seconds, on the same
connection as the announcements, so an answer means every announcement sent before it
has arrived). A Redis that stops answering is noticed within TRUST_WINDOW, and from then
on every read goes to Redis (and gets its 503) until tracking works again. A Redis that
refuses tracking (before version 6, or a proxy) just means no cache. Set
REDIS_CACHE_SIZE=0 to turn it off.

With a sentinel set (REDIS_URL redis+sentinel://), the connection goes to the primary
the sentinels name, and its pings ask that server's role: once it is no longer the
primary (a failover), or the connection drops, every copy is dropped and reads go to
Redis until tracking works on the new primary. A Redis Cluster spreads keys over
several servers: there the cache is off (one log line at startup says so).
"""

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

import hiredis
from redis.asyncio.connection import SSLConnection, parse_url
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import RedisError

from app.auth.stores.redis_client import parse_redis_url

logger = logging.getLogger("app.auth")
PING_INTERVAL = 0.1  # seconds between pings on the tracking connection
TRUST_WINDOW = 0.5  # seconds after sending a ping answered since, that copies are used
RETRY_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)  # seconds before reconnecting, after failures
# OSError: ConnectionError and TrackingRefused too; RedisError: no primary found.
FAILURES = (OSError, TimeoutError, RedisError)

V = TypeVar("V")


class TrackingRefused(OSError):
    """Redis answered a command of the tracking connection with an error."""


class TrackedCache(Generic[V]):
    """What this process read of the keys under `prefix`, by key: `get` before reading
    Redis, `put` what Redis returned. `name` names the connection in `CLIENT LIST`."""

    def __init__(self, url: str, prefix: str, *, name: str, size: int, timeout: float) -> None:
        self._url = url
        self._target = parse_redis_url(url)
        self._prefix = prefix
        self._name = name
        self._size = size
        if self._target.kind == "cluster" and size > 0:
            logger.info("auth.cache_off cache=%s reason=cluster", name)
            self._size = 0
        self._timeout = timeout
        self._entries: dict[str, V] = {}
        self._task: asyncio.Task[None] | None = None  # keeps Redis tracking for us
        self._tracking: TrackingConnection | None = None  # set while Redis tracks for us
        self._trusted_until = 0.0  # time.monotonic() up to which the entries are current
        # Changes whenever an entry may have changed: a read that started before a
        # change must not be cached after it (see `put`).
        self.version = 0

    def get(self, key: str) -> V | None:
        if (
            self._tracking is not None
            and time.monotonic() <= self._trusted_until
            and self._tracking.loop is asyncio.get_running_loop()
        ):
            return self._entries.get(key)
        self._start()
        return None

    def put(self, key: str, entry: V, version: int) -> None:
        """Keep `entry`, read from Redis while `version` was current, unless stale."""
        if self._tracking is not None and version == self.version:
            if key not in self._entries and len(self._entries) >= self._size:
                del self._entries[next(iter(self._entries))]  # the oldest
            self._entries[key] = entry

    def forget(self, *keys: str) -> None:
        """Drop these keys' entries now (this process is changing them)."""
        self.version += 1
        for key in keys:
            self._entries.pop(key, None)

    def _start(self) -> None:
        """Start tracking in this event loop, unless it runs there already."""
        loop = asyncio.get_running_loop()
        if self._size > 0 and (self._task is None or self._task.get_loop() is not loop):
            self._stop_trusting()  # tracking of another event loop, if any, tells nothing
            self._task = loop.create_task(self._keep_tracking())

    def _announced(self, keys: list[bytes] | None) -> None:
        if keys is None:  # the whole database was flushed
            self._clear()
        else:
            self.forget(*(key.decode() for key in keys))

    def _lost(self, connection: "TrackingConnection") -> None:
        if connection is self._tracking:  # announcements may be missed from now on
            self._stop_trusting()

    def _stop_trusting(self) -> None:
        self._tracking = None
        self._trusted_until = 0.0
        self._clear()

    def _clear(self) -> None:
        self.version += 1
        self._entries.clear()

    async def _keep_tracking(self) -> None:
        failures = 0
        while True:
            try:
                # asyncio.timeout, not wait_for: wait_for can swallow a cancellation
                # that comes as its awaitable finishes, and aclose would wait forever.
                async with asyncio.timeout(self._timeout):
                    connection = await self._connect()
            except FAILURES as exc:
                self._log_off(exc)
            else:
                self._clear()  # reads that started before tracking began are not kept
                self._tracking, failures = connection, 0
                try:
                    while True:
                        sent = time.monotonic()
                        async with asyncio.timeout(self._timeout):
                            await self._ping(connection)
                        # Every announcement Redis sent before this answer has arrived.
                        self._trusted_until = sent + TRUST_WINDOW
                        await asyncio.sleep(PING_INTERVAL)
                except FAILURES as exc:
                    self._log_off(exc)
                finally:
                    self._lost(connection)
                    connection.close()
            await asyncio.sleep(RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)])
            failures += 1

    def _log_off(self, exc: BaseException) -> None:
        logger.warning("auth.redis_cache_off cache=%s error=%s", self._name, type(exc).__name__)

    async def _ping(self, connection: "TrackingConnection") -> None:
        if self._target.kind != "sentinel":
            await connection.command("PING")
        elif (await connection.command("ROLE"))[0] != b"master":
            raise TrackingRefused("this Redis is no longer the primary")

    async def _options(self) -> dict[str, Any]:
        """How to reach the Redis server: as REDIS_URL says, like the store's own client
        (TLS options included), or the primary that the sentinels name right now."""
        target = self._target
        if target.kind == "server":
            return dict(parse_url(self._url))
        sentinel = Sentinel(target.nodes, sentinel_kwargs=target.sentinel_options(self._timeout))
        try:
            host, port = await sentinel.discover_master(target.service)
        finally:
            for client in sentinel.sentinels:
                await client.aclose()
        options: dict[str, Any] = {
            "host": host,
            "port": port,
            "username": target.username,
            "password": target.password,
        }
        if target.tls:  # as the store's own client: SSLConnection's options, checked alike
            tls = {name: value for name, value in target.tls_options().items() if name != "ssl"}
            options |= {"connection_class": SSLConnection, **tls}
        return options

    async def _connect(self) -> "TrackingConnection":
        """A connection on which Redis announces changes of the keys under the prefix."""
        options = await self._options()
        loop = asyncio.get_running_loop()
        connection = TrackingConnection(loop, self._announced, self._lost)
        try:
            if "path" in options:
                await loop.create_unix_connection(lambda: connection, options["path"])
            else:
                tls = None
                if options.get("connection_class") is SSLConnection:
                    del options["connection_class"]
                    tls = SSLConnection(**options).ssl_context.get()
                host, port = options.get("host", "localhost"), options.get("port", 6379)
                await loop.create_connection(lambda: connection, host, port, ssl=tls)
            hello = ["HELLO", "3"]  # RESP3: announcements arrive on this same connection
            if options.get("username") or options.get("password"):
                user = options.get("username") or "default"
                hello += ["AUTH", user, options.get("password") or ""]
            await connection.command(*hello)
            await connection.command("CLIENT", "SETNAME", self._name)
            await connection.command("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", self._prefix)
            await self._ping(connection)  # the primary still, now that it tracks for us
        except BaseException:
            connection.close()
            raise
        return connection

    async def aclose(self) -> None:
        task, self._task = self._task, None
        self._stop_trusting()
        if task is None or task.get_loop().is_closed():
            return
        if task.get_loop() is not asyncio.get_running_loop():
            task.get_loop().call_soon_threadsafe(task.cancel)
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class TrackingConnection(asyncio.Protocol):
    """Sends commands; hands each announcement to `announced` the moment it arrives."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        announced: Callable[[list[bytes] | None], None],
        lost: Callable[["TrackingConnection"], None],
    ) -> None:
        self.loop = loop
        self._announced = announced
        self._lost = lost
        self._reader = hiredis.Reader()
        self._replies: deque[asyncio.Future[Any]] = deque()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        try:
            while (message := self._reader.gets()) is not False:
                if isinstance(message, hiredis.PushNotification):
                    if message[0] == b"invalidate":
                        self._announced(message[1])
                elif self._replies:
                    self._reply(self._replies.popleft(), message)
        except hiredis.ProtocolError:
            self.close()

    @staticmethod
    def _reply(reply: "asyncio.Future[Any]", message: Any) -> None:
        if reply.done():  # its caller gave up waiting
            return
        if isinstance(message, hiredis.ReplyError):
            reply.set_exception(TrackingRefused(str(message)))
        else:
            reply.set_result(message)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._lost(self)
        while self._replies:
            reply = self._replies.popleft()
            if not reply.done():
                reply.set_exception(ConnectionError("connection to Redis lost"))

    def command(self, *args: str) -> "asyncio.Future[Any]":
        reply = self.loop.create_future()
        if self._transport is None or self._transport.is_closing():
            reply.set_exception(ConnectionError("not connected to Redis"))
        else:
            self._transport.write(hiredis.pack_command(cast(Any, args)))
            self._replies.append(reply)
        return reply

    def close(self) -> None:
        self._lost(self)  # at once: announcements may already be lost
        if self._transport is not None:
            self._transport.close()
