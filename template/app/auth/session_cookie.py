"""The request's session: the one module that reads and writes the session cookie.

Routes and dependencies reach sessions through `Sessions` (`get_auth(request).sessions`),
never through a store:

    session = await sessions.current(request)       # the request's session, or None
    await sessions.start(request, session)          # after a login
    await sessions.change(request, add_user_id)     # under the session's lock; see `change`
    await sessions.end(request)                     # logout

The cookie keeps the store's key for the session: the encrypted session itself with the
cookie store, a random id with the server-side stores. Cookies this module sets while a
request is handled go out with its response, whatever the route returns (middleware.py).

Template-owned protocol code: change sessions through `policy.py` (`session_user`,
`on_login`) and `Sessions.change` rather than here, so template updates apply cleanly.
"""

import asyncio
import contextlib
import contextvars
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace

from fastapi import Request
from fastapi.responses import Response

from app.auth.cookies import ChunkedCookie, CookieScope
from app.auth.errors import NotAuthenticated, ProviderTimeout, SessionEnded, StoreUnavailable
from app.auth.sessions import Session, SessionLifetime, now
from app.auth.stores.base import LostLock, SessionStore, Stored

logger = logging.getLogger("app.auth")

SESSION_COOKIE = "app_session"
# With https, the cookie is `__Host-app_session` (see `CookieScope`). A cookie of the
# plain name is read only when there is none of the prefixed one, and only if a version
# before the prefix wrote it (`ChunkedCookie`): until the sessions of then have ended.
SCOPE_KEY = "app.auth"  # per-request state lives in the ASGI scope under this key
RECENT_CHANGES = 1024  # changed sessions remembered, to fix up requests with older cookies
UNFINISHED_ENDS = 1024  # logouts the store could not record, remembered and retried
RETRY_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)  # seconds between retries of those, then 30 s
WRITE_ATTEMPTS = 5  # a change retried after concurrent renewals, before giving up (503)
USER_AGENT_LENGTH = 120

# A change of a session: gets the latest version, returns the new one (or the same).
Change = Callable[[Session], Session | Awaitable[Session]]


class RequestState:
    """What the auth code read and did during one request."""

    __slots__ = ("cookies", "loaded", "session", "stored")

    def __init__(self) -> None:
        self.loaded = False
        self.session: Session | None = None
        self.stored: Stored | None = None  # the session as the store has it
        self.cookies: dict[str, bytes] = {}  # Set-Cookie values to send, by cookie name

    def set_cookie_headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"set-cookie", value) for value in self.cookies.values()]


def request_state(request: Request) -> RequestState:
    state = request.scope.get(SCOPE_KEY)
    if state is None:
        state = request.scope[SCOPE_KEY] = RequestState()
    return state


