"""Server-side sessions: an opaque id in the cookie, the session in the store."""

import asyncio
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any, Protocol, cast

import pytest
from fastapi import Request
from fastapi.testclient import TestClient

from app.auth.session_cookie import SESSION_COOKIE
from app.auth.stores.base import LostLock
from app.auth.tokens import TokenSet
from app.auth.urls import AUTH_PREFIX
from devserver.provider import FakeProvider
from tests.conftest import ELSEWHERE_WITHIN
from tests.helpers import (
    APP_URL,
    LOGOUT,
    PROFILE,
    auth_of,
    install_session,
    log_in,
    make_session,
    replace_cookie,
    stored_session,
)

SESSIONS = f"{AUTH_PREFIX}/sessions"


class EndsSessions(Protocol):
    async def end_sessions(self, *, sub: str | None = None, sid: str | None = None) -> int: ...


def request_with(cookies: dict[str, str]) -> Request:
    header = "; ".join(f"{name}={value}" for name, value in cookies.items())
    return Request({"type": "http", "headers": [(b"cookie", header.encode())]})


def test_the_cookie_holds_only_an_opaque_random_id(logged_in: TestClient) -> None:
    value = logged_in.cookies[SESSION_COOKIE]

    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", value)  # 256 random bits
    assert logged_in.get(PROFILE).json()["sub"] == "alice"


def test_cookies_left_by_the_cookie_store_go_at_login(
    client: TestClient, provider: FakeProvider
) -> None:
    for name in (
        f"{SESSION_COOKIE}.0",
        f"{SESSION_COOKIE}.1",
    ):  # a project that used session_store=cookie
        replace_cookie(client, name, "stale chunk")

    response = log_in(client, provider)

    removed = [line.split("=")[0] for line in response.headers.get_list("set-cookie")
               if "Max-Age=0" in line and line.startswith(SESSION_COOKIE)]  # fmt: skip
    assert sorted(removed) == [f"{SESSION_COOKIE}.0", f"{SESSION_COOKIE}.1"]
    assert [c.name for c in client.cookies.jar if c.name.startswith(SESSION_COOKIE)] == [
        SESSION_COOKIE
    ]


def test_logout_is_final_for_a_copied_cookie(logged_in: TestClient) -> None:
    copied = logged_in.cookies[SESSION_COOKIE]
    logged_in.get(LOGOUT)

    replace_cookie(logged_in, SESSION_COOKIE, copied)
    assert logged_in.get(PROFILE).status_code == 401


def test_a_new_login_retires_the_previous_session(
    client: TestClient, provider: FakeProvider
) -> None:
    log_in(client, provider, "alice")
    previous = client.cookies[SESSION_COOKIE]
    log_in(client, provider, "alice")

    assert client.cookies[SESSION_COOKIE] != previous
    replace_cookie(client, SESSION_COOKIE, previous)
    assert client.get(PROFILE).status_code == 401


def test_a_renewal_racing_a_logout_does_not_revive_the_session(client: TestClient) -> None:
    install_session(client, make_session(touched_at=int(time.time()) - 400))
    sessions = auth_of(client).sessions
    key = client.cookies[SESSION_COOKIE]

    async def race() -> None:
        read = await sessions.store.read(key)  # a request reads the session ...
        assert read is not None
        await sessions.end(request_with({SESSION_COOKIE: key}))  # ... another logs out ...
        touched = sessions.lifetime.touched(read.session, int(time.time()))
        assert await sessions.store.replace(read, touched) is None  # ... the renewal fails

    assert client.portal is not None
    client.portal.call(race)
    assert client.get(PROFILE).status_code == 401


