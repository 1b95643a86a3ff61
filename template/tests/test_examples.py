"""How to test your own routes: one example per testing tool. Copy the pattern you need.

Tools (see README, "Testing your routes"): the `client` (anonymous), `logged_in` and
`login_as` fixtures; `install_session(client, make_session(...))` to skip the login
flow; and the fake provider's knobs (`provider.token_ttl`, `forget_refresh_tokens()`,
`rotate_keys()`, `reachable`, `send_backchannel_logout(...)`).
"""

import time
from collections.abc import Callable
from dataclasses import replace

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.testclient import TestClient

from app.auth import AuthDep, Session, require_roles
from app.auth.sessions import AccessToken
from app.auth.urls import LOGIN_PATH
from devserver.provider import FakeProvider
from tests.helpers import PROFILE, install_session, log_in, make_session, send_backchannel_logout


def test_an_anonymous_visitor_is_sent_to_log_in(client: TestClient) -> None:
    response = client.get("/profile", headers={"accept": "text/html"})

    assert response.status_code == 303
    assert response.headers["location"].startswith(LOGIN_PATH)


def test_a_user_with_chosen_claims(login_as: Callable[..., TestClient]) -> None:
    client = login_as("bob", name="Bob Builder", roles=["admin"])

    assert "Bob Builder" in client.get("/profile").text


def test_a_session_without_the_login_flow(client: TestClient) -> None:
    install_session(client, make_session(user={"sub": "carol", "name": "Carol"}))

    assert client.get(PROFILE).json() == {"sub": "carol", "name": "Carol"}


def test_an_expired_access_token_is_refreshed(client: TestClient, provider: FakeProvider) -> None:
    log_in(client, provider)  # real tokens, known to the provider
    session = make_session(
        id_token=provider.issued[-1]["id_token"],  # a refresh's ID token must match it
        refresh_token=provider.issued[-1]["refresh_token"],
        access_tokens=(AccessToken("expired", int(time.time()) - 10, "openid", None),),
    )
    install_session(client, session)

    assert client.get("/api-example").status_code == 200
    assert provider.token_requests[-1]["grant_type"] == "refresh_token"


def test_a_refresh_the_provider_refuses(client: TestClient, provider: FakeProvider) -> None:
    provider.token_ttl = 30  # access tokens that need a refresh at their first use
    log_in(client, provider)
    provider.forget_refresh_tokens()

    assert client.get("/api-example", headers={"accept": "application/json"}).status_code == 401


def test_signing_keys_rotate(logged_in: TestClient, provider: FakeProvider) -> None:
    provider.rotate_keys()

    assert log_in(logged_in, provider, "dave").status_code == 303


def test_a_back_channel_logout(logged_in: TestClient, provider: FakeProvider) -> None:
    assert send_backchannel_logout(logged_in, provider, sub="alice").status_code == 200

    assert logged_in.get(PROFILE).status_code == 401


def test_the_provider_is_down(client: TestClient, provider: FakeProvider) -> None:
    provider.reachable = "refused"

    assert client.get(LOGIN_PATH).status_code == 503


def test_a_route_that_changes_the_session(app: FastAPI, logged_in: TestClient) -> None:
    router = APIRouter()  # as in README, "At login, and later"

    @router.post("/preferences/theme")
    async def set_theme(request: Request, theme: str, auth: AuthDep) -> None:
        def with_theme(session: Session) -> Session:
            return replace(session, user={**session.user, "theme": theme})

        await auth.sessions.change(request, with_theme)

    app.include_router(router)

    assert logged_in.post("/preferences/theme", params={"theme": "dark"}).status_code == 200
    assert logged_in.get(PROFILE).json()["theme"] == "dark"


def test_a_route_for_admins_only(app: FastAPI, login_as: Callable[..., TestClient]) -> None:
    router = APIRouter()  # as in README, "Roles, permissions, conditions"

    @router.get("/admin", dependencies=[Depends(require_roles("admin"))])
    async def admin() -> dict[str, str]:
        return {"hello": "admin"}

    app.include_router(router)

    assert login_as("carol").get("/admin").status_code == 403
    assert login_as("bob", roles=["admin"]).get("/admin").json() == {"hello": "admin"}