class Sessions:
    """Which session each request holds, and every change to it."""

    def __init__(
        self,
        store: SessionStore,
        lifetime: SessionLifetime,
        *,
        cookies: CookieScope,
        lock_ttl: float,
    ) -> None:
        self.store = store
        self.lifetime = lifetime
        self.lock_ttl = lock_ttl
        self._cookie = ChunkedCookie(
            cookies.name(SESSION_COOKIE),
            path=cookies.path(),
            secure=cookies.secure,
            legacy_name=SESSION_COOKIE if cookies.secure else None,
        )
        self._changed: dict[str, Session] = {}  # login id -> its latest change here
        # login id -> its lock in this process, and how many requests hold or await it
        self._local_locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}
        self._unfinished: dict[str, Session | None] = {}  # key -> session, ends to retry
        self._retrying: asyncio.Task[None] | None = None  # retries them until the store takes them

    async def current(self, request: Request) -> Session | None:
        """The request's valid session, or None. Read once per request, renewed when due."""
        state = request_state(request)
        if state.loaded:
            return state.session
        state.loaded = True
        key = self._cookie.read(request.cookies)
        if key is None or (self._unfinished and key in self._unfinished):
            return None
        stored = await self.store.read(key)
        moment = now()
        if stored is None or self.lifetime.is_expired(stored.session, moment):
            return None
        state.stored = stored
        state.session = session = stored.session
        newer = self._newer(session)
        if newer is not None:  # the browser sent a cookie from before a change made here
            await self._write(request, replace(newer, touched_at=session.touched_at))
        elif stored.stale:  # ... or made by another process
            await self._write(request, session)
        elif self.lifetime.needs_touch(session, moment):
            await self._write(request, self.lifetime.touched(session, moment))
        return state.session

    async def start(self, request: Request, session: Session) -> None:
        """Make `session` (a new login) the request's session, under a new key."""
        state = request_state(request)
        previous = self._cookie.read(request.cookies) if state.stored is None else state.stored.key
        agent = request.headers.get("user-agent", "")[:USER_AGENT_LENGTH]
        stored = await self.store.create(replace(session, user_agent=agent))
        if previous is not None:
            await self._delete(previous, state.session)  # the old key must not log in again
        if stored is None:
            self._forget(request)
            raise SessionEnded()
        self._hold(request, stored)

    async def change(self, request: Request, change: Change) -> Session:
        """Change the request's session: `change` gets its latest version and returns the
        new one. Runs under the session's lock (one change at a time, across app
        instances), within `lock_ttl`; NotAuthenticated when the session has ended."""
        state = request_state(request)
        if await self.current(request) is None or state.stored is None:
            raise NotAuthenticated()
        async with self._locked(state.stored) as fence:
            stored = await self.store.read(state.stored.key) if state.stored else None
            if stored is None:
                self._forget(request)
                raise NotAuthenticated("Your session has ended. Please log in again.")
            state.stored = stored
            latest = self._newer(stored.session) or stored.session
            try:
                async with asyncio.timeout(self._work_time):
                    result = change(latest)
                    changed = await result if inspect.isawaitable(result) else result
            except TimeoutError:
                raise ProviderTimeout("The login service took too long to answer.") from None
            if changed != latest:
                changed = replace(changed, revision=latest.revision + 1)
            if changed != stored.session:
                await self._write(request, changed, fence=fence)
                self._remember(changed)
            else:
                state.session = changed
        return changed

    async def catch_up(self, request: Request) -> None:
        """Have the request hold the latest change of its session made in this process."""
        state = request_state(request)
        newer = self._newer(state.session) if state.session is not None else None
        if newer is not None and state.session is not None:
            await self._write(request, replace(newer, touched_at=state.session.touched_at))

    async def end(self, request: Request) -> Session | None:
        """Log out: the session ends here and its cookie is removed, whatever happens. A
        store that cannot record it now is retried later; meanwhile this process refuses
        the session. Returns the session that ended, when it could be read."""
        state = request_state(request)
        try:
            session = await self.current(request)
        except StoreUnavailable:
            session = None
        key = state.stored.key if state.stored else self._cookie.read(request.cookies)
        if key is not None:
            await self._delete(key, session)
        self._forget(request)
        return session

    async def end_sessions(self, *, sub: str | None = None, sid: str | None = None) -> int | None:
        """End every session of user `sub`, of provider session `sid`, or matching both."""
        return await self.store.end_sessions(sub=sub, sid=sid)

    async def list(self, request: Request) -> Sequence[Session] | None:
        """The sessions of the request's user (None: the store does not keep them)."""
        session = await self._required(request)
        found = await self.store.list_sessions(session.sub)
        if found is None:
            return None
        live = [s for s in found if not self.lifetime.is_expired(s, now())]
        return sorted(live, key=lambda s: s.created_at, reverse=True)

    async def end_login(self, request: Request, login_id: str) -> bool:
        """End one of the request's user's sessions; False when there is none by that id."""
        session = await self._required(request)
        if login_id == session.login_id:
            await self.end(request)
            return True
        return await self.store.end_login(session.sub, login_id)

    async def end_others(self, request: Request) -> int | None:
        """End every session of the request's user except the request's own."""
        session = await self._required(request)
        found = await self.store.list_sessions(session.sub)
        if found is not None:
            ended = 0
            for other in found:
                if other.login_id != session.login_id:
                    ended += await self.store.end_login(session.sub, other.login_id)
            return ended
        # The store cannot list them (cookie sessions): end them all, then carry this
        # one on as a new login that ends when it would have, and that says when and how
        # the user authenticated as the old one did (it is no newer a login).
        await self.store.end_sessions(sub=session.sub)
        await asyncio.sleep(0.002)  # so that the new login is later than the logout
        carried = replace(
            Session.start(session.user, **_tokens_of(session)),
            expires_at=self.lifetime.absolute_end(session),
            user_agent=session.user_agent,
            auth_time=session.auth_time,
            acr=session.acr,
            amr=session.amr,
        )
        await self.start(request, carried)
        return None

    async def open(self) -> None:
        try:
            await self.store.open()
        except StoreUnavailable as exc:
            logger.warning("auth.store_unavailable at startup: %s", exc.message)

    async def aclose(self) -> None:
        retrying, self._retrying = self._retrying, None
        if retrying is not None and retrying.get_loop() is asyncio.get_running_loop():
            retrying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await retrying
        await self.store.aclose()

    @property
    def _work_time(self) -> float:
        """How long a change may take: less than its lock lives."""
        return self.lock_ttl * 0.8

    async def _required(self, request: Request) -> Session:
        session = await self.current(request)
        if session is None:
            raise NotAuthenticated()
        return session

    async def _write(self, request: Request, session: Session, *, fence: str | None = None) -> None:
        """Store `session` in place of the request's. `fence`: the lock of a change; None
        for a renewal, which gives way to any write that came in between. A change keeps
        the renewals that came in between (the latest `touched_at` wins). A session that
        ended meanwhile stays ended."""
        state = request_state(request)
        stored = state.stored
        for _ in range(WRITE_ATTEMPTS):
            if stored is None:
                break
            try:
                written = await self.store.replace(stored, session, fence=fence or "")
            except LostLock:
                raise StoreUnavailable("This session was busy; please try again.") from None
            if written is not None:
                self._hold(request, written)
                return
            stored = await self.store.read(stored.key)
            if stored is not None and fence is None:
                if stored.session.revision >= session.revision:
                    self._hold(request, stored)  # as new as ours: the renewal can wait
                    return
            elif stored is not None:
                touched = max(session.touched_at, stored.session.touched_at)
                session = replace(session, touched_at=touched)
        else:
            raise StoreUnavailable("This session is changing too often; please try again.")
        if fence is not None:  # a change (not a renewal) of an ended session: say so
            self._forget(request)
            raise NotAuthenticated("Your session has ended. Please log in again.")
        state.session = None

    def _hold(self, request: Request, stored: Stored) -> None:
        """Make `stored` the request's session and send its cookie."""
        state = request_state(request)
        state.loaded, state.stored, state.session = True, stored, stored.session
        max_age = self.lifetime.ends_at(stored.session) - now()
        cookies = Response()
        self._cookie.write(cookies, stored.key, max_age=max_age, existing=_names(request))
        _send(request, cookies)

    def _forget(self, request: Request) -> None:
        """The request holds no session any more; remove its cookies from the browser."""
        state = request_state(request)
        state.loaded, state.stored, state.session = True, None, None
        cookies = Response()
        self._cookie.delete(cookies, self._cookie.names_in(_names(request)))
        _send(request, cookies)

    async def _delete(self, key: str, session: Session | None) -> None:
        """End the session under `key`; when the store is down, keep trying in the
        background until it takes the logout (other instances honour it from then on)."""
        await self._finish_unfinished()
        try:
            await self.store.delete(key, session)
        except StoreUnavailable:
            logger.warning("auth.logout_not_recorded store_unavailable=1 (retried later)")
            if len(self._unfinished) >= UNFINISHED_ENDS:
                self._unfinished.pop(next(iter(self._unfinished)), None)
            self._unfinished[key] = session
            loop = asyncio.get_running_loop()
            retrying = self._retrying
            if retrying is None or retrying.done() or retrying.get_loop() is not loop:
                # In a context of its own: not the request's (its trace, for one).
                self._retrying = loop.create_task(self._retry(), context=contextvars.Context())

    async def _finish_unfinished(self) -> None:
        for unfinished, earlier in list(self._unfinished.items()):
            try:
                await self.store.delete(unfinished, earlier)
            except StoreUnavailable:
                return
            if unfinished in self._unfinished:  # not finished by another retry meanwhile
                del self._unfinished[unfinished]
                logger.info("auth.logout_recorded_late")

    async def _retry(self) -> None:
        attempt = 0
        while self._unfinished:
            await asyncio.sleep(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)])
            try:
                await self._finish_unfinished()
            except Exception:  # keep retrying; an unexpected failure is logged
                logger.exception("auth.logout_retry_failed")
            attempt += 1

    def _newer(self, session: Session) -> Session | None:
        changed = self._changed.get(session.login_id)
        return changed if changed is not None and changed.revision > session.revision else None

    def _remember(self, session: Session) -> None:
        self._changed.pop(session.login_id, None)
        if len(self._changed) >= RECENT_CHANGES:
            del self._changed[next(iter(self._changed))]
        self._changed[session.login_id] = session

    @asynccontextmanager
    async def _locked(self, held: Stored) -> AsyncIterator[str]:
        """The session's lock in this process, then across instances (the store's)."""
        login_id = held.session.login_id
        lock, users = self._local_locks.setdefault(login_id, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock, self.store.lock(held.key, held.session, ttl=self.lock_ttl) as fence:
                yield fence
        finally:
            users[0] -= 1
            if not users[0]:
                del self._local_locks[login_id]


def _names(request: Request) -> set[str]:
    """The cookies the browser has, as far as this request knows."""
    return set(request.cookies) | set(request_state(request).cookies)


def _send(request: Request, cookies: Response) -> None:
    """Send the Set-Cookie headers of `cookies` with the request's response (a later
    header for the same cookie replaces an earlier one)."""
    sent = request_state(request).cookies
    for name, value in cookies.raw_headers:
        if name == b"set-cookie":
            sent[value.split(b"=", 1)[0].decode()] = value


def _tokens_of(session: Session) -> dict[str, object]:
    return {
        "id_token": session.id_token,
        "refresh_token": session.refresh_token,
        "access_tokens": session.access_tokens,
        "sid": session.sid,
    }
