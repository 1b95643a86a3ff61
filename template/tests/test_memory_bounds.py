"""Memory stays bounded however many users pass through one process: what the auth code
keeps in memory has a limit, or lives only while a request needs it."""

import asyncio
import secrets

import httpx
from fastapi.testclient import TestClient

from app.auth.core import Auth
from app.auth.sessions import SessionCodec
from app.main import create_app
from devserver.provider import FakeProvider
from tests.conftest import make_settings
from tests.helpers import APP_URL, log_in, make_session


def test_decrypted_sessions_kept_in_memory_are_bounded() -> None:
    codec = SessionCodec([secrets.token_urlsafe(32)], cache_size=8)
    values = [codec.encode(make_session()) for _ in range(20)]
    decoded = [codec.decode(value) for value in values]

    # The last eight are remembered (decoding them again gives the very same sessions) ...
    assert all(codec.decode(v) is s for v, s in zip(values[12:], decoded[12:], strict=True))
    # ... the others were let go, and are decrypted again when they come back.
    again = codec.decode(values[0])
    assert again == decoded[0] and again is not decoded[0]


def test_refreshes_and_locks_live_only_while_requests_need_them(
    client: TestClient, provider: FakeProvider
) -> None:
    provider.token_ttl = 30  # within the refresh leeway: every use refreshes
    logins = []
    for _ in range(3):
        client.cookies.clear()
        log_in(client, provider)
        logins.append(dict(client.cookies.items()))
    app = create_app(make_settings(provider), provider_transport=provider.transport)
    auth = app.state.auth
    assert isinstance(auth, Auth)

    async def ten_requests_per_login() -> None:
        transport = httpx.ASGITransport(app=app)
        async with app.router.lifespan_context(app):
            for cookies in logins:
                async with httpx.AsyncClient(
                    transport=transport, base_url=APP_URL, cookies=cookies
                ) as http:
                    pages = await asyncio.gather(*(http.get("/api-example") for _ in range(10)))
                assert [page.status_code for page in pages] == [200] * 10

            assert auth.tokens._flights == {}  # private, but what this test is about
            assert auth.sessions._local_locks == {}

    asyncio.run(ten_requests_per_login())
    assert sum(form.get("grant_type") == "refresh_token" for form in provider.token_requests) >= 3
