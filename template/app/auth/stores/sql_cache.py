"""Sessions read from the database, kept in memory while a change log says they are unchanged.

Template-owned performance tuning: you are not expected to edit this module (template
updates keep it current); the SQL store uses it through `get`, `put`, `forget` and `log`.

Reading a session from the database costs more than the rest of a request. This cache
keeps what this process has read. Every transaction of any app instance that changes
or deletes a session also appends the session's record id to `auth_session_changes`
(`log`), and each process reads the rows appended since its last look, every
POLL_INTERVAL seconds, on a connection of its own, dropping its copies of those
sessions. A change made by this process drops its own copy at once.

So a logout on one instance holds on the others within POLL_INTERVAL, typically, and
at worst within TRUST_WINDOW seconds: the copies are used only while the last poll
that succeeded was sent less than TRUST_WINDOW seconds ago (every change committed
before it was sent has been applied). When a poll fails, or the change log went
backwards (emptied, recreated, purged past what this process saw), the copies are
dropped and every read goes to the database until polls succeed again. Changes made
to `auth_sessions` by hand reach the copies only with a row in the change log (see the
README). Set DATABASE_CACHE_SIZE=0 to turn the cache off.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    func,
    select,
    text,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.auth.sessions import now

logger = logging.getLogger("app.auth")
POLL_INTERVAL = 0.1  # seconds between reads of the change log
TRUST_WINDOW = 0.5  # seconds after sending a poll that succeeded, that copies are used
KEEP_CHANGES = 600  # seconds a change stays in the log (purged with expired sessions)
RETRY_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)  # seconds before polling again, after failures
FAILURES = (SQLAlchemyError, OSError, TimeoutError)

V = TypeVar("V")


def change_log_table(metadata: MetaData) -> Table:
    """`auth_session_changes`: one row per change of a session, in commit order."""
    return Table(
        "auth_session_changes",
        metadata,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
        Column("record", String(64), nullable=False),  # auth_sessions.id
        Column("changed_at", BigInteger, nullable=False),  # Unix time
        sqlite_autoincrement=True,  # ids never reused
    )


class ChangeLogCache(Generic[V]):
    """What this process read, by record id: `get` before reading the database, `put`
    what it returned. `new_engine` makes the engine polls run on (in their event loop)."""

    def __init__(
        self, changes: Table, new_engine: Callable[[], AsyncEngine], *, size: int, timeout: float
    ) -> None:
        self._changes = changes
        self._newest = select(func.coalesce(func.max(changes.c.id), 0))
        self._since = (
            select(changes.c.id, changes.c.record)
            .where(changes.c.id >= bindparam("last"))
            .order_by(changes.c.id)
        )
        self._new_engine = new_engine
        self._size = size
        self._timeout = timeout
        self._entries: dict[str, tuple[V, int]] = {}  # record -> (value, expires_at)
        self._task: asyncio.Task[None] | None = None  # polls the change log
        self._sleeping = False  # whether it waits between polls
        self._polling = False  # whether `_last` is current
        self._last = 0  # id of the newest change applied
        self._trusted_until = 0.0  # time.monotonic() up to which the entries are current
        # Changes whenever an entry may have changed: a read that started before a
        # change must not be cached after it (see `put`).
        self.version = 0

    def get(self, record: str) -> V | None:
        if (
            self._polling
            and time.monotonic() <= self._trusted_until
            and self._task is not None
            and self._task.get_loop() is asyncio.get_running_loop()
        ):
            entry = self._entries.get(record)
            return entry[0] if entry is not None and entry[1] > now() else None
        self._start()
        return None

    def put(self, record: str, value: V, version: int, *, expires_at: int) -> None:
        """Keep `value`, read while `version` was current and valid until `expires_at`."""
        if self._polling and version == self.version:
            if record not in self._entries and len(self._entries) >= self._size:
                del self._entries[next(iter(self._entries))]  # the oldest
            self._entries[record] = value, expires_at

    def forget(self, *records: str) -> None:
        """Drop these records' entries now (this process changed them, or may soon)."""
        self.version += 1
        for record in records:
            self._entries.pop(record, None)

    async def log(self, connection: AsyncConnection, records: Sequence[str]) -> None:
        """Tell every process that `records` changed: the last statements of the
        transaction that changes them (whether or not this process caches)."""
        if not records:
            return
        if connection.dialect.name == "postgresql":
            # One writer at a time until commit, so ids are in commit order: a poll that
            # sees a change sees every change before it. SQLite has one writer anyway.
            await connection.execute(text(f"LOCK TABLE {self._changes.name} IN EXCLUSIVE MODE"))
        rows = [{"record": record, "changed_at": now()} for record in records]
        await connection.execute(self._changes.insert(), rows)

    async def purge(self, connection: AsyncConnection) -> None:
        """Remove the changes before the newest one older than KEEP_CHANGES: always a run
        of the oldest ids, so a process whose last seen change is gone knows that it may
        have missed some (see `_poll_until_failure`)."""
        changes = self._changes.c
        old = select(func.max(changes.id)).where(changes.changed_at < now() - KEEP_CHANGES)
        await connection.execute(self._changes.delete().where(changes.id < old.scalar_subquery()))

    def _start(self) -> None:
        """Start polling in this event loop, unless it runs there already."""
        loop = asyncio.get_running_loop()
        if self._size > 0 and (self._task is None or self._task.get_loop() is not loop):
            self._stop_trusting()  # polls of another event loop, if any, tell nothing
            self._task = loop.create_task(self._keep_polling())

    def _stop_trusting(self) -> None:
        self._polling = False
        self._trusted_until = 0.0
        self._clear()

    def _clear(self) -> None:
        self.version += 1
        self._entries.clear()

    async def _keep_polling(self) -> None:
        failures = 0
        engine = self._new_engine()
        try:
            while self._current():
                try:
                    await self._poll_until_failure(engine)
                except FAILURES as exc:
                    logger.warning("auth.sql_cache_off error=%s", type(exc).__name__)
                if self._current():
                    self._stop_trusting()
                    await self._pause(RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)])
                failures += 1
        finally:
            with contextlib.suppress(*FAILURES):
                async with asyncio.timeout(self._timeout):
                    await engine.dispose()

    async def _poll_until_failure(self, engine: AsyncEngine) -> None:
        """Poll until a poll fails; return when this task is no longer the poller."""
        async with asyncio.timeout(self._timeout), engine.connect() as connection:
            await self._restart(connection)
        while self._current():
            sent = time.monotonic()
            async with asyncio.timeout(self._timeout), engine.connect() as connection:
                rows = (await connection.execute(self._since, {"last": self._last})).all()
                if not self._current():
                    return
                if self._last and (not rows or rows[0][0] != self._last):
                    # The log went backwards, or was purged past what this process saw.
                    await self._restart(connection)
                elif rows:
                    self.forget(*(record for id_, record in rows if id_ != self._last))
                    self._last = rows[-1][0]
            # Every change committed before `sent` has been applied.
            self._trusted_until = sent + TRUST_WINDOW
            await self._pause(POLL_INTERVAL)

    async def _restart(self, connection: AsyncConnection) -> None:
        """Go on from the newest change, with no entries: reads that start from here on
        see every change up to it."""
        newest = int((await connection.execute(self._newest)).scalar_one())
        if self._current():
            self._last = newest
            self._clear()
            self._polling = True

    def _current(self) -> bool:
        """Whether this task is the poller (`aclose` and polls in another loop end it)."""
        return self._task is asyncio.current_task()

    async def _pause(self, seconds: float) -> None:
        """Sleep between polls: the only moment `aclose` cancels the poller. A query cut
        short would leave its driver's thread to report to an event loop that is closed."""
        self._sleeping = True
        try:
            await asyncio.sleep(seconds)
        finally:
            self._sleeping = False

    async def aclose(self) -> None:
        task, self._task = self._task, None  # it stops after the poll it is running
        self._stop_trusting()
        if task is None or task.get_loop().is_closed():
            return
        if task.get_loop() is not asyncio.get_running_loop():
            task.get_loop().call_soon_threadsafe(task.cancel)
            return
        if self._sleeping:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
