"""What the database holds: encrypted rows under hashed ids, purged after they expire."""

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, select, text, update
from sqlalchemy.ext.asyncio import create_async_engine

from app.auth.session_cookie import SESSION_COOKIE
from app.auth.stores.sql import PURGE_INTERVAL, SqlSessionStore, sessions_table
from devserver.provider import FakeProvider
from tests.conftest import make_settings
from tests.helpers import (
    PROFILE,
    assert_a_refused_logout_can_be_retried,
    auth_of,
    install_session,
    log_in,
    make_session,
    post_logout,
)


def rows(client: TestClient) -> list[dict[str, Any]]:
    store = auth_of(client).sessions.store
    assert isinstance(store, SqlSessionStore) and client.portal is not None

    async def fetch() -> list[dict[str, Any]]:
        async with store.database.engine.connect() as connection:
            result = await connection.execute(select(sessions_table))
            return [dict(row._mapping) for row in result]

    return client.portal.call(fetch)


def test_rows_are_encrypted_and_keyed_by_a_hash_of_the_id(logged_in: TestClient) -> None:
    session_id = logged_in.cookies[SESSION_COOKIE]
    [row] = [
        r for r in rows(logged_in) if r["id"] == hashlib.sha256(session_id.encode()).hexdigest()
    ]

    assert row["sub"] == "alice"
    assert row["data"].count(".") == 4 and "alice" not in row["data"]
    assert not any(session_id in str(value) for value in row.values())


def test_a_row_copied_over_another_users_is_refused(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    alice, bob = client_for(), client_for()
    log_in(alice, provider, "alice")
    log_in(bob, provider, "bob")
    alice_id, bob_id = (
        hashlib.sha256(c.cookies[SESSION_COOKIE].encode()).hexdigest() for c in (alice, bob)
    )
    [bob_row] = [r for r in rows(bob) if r["id"] == bob_id]

    # Without the secret, an attacker with write access to the table copies Bob's data
    # over Alice's row: Alice's cookie must not become Bob's session.
    store = auth_of(alice).sessions.store
    assert isinstance(store, SqlSessionStore) and alice.portal is not None

    async def copy() -> None:
        async with store.database.engine.begin() as connection:
            statement = update(sessions_table).where(sessions_table.c.id == alice_id)
            await connection.execute(statement.values(data=bob_row["data"]))

    alice.portal.call(copy)
    assert alice.get(PROFILE).status_code == 401
    assert bob.get(PROFILE).json()["sub"] == "bob"


def test_expired_rows_are_purged(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    old = int(time.time()) - auth_of(client).settings.session_absolute_duration - 24 * 3600
    install_session(client, make_session(user={"sub": "expired"}, created_at=old, touched_at=old))
    assert any(r["sub"] == "expired" for r in rows(client))

    store = auth_of(client).sessions.store
    monkeypatch.setattr(store, "_purged_at", time.monotonic() - PURGE_INTERVAL)
    install_session(client, make_session(user={"sub": "fresh"}))

    assert {r["sub"] for r in rows(client)} >= {"fresh"}
    assert not any(r["sub"] == "expired" for r in rows(client))


@pytest.mark.parametrize("exp", [True, False])
def test_a_purge_keeps_the_logout_tokens_that_could_still_be_replayed(
    logged_in: TestClient, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch, exp: bool
) -> None:
    token = provider.logout_token(sub="alice", **({} if exp else {"exp": None}))
    assert post_logout(logged_in, token).status_code == 200

    store = auth_of(logged_in).sessions.store
    monkeypatch.setattr(store, "_purged_at", time.monotonic() - PURGE_INTERVAL)
    install_session(logged_in, make_session(user={"sub": "fresh"}))  # a write: the purge runs

    assert post_logout(logged_in, token).status_code == 400


def test_the_tables_have_the_documented_names(logged_in: TestClient) -> None:
    assert logged_in.portal is not None

    async def names() -> set[str]:
        engine = create_async_engine(auth_of(logged_in).settings.database_url)
        async with engine.connect() as connection:
            found = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        await engine.dispose()
        return set(found)

    tables = {
        "auth_sessions",
        "auth_refresh_locks",
        "auth_logout_tokens",
        "auth_ended_provider_sessions",
    }
    assert tables <= logged_in.portal.call(names)


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("sqlite:///./sessions.db", "sqlite+aiosqlite:///./sessions.db"),
        ("postgresql://u:p@db/app", "postgresql+asyncpg://u:p@db/app"),
        ("postgres://u:p@db/app", "postgresql+asyncpg://u:p@db/app"),
        ("postgresql+asyncpg://u:p@db/app", "postgresql+asyncpg://u:p@db/app"),
    ],
)
def test_database_urls_get_async_drivers(provider: FakeProvider, given: str, used: str) -> None:
    assert make_settings(provider, database_url=given).database_url == used


def execute(client: TestClient, statement: str) -> None:
    """Run `statement` on the app's database, through a connection of the test's own."""
    assert client.portal is not None

    async def run() -> None:
        engine = create_async_engine(auth_of(client).settings.database_url)
        async with engine.begin() as connection:
            await connection.execute(text(statement))
        await engine.dispose()

    client.portal.call(run)


def test_a_logout_that_cannot_be_carried_out_can_be_retried(
    logged_in: TestClient, provider: FakeProvider
) -> None:
    @contextmanager
    def refusing() -> Iterator[TestClient]:  # the sessions table is gone for a while
        execute(logged_in, "ALTER TABLE auth_sessions RENAME TO auth_sessions_away")
        yield logged_in
        execute(logged_in, "ALTER TABLE auth_sessions_away RENAME TO auth_sessions")

    assert_a_refused_logout_can_be_retried(logged_in, provider, refusing())
