"""Logout records for cookie sessions: what makes a logout final when sessions live in cookies.

A cookie session cannot be deleted on the server, so logouts are written down
instead, and every request that reads a session checks them:

    login:<login id>   this session logged out (GET /auth/logout)
    sid:<sid>          the provider ended this provider session (back-channel logout)
    sub:<sub>          the provider ended all sessions of this user (back-channel logout)

The records fail closed: they remember when they were started, and a session created
before that is treated as ended. A records store that was lost (a new container without
the volume, a flushed Redis) logs everyone out; it never makes logged-out cookies valid.

A session created after a `sub` record is not affected by it; `login` and `sid` records
apply whenever the session was created (a provider session may end before the app has
finished the login that came from it). Records are kept as long
as a session could live (SESSION_ABSOLUTE_DURATION). The same place remembers the
ids (`jti`) of logout tokens, so a replayed token is refused.

The same place lets the app processes share what one of them changed in a session
(new tokens after a refresh, which the provider may accept only once): while a process
changes a session it holds the login's lock, and it leaves the changed session (its
cookie value, encrypted) as the login's newest version, which any process then uses in
place of an older cookie of that login.

By default the records live in a SQLite file (LOGOUT_RECORDS_PATH): enough for any
number of app processes on one machine. Set REDIS_URL when instances run on several
machines.

This module says what the records do; logouts_sqlite.py and logouts_redis.py keep them.
"""

from contextlib import AbstractAsyncContextManager
from typing import Protocol

from app.auth.sessions import Session

STARTED = ("store", "started")  # the record of when the records store was started
NEWER = "newer"  # records of this kind: a login's newest version (its revision as ended_at)
LOCK_POLL = 0.05  # seconds between attempts to take a lock


class LogoutRecords(Protocol):
    async def check(self, session: Session, *, new: bool = False) -> tuple[bool, str | None]:
        """Whether a logout applies to the session, and the newest version of its login
        (a cookie value) when one newer than `session` was recorded. A `new` session (a
        login finishing now) is not ended for records that were lost before it began."""

    async def record(self, kind: str, value: str, *, until: int) -> None:
        """Write down a logout of `kind` ("login", "sid" or "sub"), kept until `until`."""

    def lock(self, name: str, *, ttl: float) -> AbstractAsyncContextManager[str]:
        """Hold lock `name` across processes (expires after `ttl` s); yields a fence token."""

    async def record_newer(self, session: Session, value: str, *, until: int, fence: str) -> None:
        """Leave `value` as the newest version of `session`'s login; LostLock if the lock
        taken with `fence` is no longer held."""

    async def open(self) -> None:
        """Start the records (when the app starts): sessions from before are ended."""

    async def aclose(self) -> None: ...


def applies(kind: str, ended_at: float, session: Session) -> bool:
    """Whether a record of `kind` written at `ended_at` ends `session`."""
    return kind != "sub" or session.created_at < ended_at


def keys_of(session: Session) -> list[tuple[str, str]]:
    keys = [("login", session.login_id), ("sub", session.sub)]
    if session.sid:
        keys.append(("sid", session.sid))
    return keys