def test_two_app_instances_share_sessions(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    first, second = client_for(), client_for()
    log_in(first, provider)
    replace_cookie(second, SESSION_COOKIE, first.cookies[SESSION_COOKIE])

    assert second.get(PROFILE).json()["sub"] == "alice"
    second.get(LOGOUT)
    assert first.get(PROFILE).status_code == 401


def test_sessions_end_by_user_and_by_provider_session(
    client_for: Callable[..., TestClient],
) -> None:
    run = uuid.uuid4().hex  # the store may be shared with other tests (DATABASE_URL)
    alice, bob, carol, a, b = (f"{name}-{run}" for name in ("alice", "bob", "carol", "a", "b"))
    sessions = {
        "alice-a": make_session(user={"sub": alice}, sid=a),
        "alice-b": make_session(user={"sub": alice}, sid=b),
        "bob-a": make_session(user={"sub": bob}, sid=a),
        "carol": make_session(user={"sub": carol}, sid=None),
    }
    clients = {name: client_for() for name in sessions}
    for name, session in sessions.items():
        install_session(clients[name], session)
    store = cast(EndsSessions, auth_of(clients["carol"]).sessions)

    def end(**which: str) -> int:
        portal = clients["carol"].portal
        assert portal is not None
        return portal.call(partial(store.end_sessions, **which))

    def alive() -> set[str]:
        time.sleep(ELSEWHERE_WITHIN)  # each client is another app instance
        return {name for name, c in clients.items() if c.get(PROFILE).status_code == 200}

    assert end(sid=a, sub=alice) == 1
    assert alive() == {"alice-b", "bob-a", "carol"}
    assert end(sid=a) == 1
    assert alive() == {"alice-b", "carol"}
    assert end(sub=alice) == 1
    assert alive() == {"carol"}
    assert end(sub=f"nobody-{run}") == 0


def test_an_unreachable_store_answers_503_not_a_logout(
    client_for: Callable[..., TestClient],
    unreachable_store: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = client_for(**unreachable_store)
    replace_cookie(client, SESSION_COOKIE, "A" * 43)

    api = client.get(PROFILE)
    assert api.status_code == 503
    assert api.json()["error"] == "session_store_unavailable"
    assert any(
        record.name == "app.auth" and record.getMessage().startswith("auth.store_unavailable")
        for record in caplog.records
    )
    page = client.get("/profile", headers={"accept": "text/html"})
    assert page.status_code == 503
    assert "Sessions are unavailable" in page.text
    assert not [line for line in api.headers.get_list("set-cookie") if SESSION_COOKIE in line]


def test_a_user_sees_their_own_sessions_and_ends_one_by_its_id(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    alice = f"alice-{uuid.uuid4().hex}"  # the store may be shared with other tests
    here, phone, bob = client_for(), client_for(), client_for()
    log_in(here, provider, alice)
    phone.headers["user-agent"] = "Phone Browser/1.0"
    log_in(phone, provider, alice)
    log_in(bob, provider, "bob")

    listed = here.get(SESSIONS)

    assert listed.status_code == 200
    assert listed.headers["cache-control"] == "no-store"
    by_agent = {entry["user_agent"]: entry for entry in listed.json()}
    assert set(by_agent) == {"testclient", "Phone Browser/1.0"}
    assert by_agent["testclient"]["current"] is True
    assert by_agent["Phone Browser/1.0"]["current"] is False
    assert set(by_agent["testclient"]) == {
        "id", "created_at", "last_seen_at", "user_agent", "current"
    }  # fmt: skip
    assert here.cookies[SESSION_COOKIE] not in listed.text

    phone_id = by_agent["Phone Browser/1.0"]["id"]
    same_origin = {"origin": APP_URL}
    assert bob.post(f"{SESSIONS}/{phone_id}/end", headers=same_origin).status_code == 404
    assert phone.get(PROFILE).status_code == 200  # not Bob's to end
    assert here.post(f"{SESSIONS}/{phone_id}/end", headers=same_origin).status_code == 204
    assert phone.get(PROFILE).status_code == 401
    assert [e["user_agent"] for e in here.get(SESSIONS).json()] == ["testclient"]
    assert here.post(f"{SESSIONS}/{phone_id}/end", headers=same_origin).status_code == 404


def test_a_renewal_during_a_refresh_keeps_the_rotated_refresh_token(
    client: TestClient, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider.token_ttl = 30  # access tokens within the refresh leeway: every use refreshes
    log_in(client, provider)
    auth = auth_of(client)
    key = client.cookies[SESSION_COOKIE]
    before = stored_session(client)
    assert before is not None
    renewed_at = int(time.time()) + 5
    refresh = auth.client.refresh

    async def refresh_while_another_instance_renews(
        *args: Any, **kwargs: Any
    ) -> tuple[TokenSet, dict[str, Any] | None]:
        answer = await refresh(*args, **kwargs)
        # Another instance renews the session (rolling expiry) while the provider answers.
        read = await auth.sessions.store.read(key)
        assert read is not None
        renewed = replace(read.session, touched_at=renewed_at)
        assert await auth.sessions.store.replace(read, renewed) is not None
        return answer

    monkeypatch.setattr(auth.client, "refresh", refresh_while_another_instance_renews)
    assert client.get("/api-example").status_code == 200

    after = stored_session(client)
    assert after is not None
    assert after.refresh_token not in (None, before.refresh_token)  # the rotation is kept
    assert after.touched_at == renewed_at  # and so is the renewal


def test_a_change_that_would_outlive_its_lock_is_stopped_and_writes_nothing(
    client: TestClient, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider.token_ttl = 30
    log_in(client, provider)
    auth = auth_of(client)
    before = stored_session(client)
    monkeypatch.setattr(auth.sessions, "lock_ttl", 0.5)
    refresh = auth.client.refresh

    async def slow_refresh(*args: Any, **kwargs: Any) -> tuple[TokenSet, dict[str, Any] | None]:
        await asyncio.sleep(1)  # longer than the lock lives
        return await refresh(*args, **kwargs)

    monkeypatch.setattr(auth.client, "refresh", slow_refresh)
    assert client.get("/api-example").status_code == 504
    assert stored_session(client) == before


def test_the_session_lock_outlives_the_slowest_provider_call(
    client_for: Callable[..., TestClient],
) -> None:
    auth = auth_of(client_for(auth0_timeout=60))
    # discovery, token and keys requests, each up to AUTH0_TIMEOUT
    assert auth.sessions.lock_ttl > 3 * 60


def test_a_write_under_a_lock_that_expired_is_refused(logged_in: TestClient) -> None:
    auth = auth_of(logged_in)
    store = auth.sessions.store
    key = logged_in.cookies[SESSION_COOKIE]

    async def write_after_the_lock_expired() -> None:
        read = await store.read(key)
        assert read is not None
        async with store.lock(key, read.session, ttl=1) as fence:
            await asyncio.sleep(1.2)  # the lock expires: another request may take it
            async with store.lock(key, read.session, ttl=5):
                with pytest.raises(LostLock):
                    await store.replace(read, replace(read.session, sid="late"), fence=fence)

    assert logged_in.portal is not None
    logged_in.portal.call(write_after_the_lock_expired)
    session = stored_session(logged_in)
    assert session is not None and session.sid != "late"
