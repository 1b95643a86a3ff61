"""Refreshing access tokens, one refresh at a time.

A refresh token may be used only once when the provider rotates them (Auth0 and
panva's oidc-provider then revoke the whole grant if it is used twice). So concurrent
requests of a session in this process share one refresh, and each refresh runs as a
change of the session (`Sessions.change`): under the session's lock, across app
instances, on the latest version of the session.
"""

import asyncio
import logging

from fastapi import Request

from app.auth.client import OidcClient
from app.auth.errors import Forbidden, NotAuthenticated, SessionEnded
from app.auth.session_cookie import Sessions
from app.auth.sessions import AccessToken, Session
from app.auth.telemetry import count
from app.auth.user import UserClaims

logger = logging.getLogger("app.auth")

Flight = tuple[str, str | None, str | None]  # login id, audience, scope


class TokenRefresher:
    def __init__(
        self, client: OidcClient, sessions: Sessions, *, leeway: int, user_claims: UserClaims
    ) -> None:
        self._client = client
        self._sessions = sessions
        self._leeway = leeway
        self._user_claims = user_claims
        self._flights: dict[Flight, asyncio.Future[Session]] = {}

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
            flight = asyncio.ensure_future(self._refresh(request, audience, scope))
            self._flights[key] = flight
            flight.add_done_callback(lambda _: self._flights.pop(key, None))
            refreshed = await asyncio.shield(flight)
        else:
            refreshed = await asyncio.shield(flight)
            await self._sessions.catch_up(request)  # this request's cookie holds the new tokens
        token = refreshed.access_token(audience, scope)
        if token is None:  # pragma: no cover - `_refresh` stores one or raises
            raise NotAuthenticated()
        return token

    async def _refresh(self, request: Request, audience: str | None, scope: str | None) -> Session:
        async def refresh(current: Session) -> Session:
            # Another request or instance may have refreshed while we waited for the lock.
            token = current.access_token(audience, scope)
            if token is not None and token.valid_for(self._leeway):
                return current
            if current.refresh_token is None:
                raise NotAuthenticated("Your access has expired. Please log in again.")
            tokens, claims = await self._client.refresh(
                current.refresh_token,
                audience=audience,
                scope=scope,
                sub=current.sub,
                id_token=current.id_token,
            )
            token = tokens.access_token_for(audience, asked=scope)
            if not token.covers(audience, scope):
                raise Forbidden(f"The login service did not grant the scopes {scope!r}.")
            logger.info("auth.refresh sub=%r audience=%s", current.sub, audience)
            count("auth.refreshes")
            return current.refreshed(
                token,
                refresh_token=tokens.refresh_token,
                id_token=tokens.id_token,
                user=self._user_claims.user(claims) if claims else None,
            )

        try:
            return await self._sessions.change(request, refresh)
        except SessionEnded:
            await self._sessions.end(request)  # the provider ended it: end it here too
            raise
