"""What a session store does: keep sessions, nothing about requests or cookies.

The app uses exactly one store, chosen when it was generated. `session_cookie.py`
decides which session a request holds and calls the store with the cookie's value
(its `key`); the store files, finds, replaces and deletes sessions by that key.
"""

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from app.auth.sessions import Session


@dataclass(frozen=True, slots=True)
class Stored:
    """A session as read from (or written to) the store.

    `key` is what the browser's cookie keeps; `version` tells one write from another.
    `stale`: the key holds an older version of `session`, to be written again.
    """

    key: str
    session: Session
    version: str
    stale: bool = False


class LostLock(Exception):
    """The lock expired before the write it was taken for: the write was refused."""


class SessionStore(Protocol):
    async def read(self, key: str) -> Stored | None:
        """The session filed under `key`, or None (never filed, ended, unreadable)."""

    async def create(self, session: Session) -> Stored | None:
        """File a new session under a new key; None when it has ended already (the
        provider ended its provider session, `sid`, before the login finished)."""

    async def replace(self, old: Stored, session: Session, *, fence: str = "") -> Stored | None:
        """Put `session` in place of `old`, unless the session was changed or ended since
        `old` was read: then None. The key may change (when the key is the data).
        With a `fence` (from `lock`), raises LostLock if that lock is no longer held."""

    async def delete(self, key: str, session: Session | None) -> None:
        """End the session filed under `key` (`session`: what the request read of it)."""

    def lock(self, key: str, session: Session, *, ttl: float) -> AbstractAsyncContextManager[str]:
        """Held while a session's tokens change, across app instances; yields a fence token.
        Expires after `ttl` seconds if its holder dies."""

    async def end_sessions(self, *, sub: str | None = None, sid: str | None = None) -> int | None:
        """End every session of user `sub`, of provider session `sid`, or matching both.
        Returns how many ended, when the store can tell."""

    async def end_login(self, sub: str, login_id: str) -> bool:
        """End the session of user `sub` created by login `login_id`; False if unknown."""

    async def list_sessions(self, sub: str) -> Sequence[Session] | None:
        """The sessions of user `sub`, or None when the store does not keep them."""

    async def open(self) -> None:
        """Get ready when the app starts (connect, create tables); a store that cannot
        yet logs why and tries again when first used."""

    async def aclose(self) -> None:
        """Release connections when the app stops."""


class LogoutTokens(Protocol):
    """Ids (`jti`) of logout tokens (and DPoP proofs) already used, so that a replayed one
    is refused. A logout token is claimed once its sessions have ended: one whose logout
    failed midway (a store that timed out may still carry out a write later) is taken
    again when the provider sends it again."""

    async def used(self, jti: str) -> bool:
        """Whether `jti` was claimed (and is not past its end)."""

    async def claim(self, jti: str, *, until: int) -> bool:
        """Remember `jti` until `until`; False when it was claimed before."""
