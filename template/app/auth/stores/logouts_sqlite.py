"""Logout records in a SQLite file, shared by the app processes of one machine (logouts.py).

Template-owned: the in-memory copy and the signal file are performance tuning you are
not expected to edit; template updates keep them current.
"""

import asyncio
import contextlib
import logging
import mmap
import os
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from app.auth.errors import StoreUnavailable
from app.auth.sessions import Session
from app.auth.stores.base import LostLock
from app.auth.stores.logouts import LOCK_POLL, NEWER, STARTED, applies, keys_of

logger = logging.getLogger("app.auth")
PURGE_INTERVAL = 600  # seconds between removals of expired records


class SqliteLogoutRecords:
    """Records in a SQLite file, shared by the app processes of one machine.

    Every request checks them, so the check reads an in-memory copy, brought up to
    date only when some process has written a record: each write also puts a new
    random token into a small memory-mapped signal file beside the database, and
    reading 8 bytes of shared memory costs far less than asking SQLite. The standard
    library's sqlite3 is used directly: an async driver would add a thread hop.
    """

    # Record ids are never reused (AUTOINCREMENT): each process loads the records past
    # the last id it has seen, so an id handed out twice would hide a record from it.
    SCHEMA = """
        PRAGMA journal_mode = WAL;
        PRAGMA synchronous = NORMAL;
        BEGIN IMMEDIATE;
        CREATE TABLE IF NOT EXISTS logout_records (
            id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, value TEXT NOT NULL,
            ended_at REAL NOT NULL, expires_at INTEGER NOT NULL, UNIQUE (kind, value));
        CREATE TABLE IF NOT EXISTS logout_tokens (
            jti TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS newest_sessions (
            login_id TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS session_locks (
            name TEXT PRIMARY KEY, token TEXT NOT NULL, expires_at REAL NOT NULL);
        COMMIT;
    """
    # Records of template versions before logout_records existed: kept, and no session
    # ended for being older than the store (the store was not lost).
    MIGRATE = """
        BEGIN IMMEDIATE;
        INSERT OR IGNORE INTO logout_records (kind, value, ended_at, expires_at)
            SELECT kind, value, ended_at, expires_at FROM logouts;
        INSERT OR IGNORE INTO logout_records (kind, value, ended_at, expires_at)
            VALUES ('store', 'started', 0, 9223372036854775807);
        DROP TABLE logouts;
        COMMIT;
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._open: tuple[sqlite3.Connection, mmap.mmap] | None = None
        self._seen = b""
        self._last_row = 0
        self._ended: dict[tuple[str, str], tuple[float, int]] = {}
        self._purged_at = 0.0

    def _connection(self) -> tuple[sqlite3.Connection, mmap.mmap]:
        """The database and the signal file, opened on first use."""
        if self._open is None:
            try:
                db = sqlite3.connect(self._path, timeout=5, isolation_level=None)
                db.executescript(self.SCHEMA)
                if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'logouts'").fetchone():
                    db.executescript(self.MIGRATE)
                db.execute(
                    "INSERT OR IGNORE INTO logout_records (kind, value, ended_at, expires_at) "
                    "VALUES (?, ?, ?, ?)",
                    (*STARTED, time.time(), 2**63 - 1),
                )
                self._open = db, _open_signal(f"{self._path}.signal")
            except (sqlite3.Error, OSError):
                raise StoreUnavailable("Logout records cannot be opened right now.") from None
        return self._open

    async def open(self) -> None:
        if multiple_workers():
            logger.warning(
                "auth.logout_records path=%s: shared only by the app processes of this "
                "machine; set REDIS_URL when instances run on several machines",
                self._path,
            )
        self._catch_up()

    def _catch_up(self) -> None:
        """Load the records written since the last look (by any process)."""
        db, signal = self._connection()
        token = signal[:8]
        if token == self._seen:
            return
        try:
            rows = db.execute(
                "SELECT id, kind, value, ended_at, expires_at FROM logout_records WHERE id > ?",
                (self._last_row,),
            ).fetchall()
            if not rows and self._last_row:
                newest = db.execute("SELECT max(id) FROM logout_records").fetchone()[0]
                if newest is None or newest < self._last_row:  # emptied or replaced: reload
                    self._ended.clear()
                    self._last_row = 0
                    rows = db.execute(
                        "SELECT id, kind, value, ended_at, expires_at FROM logout_records"
                    ).fetchall()
        except sqlite3.Error:
            raise StoreUnavailable("Logout records cannot be read right now.") from None
        self._seen = token  # read before the rows: a write meanwhile changes it again
        for row_id, kind, value, ended_at, expires_at in rows:
            self._ended[(kind, value)] = (ended_at, expires_at)
            self._last_row = max(self._last_row, row_id)

    async def check(self, session: Session, *, new: bool = False) -> tuple[bool, str | None]:
        self._catch_up()
        started = self._ended.get(STARTED)
        if started is None or session.created_at < started[0]:
            return True, None  # from before this store was started: it may have been lost
        now = time.time()
        for key in keys_of(session):
            found = self._ended.get(key)
            if found is not None and found[1] > now and applies(key[0], found[0], session):
                return True, None
        found = self._ended.get((NEWER, session.login_id))
        if found is None or found[0] <= session.revision or found[1] <= now:
            return False, None
        return False, self._newest(session.login_id)

    def _newest(self, login_id: str) -> str | None:
        db, _ = self._connection()
        try:
            row = db.execute(
                "SELECT value FROM newest_sessions WHERE login_id = ?", (login_id,)
            ).fetchone()
        except sqlite3.Error:
            raise StoreUnavailable("Logout records cannot be read right now.") from None
        return str(row[0]) if row else None

    @asynccontextmanager
    async def lock(self, name: str, *, ttl: float) -> AsyncIterator[str]:
        db, _ = self._connection()
        token, deadline = secrets.token_hex(8), time.monotonic() + ttl
        while not self._try_lock(db, name, token, ttl):
            if time.monotonic() > deadline:
                raise StoreUnavailable("Another request is changing this session; try again.")
            await asyncio.sleep(LOCK_POLL)
        try:
            yield token
        finally:
            with contextlib.suppress(sqlite3.Error):
                db.execute("DELETE FROM session_locks WHERE name = ? AND token = ?", (name, token))

    def _try_lock(self, db: sqlite3.Connection, name: str, token: str, ttl: float) -> bool:
        try:
            with db:  # one transaction
                db.execute("BEGIN IMMEDIATE")
                db.execute(
                    "DELETE FROM session_locks WHERE name = ? AND expires_at < ?",
                    (name, time.time()),
                )
                taken = db.execute(
                    "INSERT OR IGNORE INTO session_locks (name, token, expires_at) "
                    "VALUES (?, ?, ?)",
                    (name, token, time.time() + ttl),
                )
            return taken.rowcount == 1
        except sqlite3.Error:
            raise StoreUnavailable("Logout records cannot be written right now.") from None

    async def record_newer(self, session: Session, value: str, *, until: int, fence: str) -> None:
        db, signal = self._connection()
        name = f"login:{session.login_id}"
        try:
            with db:
                db.execute("BEGIN IMMEDIATE")
                held = db.execute(
                    "SELECT 1 FROM session_locks WHERE name = ? AND token = ? AND expires_at > ?",
                    (name, fence, time.time()),
                ).fetchone()
                if not held:
                    raise LostLock()
                db.execute(
                    "INSERT OR REPLACE INTO newest_sessions (login_id, value, expires_at) "
                    "VALUES (?, ?, ?)",
                    (session.login_id, value, until),
                )
                db.execute(
                    "INSERT OR REPLACE INTO logout_records (kind, value, ended_at, expires_at) "
                    "VALUES (?, ?, ?, ?)",
                    (NEWER, session.login_id, session.revision, until),
                )
        except sqlite3.Error:
            raise StoreUnavailable("Logout records cannot be written right now.") from None
        signal[:8] = secrets.token_bytes(8)
        self._catch_up()

    async def record(self, kind: str, value: str, *, until: int) -> None:
        self._write(
            "INSERT OR REPLACE INTO logout_records (kind, value, ended_at, expires_at) "
            "VALUES (?, ?, ?, ?)",
            (kind, value, time.time(), until),
        )

    async def used(self, jti: str) -> bool:
        db, _ = self._connection()
        try:
            row = db.execute(
                "SELECT 1 FROM logout_tokens WHERE jti = ? AND expires_at > ?", (jti, time.time())
            ).fetchone()
        except sqlite3.Error:
            raise StoreUnavailable("Logout tokens cannot be read right now.") from None
        return row is not None

    async def claim(self, jti: str, *, until: int) -> bool:
        """Remember a logout token id until `until`; False when it was seen before."""
        cursor = self._write(
            "INSERT OR IGNORE INTO logout_tokens (jti, expires_at) VALUES (?, ?)", (jti, until)
        )
        return cursor.rowcount == 1

    def _write(self, statement: str, parameters: tuple[object, ...]) -> sqlite3.Cursor:
        db, signal = self._connection()
        try:
            cursor = db.execute(statement, parameters)
            if time.monotonic() - self._purged_at > PURGE_INTERVAL:
                self._purged_at = time.monotonic()
                now = int(time.time())
                db.execute("DELETE FROM logout_records WHERE expires_at <= ?", (now,))
                db.execute("DELETE FROM logout_tokens WHERE expires_at <= ?", (now,))
                db.execute("DELETE FROM newest_sessions WHERE expires_at <= ?", (now,))
                self._ended = {k: v for k, v in self._ended.items() if v[1] > now}
        except sqlite3.Error:
            raise StoreUnavailable("Logout records cannot be written right now.") from None
        signal[:8] = secrets.token_bytes(8)  # tell every process to catch up
        self._catch_up()
        return cursor

    async def aclose(self) -> None:
        if self._open is not None:
            db, signal = self._open
            signal.close()
            db.close()
            self._open = None


def multiple_workers() -> bool:
    """Whether this process looks like one of several workers (uvicorn --workers N,
    gunicorn, or WEB_CONCURRENCY, which both read)."""
    concurrency = os.environ.get("WEB_CONCURRENCY", "1")
    return (concurrency.isdigit() and int(concurrency) > 1) or "gunicorn" in os.environ.get(
        "SERVER_SOFTWARE", ""
    )


def _open_signal(path: str) -> mmap.mmap:
    """8 bytes of memory shared by every process that opens `path`."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_size < 8:
            os.ftruncate(fd, 8)
        return mmap.mmap(fd, 8)
    finally:
        os.close(fd)
