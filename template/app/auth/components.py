"""The auth components of one app, built once from settings."""

from dataclasses import dataclass

import httpx
from fastapi import Request

from app.auth.client import OidcClient
from app.auth.sessions import SessionLifetime, SessionStore
from app.auth.stores.cookie import CookieSessionStore
from app.auth.transactions import TransactionCookies
from app.config import Settings


@dataclass(frozen=True, slots=True)
class Auth:
    settings: Settings
    client: OidcClient
    lifetime: SessionLifetime
    sessions: SessionStore
    transactions: TransactionCookies

    @classmethod
    def from_settings(
        cls, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> "Auth":
        lifetime = SessionLifetime(
            inactivity=settings.session_inactivity_duration,
            absolute=settings.session_absolute_duration,
        )
        secrets, secure = settings.session_secrets, settings.secure_cookies
        return cls(
            settings=settings,
            client=OidcClient(settings, transport=transport),
            lifetime=lifetime,
            sessions=CookieSessionStore(secrets, lifetime, secure=secure),
            transactions=TransactionCookies(secrets, secure=secure),
        )


def get_auth(request: Request) -> Auth:
    return request.app.state.auth  # type: ignore[no-any-return]
