"""Sessions in a SQL database (SQLAlchemy 2, async): SQLite by default, PostgreSQL via asyncpg.

One row per session in `auth_sessions`, indexed by user (`sub`) and provider session
(`sid`) for back-channel logout; locks of sessions whose tokens are changing in
`auth_refresh_locks`; provider sessions that the provider ended (back-channel logout)
in `auth_ended_provider_sessions`; used logout-token ids in `auth_logout_tokens`;
the record ids of sessions changed or deleted in `auth_session_changes`, so that each
app process can keep the sessions it read in memory (sql_cache.py).
The tables are created on first use when missing
(`CREATE TABLE IF NOT EXISTS`); if you manage your schema with migrations, create it
there instead from `sessions_table` (see README). Expired rows are ignored on read and
purged at most every `PURGE_INTERVAL` seconds.
"""

import asyncio
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings
from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    MetaData,
    String,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    event,
    exists,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, ProgrammingError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlalchemy.sql.elements import ColumnElement

from app.auth.errors import StoreUnavailable
from app.auth.sessions import Session, SessionCodec, SessionLifetime, now
from app.auth.stores.base import LostLock, Stored
from app.auth.stores.server import is_session_id, new_id, record_id
from app.auth.stores.sql_cache import ChangeLogCache, change_log_table

if TYPE_CHECKING:
    from app.auth.settings import AuthSettings

logger = logging.getLogger("app.auth")
PURGE_INTERVAL = 600
SCHEMA_ATTEMPTS = 3  # tries at creating the tables, when instances race to create them
DATABASE_DRIVERS = {
    "sqlite://": "sqlite+aiosqlite://",
    "postgresql://": "postgresql+asyncpg://",
    "postgres://": "postgresql+asyncpg://",
}


class StoreSettings(BaseSettings):
    """The SQL store's settings (part of `AuthSettings`)."""

    # Where sessions live: SQLite by default; postgresql://... uses asyncpg.
    database_url: str = "sqlite+aiosqlite:///./sessions.db"
    # Seconds to wait for the database before answering 503.
    database_timeout: float = Field(default=5.0, gt=0, le=60)
    # Sessions kept in memory per app process, dropped when the database's change log
    # says they changed (see app/auth/stores/sql_cache.py); 0 reads the database on
    # every request.
    database_cache_size: int = Field(default=10_000, ge=0)

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        for plain, driver in DATABASE_DRIVERS.items():
            if value.startswith(plain):
                return driver + value.removeprefix(plain)
        if not value.startswith(tuple(DATABASE_DRIVERS.values())):
            raise ValueError("must be a sqlite:// or postgresql:// URL")
        return value


