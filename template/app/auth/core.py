"""`Auth`: everything the auth routes need, built once from settings and closed with the app.

`main.py` builds one (`Auth.from_settings`) and installs it (`install_auth`); routes get it
with the `AuthDep` dependency (or `get_auth(request)`).
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from fastapi import FastAPI, Request

from app.auth.api_token_checks import ApiTokens
from app.auth.client import OidcClient
from app.auth.errors import ProviderError
from app.auth.provider import Provider
from app.auth.refresh import TokenRefresher
from app.auth.session_cookie import Sessions
from app.auth.sessions import SessionLifetime
from app.auth.settings import AuthSettings
from app.auth.stores.base import LogoutTokens
from app.auth.transactions import TransactionCookies
from app.auth.user import UserClaims
from app.auth.variant import build_store

logger = logging.getLogger("app.auth")


@dataclass(frozen=True, slots=True)
class Auth:
    """The app's provider client, session store and cookies, and the settings they came from."""

    settings: AuthSettings
    provider: Provider
    client: OidcClient
    lifetime: SessionLifetime
    sessions: Sessions
    logout_tokens: LogoutTokens
    transactions: TransactionCookies
    tokens: TokenRefresher
    user_claims: UserClaims
    api_tokens: ApiTokens

    @classmethod
    def from_settings(
        cls, settings: AuthSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> "Auth":
        user_claims = UserClaims(
            roles_claim=settings.auth_roles_claim,
            permissions_claim=settings.auth_permissions_claim,
        )
        lifetime = SessionLifetime(
            inactivity=settings.session_inactivity_duration,
            absolute=settings.session_absolute_duration,
        )
        provider = Provider(settings.provider_config(), transport=transport)
        client = OidcClient(provider)
        store = build_store(settings, lifetime)
        # A token refresh makes up to three requests to the provider (discovery, token,
        # keys); a session's lock outlives them, so that no other request can use the
        # same refresh token meanwhile.
        lock_ttl = 3 * settings.auth0_timeout + 5
        sessions = Sessions(store, lifetime, cookies=settings.cookie_scope, lock_ttl=lock_ttl)
        return cls(
            settings=settings,
            provider=provider,
            client=client,
            lifetime=lifetime,
            sessions=sessions,
            logout_tokens=store.logout_tokens,
            transactions=TransactionCookies(
                settings.session_secrets, cookies=settings.cookie_scope
            ),
            tokens=TokenRefresher(
                client, sessions, leeway=settings.access_token_leeway, user_claims=user_claims
            ),
            user_claims=user_claims,
            api_tokens=ApiTokens(
                provider,
                store.logout_tokens,
                audience=settings.api_token_audience,
                types=settings.api_token_types,
                base_url=settings.app_base_url,
            ),
        )

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        """Open the session store when the app starts, close connections when it stops:
        `FastAPI(lifespan=auth.lifespan)`."""
        await self.sessions.open()
        check = None
        if self.settings.auth_startup_check:
            check = asyncio.create_task(self.check_provider())
        try:
            yield
        finally:
            if check is not None:
                check.cancel()
            await self.aclose()

    async def check_provider(self) -> bool:
        """Fetch the provider's discovery document (started in the background when the app
        starts): a wrong `AUTH0_DOMAIN` or an unreachable provider shows in the log at
        once, not at the first login. The app starts either way."""
        try:
            metadata = await self.provider.metadata()
        except ProviderError as exc:
            logger.warning(
                "auth.provider_check_failed issuer=%r: %s Logins fail until it answers.",
                self.settings.issuer,
                exc.message,
            )
            return False
        logger.info("auth.provider_ready issuer=%r", metadata.issuer)
        return True

    async def aclose(self) -> None:
        try:
            await self.provider.aclose()
        finally:
            await self.sessions.aclose()


# The middleware puts the app's Auth into each request's ASGI scope under this key:
# reading it there is cheaper than `request.app.state.auth` on every request.
AUTH_SCOPE_KEY = "app.auth.Auth"


def get_auth(request: Request) -> Auth:
    auth: Auth | None = request.scope.get(AUTH_SCOPE_KEY)
    if auth is None:  # a request that did not pass the middleware (e.g. a WebSocket)
        auth = request.app.state.auth
    return auth
