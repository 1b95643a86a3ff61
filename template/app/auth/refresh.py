"""Refreshing access tokens, one refresh at a time.

A refresh token may be used only once when the provider rotates them (Auth0 and
panva's oidc-provider then revoke the whole grant if it is used twice). So
concurrent requests of a session in this process share one refresh, and
server-side stores add a lock shared by all app instances (`refresh_lock`).
"""

import asyncio
import logging

from fastapi import Request
from fastapi.responses import Response

from app.auth.client import OidcClient
from app.auth.errors import Forbidden, NotAuthenticated, SessionEnded
from app.auth.sessions import AccessToken, Session, SessionStore, request_state

logger = logging.getLogger("app.auth")
RECENT_REFRESHES = 1024  # refreshed sessions remembered, to fix up requests with stale cookies

Flight = tuple[str, str | None, str | None]  # login id, audience, scope


class TokenRefresher:
    def __init__(self, client: OidcClient, sessions: SessionStore, *, leeway: int) -> None:
        self._client = client
        self._sessions = sessions
        self._leeway = leeway
        self._flights: dict[Flight, asyncio.Future[Session]] = {}
        # login id -> (the refresh token it replaced, the refreshed session)
        self._successors: dict[str, tuple[str | None, Session]] = {}

    async def access_token(
        self, request: Request, session: Session, *, audience: str | None, scope: str | None
    ) -> AccessToken:
        """A token for `audience` and `scope` valid for at least the leeway, refreshed if needed."""
        token = session.access_token(audience, scope)
        if token is not None and token.valid_for(self._leeway):
            return token
        if session.refresh_token is None:
            raise NotAuthenticated("Your access has expired. Please log in again.")
        key = (session.login_id, audience, scope)
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(self._refresh(request, session, audience, scope))
            self._flights[key] = flight
            flight.add_done_callback(lambda _: self._flights.pop(key, None))
        else:
            await self._sessions.update(request, await asyncio.shield(flight))
        refreshed = (await asyncio.shield(flight)).access_token(audience, scope)
        if refreshed is None:  # pragma: no cover - `_refresh` stores one or raises
            raise NotAuthenticated()
        return refreshed

    def successor(self, session: Session) -> Session | None:
        """A newer version of `session`, if this process refreshed it since the request's copy."""
        found = self._successors.get(session.login_id)
        if found is None or found[0] != session.refresh_token:
            return None
        return found[1]

    async def _refresh(
        self, request: Request, session: Session, audience: str | None, scope: str | None
    ) -> Session:
        async with self._sessions.refresh_lock(request):
            # Another instance may have refreshed while we waited for the lock.
            loaded = await self._sessions.load(request)
            current = (self.successor(loaded) or loaded) if loaded else session
            token = current.access_token(audience, scope)
            if token is not None and token.valid_for(self._leeway):
                return current
            if current.refresh_token is None:
                raise NotAuthenticated("Your access has expired. Please log in again.")
            try:
                tokens = await self._client.refresh(
                    current.refresh_token, audience=audience, scope=scope, sub=current.sub
                )
            except SessionEnded:
                await self._end(request)
                raise
            token = tokens.access_token_for(audience, asked=scope)
            if not token.covers(audience, scope):
                raise Forbidden(f"The login service did not grant the scopes {scope!r}.")
            refreshed = current.refreshed(
                token, refresh_token=tokens.refresh_token, id_token=tokens.id_token
            )
            await self._sessions.update(request, refreshed)
        if len(self._successors) >= RECENT_REFRESHES:
            del self._successors[next(iter(self._successors))]
        self._successors[current.login_id] = (current.refresh_token, refreshed)
        logger.info("auth.refresh sub=%s audience=%s", current.sub, audience)
        return refreshed

    async def _end(self, request: Request) -> None:
        """The provider refused the refresh token: end the session here too."""
        scratch = Response()
        await self._sessions.delete(request, scratch)
        cookies = [(k, v) for k, v in scratch.raw_headers if k == b"set-cookie"]
        request_state(request).deferred_headers.extend(cookies)