metadata = MetaData()
sessions_table = Table(
    "auth_sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # sha256 of the cookie's session id
    Column("sub", String(255), nullable=False),
    Column("sid", String(255), nullable=True),
    Column("expires_at", BigInteger, nullable=False),  # Unix time
    Column("data", Text, nullable=False),  # the encrypted session
    Index("ix_auth_sessions_sub", "sub"),
    Index("ix_auth_sessions_sid", "sid"),
    Index("ix_auth_sessions_expires_at", "expires_at"),
)
_table = sessions_table.c
locks_table = Table(
    "auth_refresh_locks",  # held while one request changes a session's tokens
    metadata,
    Column("id", String(64), primary_key=True),
    Column("token", String(32), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)
ended_sids_table = Table(
    "auth_ended_provider_sessions",  # a login from one of these that finishes later is refused
    metadata,
    Column("sid", String(255), primary_key=True),
    Column("expires_at", BigInteger, nullable=False),
)
logout_tokens_table = Table(
    "auth_logout_tokens",  # ids of logout tokens already used (refused if replayed)
    metadata,
    Column("jti", String(255), primary_key=True),
    Column("expires_at", BigInteger, nullable=False),
)
changes_table = change_log_table(metadata)  # ids of sessions changed, for the caches
# Built once: the session read runs on every request that misses the cache.
READ_SESSION = select(_table.data, _table.expires_at).where(
    _table.id == bindparam("id"), _table.expires_at > bindparam("now")
)


class Database:
    """The engine, with the tables created on first use; failures become StoreUnavailable."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._schema_ready = False
        self._schema_lock = asyncio.Lock()

    @asynccontextmanager
    async def connect(self, *, write: bool = False) -> AsyncIterator[AsyncConnection]:
        try:
            if not self._schema_ready:
                await self._create_schema()
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            logger.warning("auth.store_unavailable store=sql error=%s", type(exc).__name__)
            raise StoreUnavailable() from None
        try:
            async with self.engine.begin() if write else self.engine.connect() as connection:
                yield connection
        except IntegrityError:
            raise  # the caller's to handle (a key that exists already)
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            logger.warning("auth.store_unavailable store=sql error=%s", type(exc).__name__)
            if isinstance(exc, ProgrammingError) or "no such table" in str(exc):
                # The database is back empty (recreated, restored): the tables are made
                # again at the next use.
                self._schema_ready = False
            raise StoreUnavailable() from None

    async def _create_schema(self) -> None:
        async with self._schema_lock:
            for attempt in range(SCHEMA_ATTEMPTS):
                if self._schema_ready:
                    return
                try:
                    async with self.engine.begin() as connection:
                        for table in metadata.sorted_tables:
                            await connection.execute(CreateTable(table, if_not_exists=True))
                            for index in table.indexes:
                                await connection.execute(CreateIndex(index, if_not_exists=True))
                    self._schema_ready = True
                except (IntegrityError, ProgrammingError):
                    # PostgreSQL: another instance created the same table at the same time
                    # ("IF NOT EXISTS" does not cover that race). Now it exists: again.
                    if attempt == SCHEMA_ATTEMPTS - 1:
                        raise


class SqlLogoutTokens:
    """Ids of logout tokens already used, in `auth_logout_tokens`."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def used(self, jti: str) -> bool:
        table = logout_tokens_table
        query = select(table.c.jti).where(table.c.jti == jti, table.c.expires_at > now())
        async with self._database.connect() as connection:
            return (await connection.execute(query)).first() is not None

    async def claim(self, jti: str, *, until: int) -> bool:
        try:
            async with self._database.connect(write=True) as connection:
                await connection.execute(
                    insert(logout_tokens_table).values(jti=jti, expires_at=until)
                )
        except IntegrityError:
            return False
        return True


class SqlSessionStore:
    def __init__(
        self,
        database: Database,
        cache: ChangeLogCache[Stored],
        codec: SessionCodec,
        lifetime: SessionLifetime,
    ) -> None:
        self.lifetime = lifetime
        self.logout_tokens = SqlLogoutTokens(database)
        self.database = database
        self._connect = database.connect
        self._cache = cache
        self._codec = codec
        self._purged_at = time.monotonic()

    async def read(self, key: str) -> Stored | None:
        if not is_session_id(key):
            return None
        record = record_id(key)
        return self._cache.get(record) or await self._read(key, record)

    async def _read(self, key: str, record: str) -> Stored | None:
        """The session from the database (kept in the cache when it may be)."""
        version = self._cache.version
        async with self._connect() as connection:
            row = (await connection.execute(READ_SESSION, {"id": record, "now": now()})).first()
        if row is None or not row.data:
            return None
        session = self._codec.decode(row.data, bound_to=record)
        if session is None:
            return None
        stored = Stored(key, session, row.data)
        self._cache.put(record, stored, version, expires_at=row.expires_at)
        return stored

    async def create(self, session: Session) -> Stored | None:
        key = new_id()
        data = self._codec.encode(session, bound_to=record_id(key))
        row = {
            "id": record_id(key),
            "sub": session.sub,
            "sid": session.sid,
            "expires_at": self.lifetime.ends_at(session),
            "data": data,
        }
        async with self._connect(write=True) as connection:
            await connection.execute(insert(sessions_table).values(row))
            await self._purge_expired(connection)
            if session.sid and await self._sid_ended(connection, session.sid):
                await connection.execute(delete(sessions_table).where(_table.id == row["id"]))
                return None
        return Stored(key, session, data)

    async def _sid_ended(self, connection: AsyncConnection, sid: str) -> bool:
        query = select(ended_sids_table.c.sid).where(ended_sids_table.c.sid == sid)
        return (await connection.execute(query)).first() is not None

    async def replace(self, old: Stored, session: Session, *, fence: str = "") -> Stored | None:
        record = record_id(old.key)
        data = self._codec.encode(session, bound_to=record)
        # Only over the very row that was read: a logout (row gone) or a change by
        # another request (row changed) that happened meanwhile wins.
        conditions = [_table.id == record, _table.data == old.version]
        if fence:
            conditions.append(_lock_held(record, fence))
        statement = (
            update(sessions_table)
            .where(*conditions)
            .values(data=data, expires_at=self.lifetime.ends_at(session))
        )
        try:
            async with self._connect(write=True) as connection:
                if (await connection.execute(statement)).rowcount:
                    await self._cache.log(connection, [record])
                    return Stored(old.key, session, data)
                held = select(_lock_held(record, fence))
                if fence and not (await connection.execute(held)).scalar():
                    raise LostLock()
            return None
        finally:
            self._cache.forget(record)  # after the commit: read again, changed or not

    async def delete(self, key: str, session: Session | None) -> None:
        if not is_session_id(key):
            return
        await self._end([record_id(key)])

    @asynccontextmanager
    async def lock(self, key: str, session: Session, *, ttl: float) -> AsyncIterator[str]:
        lock = {"id": record_id(key), "token": secrets.token_hex(8)}
        deadline = time.monotonic() + ttl
        while not await self._try_lock(lock, ttl):
            if time.monotonic() > deadline:
                raise StoreUnavailable("Another request is changing this session; try again.")
            await asyncio.sleep(0.05)
        # The holder reads the session again: from the database, never from memory, so
        # that it sees the tokens of a change that another instance finished just before.
        self._cache.forget(lock["id"])
        try:
            yield lock["token"]
        finally:
            async with self._connect(write=True) as connection:
                await connection.execute(
                    delete(locks_table).where(
                        locks_table.c.id == lock["id"], locks_table.c.token == lock["token"]
                    )
                )

    async def _try_lock(self, lock: dict[str, str], ttl: float) -> bool:
        try:
            async with self._connect(write=True) as connection:
                # A lock left by a crashed process expires.
                await connection.execute(
                    delete(locks_table).where(
                        locks_table.c.id == lock["id"], locks_table.c.expires_at < now()
                    )
                )
                await connection.execute(
                    insert(locks_table).values(**lock, expires_at=now() + math.ceil(ttl))
                )
        except IntegrityError:
            return False
        return True

    async def end_sessions(self, *, sub: str | None = None, sid: str | None = None) -> int:
        """End every session of `sub`, of provider session `sid`, or both; return how many."""
        conditions = [
            column == value for column, value in ((_table.sub, sub), (_table.sid, sid)) if value
        ]
        if not conditions:
            return 0
        return await self._end(and_(*conditions), sid=sid)

    async def _end(self, which: list[str] | ColumnElement[bool], *, sid: str | None = None) -> int:
        """Delete these records (or the rows matching `which`), and log their change."""
        condition = _table.id.in_(which) if isinstance(which, list) else which
        statement = delete(sessions_table).where(condition).returning(_table.id)
        records: list[str] = []
        try:
            async with self._connect(write=True) as connection:
                if sid:
                    await self._end_sid(connection, sid)
                records = list((await connection.execute(statement)).scalars())
                await self._cache.log(connection, records)
        finally:
            self._cache.forget(*records)  # after the commit
        return len(records)

    async def _end_sid(self, connection: AsyncConnection, sid: str) -> None:
        """Remember that the provider ended `sid`, for as long as a session could live."""
        expires_at = now() + self.lifetime.absolute
        await connection.execute(delete(ended_sids_table).where(ended_sids_table.c.sid == sid))
        await connection.execute(insert(ended_sids_table).values(sid=sid, expires_at=expires_at))

    async def end_login(self, sub: str, login_id: str) -> bool:
        for record, session in await self._sessions_of(sub):
            if session.login_id == login_id:
                return bool(await self._end([record]))
        return False

    async def list_sessions(self, sub: str) -> Sequence[Session]:
        return [session for _, session in await self._sessions_of(sub)]

    async def _sessions_of(self, sub: str) -> list[tuple[str, Session]]:
        query = select(_table.id, _table.data).where(_table.sub == sub, _table.expires_at > now())
        async with self._connect() as connection:
            rows = (await connection.execute(query)).all()
        found = []
        for record, data in rows:
            session = self._codec.decode(data, bound_to=record)
            if session is not None:
                found.append((record, session))
        return found

    async def open(self) -> None:
        async with self._connect():  # creates the tables when they are missing
            pass

    async def aclose(self) -> None:
        await self._cache.aclose()
        await self.database.engine.dispose()

    async def _purge_expired(self, connection: AsyncConnection) -> None:
        if time.monotonic() - self._purged_at >= PURGE_INTERVAL:
            self._purged_at = time.monotonic()
            await connection.execute(delete(sessions_table).where(_table.expires_at <= now()))
            await connection.execute(
                delete(logout_tokens_table).where(logout_tokens_table.c.expires_at <= now())
            )
            await connection.execute(
                delete(ended_sids_table).where(ended_sids_table.c.expires_at <= now())
            )
            await self._cache.purge(connection)


def _lock_held(record: str, token: str) -> ColumnElement[bool]:
    """Whether the lock of `record` is still the one taken with `token`."""
    lock = locks_table.c
    return exists().where(lock.id == record, lock.token == token, lock.expires_at >= now())


def _sqlite_write_ahead_log(connection: Any, _: object) -> None:
    """SQLite in write-ahead-log mode: reads (the change log's polls, other processes) never
    wait for a write, nor a write for them, so logins under load do not queue up behind
    each other's readers. Commits stay fully synced: a logout survives a power cut."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.close()


def build_store(settings: "AuthSettings", lifetime: SessionLifetime) -> SqlSessionStore:
    timeout = settings.database_timeout
    connect_args: dict[str, float] = {"timeout": timeout}  # connecting (sqlite: waiting for locks)
    postgres = settings.database_url.startswith("postgresql+asyncpg")
    if postgres:
        connect_args["command_timeout"] = timeout  # each query on an open connection too
    engine = create_async_engine(
        settings.database_url,
        pool_timeout=timeout,
        # A pooled connection to a PostgreSQL that restarted is dead: checked before
        # use (a round trip when taken from the pool), not found dead by a request.
        pool_pre_ping=postgres,
        connect_args=connect_args,
    )
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_write_ahead_log)
    cache: ChangeLogCache[Stored] = ChangeLogCache(
        changes_table,
        lambda: create_async_engine(settings.database_url, connect_args=connect_args),
        size=settings.database_cache_size,  # each about 6 KB: the record and its session
        timeout=timeout,
    )
    codec = SessionCodec(settings.session_secrets)
    return SqlSessionStore(Database(engine), cache, codec, lifetime)
