"""What the database holds: encrypted rows under hashed ids, purged after they expire; and
the in-memory copies of them that the change log keeps current (app/auth/stores/sql_cache.py)."""

import asyncio
import hashlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, inspect, select, text, update
from sqlalchemy.ext.asyncio import create_async_engine

from app.auth.session_cookie import SESSION_COOKIE
from app.auth.stores.sql import PURGE_INTERVAL, SqlSessionStore, sessions_table
from app.auth.stores.sql_cache import POLL_INTERVAL, TRUST_WINDOW
from devserver.provider import FakeProvider
from tests.conftest import make_settings
from tests.helpers import (
    LOGOUT,
    PROFILE,
    assert_a_refused_logout_can_be_retried,
    auth_of,
    install_session,
    log_in,
    log_in_each,
    make_session,
    post_logout,
    replace_cookie,
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


def test_a_long_read_of_a_sqlite_file_does_not_stop_logins(
    client_for: Callable[..., TestClient], provider: FakeProvider, tmp_path: Path
) -> None:
    """A report or a backup reading the SQLite file (a read transaction held open) while
    people log in: the write-ahead log lets the logins write meanwhile."""
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    assert log_in(client_for(database_url=url), provider).status_code == 303  # the tables
    with closing(sqlite3.connect(tmp_path / "busy.db", isolation_level=None)) as reader:
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM auth_sessions").fetchone() == (1,)

        client = client_for(database_url=url, database_timeout=0.5)
        assert log_in(client, provider, "bob").status_code == 303
        assert client.get(PROFILE).json()["sub"] == "bob"


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


def execute(client: TestClient, statement: str, **values: Any) -> None:
    """Run `statement` on the app's database, through a connection of the test's own."""
    assert client.portal is not None

    async def run() -> None:
        engine = create_async_engine(auth_of(client).settings.database_url)
        async with engine.begin() as connection:
            await connection.execute(text(statement), values)
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


def sql_store(client: TestClient) -> SqlSessionStore:
    store = auth_of(client).sessions.store
    assert isinstance(store, SqlSessionStore)
    return store


def counting_reads(client: TestClient) -> list[str]:
    """The statements that read `auth_sessions` from now on, on the app's own engine."""
    seen: list[str] = []

    def on_execute(*args: Any) -> None:
        if "FROM auth_sessions" in args[2]:
            seen.append(args[2])

    event.listen(sql_store(client).database.engine.sync_engine, "before_cursor_execute", on_execute)
    return seen


def wait_until_cached(client: TestClient, reads: list[str]) -> None:
    """Until a request of `client` is served without reading the database (the first
    read starts the cache's polls, later ones fill it)."""
    deadline = time.monotonic() + 5
    while True:
        before = len(reads)
        assert client.get(PROFILE).status_code == 200
        if len(reads) == before:
            return
        assert time.monotonic() < deadline, "the session is never served from memory"
        time.sleep(0.02)


def record_of(client: TestClient) -> str:
    return hashlib.sha256(client.cookies[SESSION_COOKIE].encode()).hexdigest()


def test_a_session_in_use_is_read_from_memory(logged_in: TestClient) -> None:
    reads = counting_reads(logged_in)
    wait_until_cached(logged_in, reads)
    before = len(reads)

    for _ in range(20):
        assert logged_in.get(PROFILE).json()["sub"] == "alice"
    assert len(reads) == before


def test_without_the_cache_every_request_reads_the_database(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    client = client_for(database_cache_size=0)
    log_in(client, provider)
    reads = counting_reads(client)

    for _ in range(5):
        assert client.get(PROFILE).status_code == 200
    assert len(reads) == 5


def test_the_cache_keeps_at_most_its_size(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    client = client_for(database_cache_size=1)
    cookies = log_in_each(client, provider, "alice", "bob")
    reads = counting_reads(client)
    wait_until_cached(client, reads)  # Bob's
    replace_cookie(client, SESSION_COOKIE, cookies["alice"])
    wait_until_cached(client, reads)  # Alice's, in place of Bob's: one fits

    before = len(reads)
    for user in ("bob", "alice", "bob", "alice"):
        replace_cookie(client, SESSION_COOKIE, cookies[user])
        assert client.get(PROFILE).json()["sub"] == user
    assert len(reads) == before + 4


def test_a_logout_holds_at_once_on_its_instance_and_within_the_window_on_the_others(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    first, second = client_for(), client_for()  # two app processes sharing the database
    first_reads, second_reads = counting_reads(first), counting_reads(second)
    for attempt in range(3):
        log_in(first, provider)
        cookie = first.cookies[SESSION_COOKIE]
        replace_cookie(second, SESSION_COOKIE, cookie)
        wait_until_cached(first, first_reads)
        wait_until_cached(second, second_reads)

        assert second.get(LOGOUT).status_code in (302, 303)
        replace_cookie(second, SESSION_COOKIE, cookie)  # a copy of the cookie, sent again
        assert second.get(PROFILE).status_code == 401, f"attempt {attempt}"
        time.sleep(TRUST_WINDOW)
        assert first.get(PROFILE).status_code == 401, f"attempt {attempt}"


def test_a_session_replaced_on_another_instance_is_read_again_within_the_window(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    first, second = client_for(), client_for()
    log_in(first, provider)
    replace_cookie(second, SESSION_COOKIE, first.cookies[SESSION_COOKIE])
    wait_until_cached(first, counting_reads(first))

    store, portal = sql_store(second), second.portal
    assert portal is not None
    stored = portal.call(store.read, second.cookies[SESSION_COOKIE])
    assert stored is not None
    renamed = replace(stored.session, user={**stored.session.user, "name": "Alice Renamed"})
    assert portal.call(store.replace, stored, renamed) is not None

    assert second.get(PROFILE).json()["name"] == "Alice Renamed"  # its own change: at once
    time.sleep(TRUST_WINDOW)
    assert first.get(PROFILE).json()["name"] == "Alice Renamed"


def test_a_row_deleted_by_hand_with_a_change_row_ends_the_session_within_the_window(
    logged_in: TestClient,
) -> None:
    wait_until_cached(logged_in, counting_reads(logged_in))
    record = record_of(logged_in)

    execute(logged_in, "DELETE FROM auth_sessions WHERE id = :record", record=record)
    execute(
        logged_in,
        "INSERT INTO auth_session_changes (record, changed_at) VALUES (:record, 0)",
        record=record,
    )
    time.sleep(TRUST_WINDOW)
    assert logged_in.get(PROFILE).status_code == 401


def test_a_failing_poll_stops_the_use_of_the_cache(
    logged_in: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    wait_until_cached(logged_in, counting_reads(logged_in))

    # The change log cannot be read: a change would go unseen, so the copies must not be used.
    execute(logged_in, "ALTER TABLE auth_session_changes RENAME TO auth_session_changes_away")
    try:
        execute(logged_in, "DELETE FROM auth_sessions WHERE id = :id", id=record_of(logged_in))
        time.sleep(TRUST_WINDOW)
        assert logged_in.get(PROFILE).status_code == 401
        assert "auth.sql_cache_off error=" in caplog.text
    finally:
        execute(logged_in, "ALTER TABLE auth_session_changes_away RENAME TO auth_session_changes")


@contextmanager
def change_log_held(url: str) -> Iterator[None]:
    """Another process holds the change log (SQLite: the whole file, for writing) until the
    block ends."""
    if url.startswith("sqlite"):
        with closing(sqlite3.connect(url.partition(":///")[2], isolation_level=None)) as other:
            other.execute("BEGIN EXCLUSIVE")  # a write: readers go on (write-ahead log)
            yield
            other.execute("ROLLBACK")
        return
    locked, release = threading.Event(), threading.Event()

    async def hold() -> None:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    text("LOCK TABLE auth_session_changes IN ACCESS EXCLUSIVE MODE")
                )
                locked.set()
                await asyncio.to_thread(release.wait, 10)
        finally:
            await engine.dispose()

    holder = threading.Thread(target=asyncio.run, args=(hold(),))
    holder.start()
    try:
        assert locked.wait(10), "the change log was not locked"
        yield
    finally:
        release.set()
        holder.join()


def test_a_hung_poll_stops_the_use_of_the_cache_within_the_window(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    """PostgreSQL: another process locks the change log, the next poll waits (and fails no
    query). SQLite's write-ahead log never makes a poll wait: there, a write held open
    elsewhere changes nothing."""
    client = client_for(database_timeout=2)
    url = auth_of(client).settings.database_url
    log_in(client, provider)
    reads = counting_reads(client)
    wait_until_cached(client, reads)

    with change_log_held(url):
        time.sleep(TRUST_WINDOW + POLL_INTERVAL)
        before = len(reads)
        answer = client.get(PROFILE)
        assert answer.status_code == 200  # PostgreSQL: the sessions table was free
        if url.startswith("sqlite"):
            assert len(reads) == before  # polls went on: the copy is still trusted
        else:
            assert len(reads) == before + 1  # the copy was not used: the database was asked
    assert client.get(PROFILE).status_code == 200


def test_a_change_log_that_went_backwards_empties_the_cache(
    client_for: Callable[..., TestClient], provider: FakeProvider, logged_in: TestClient
) -> None:
    other = client_for()
    log_in(other, provider, "bob")
    assert other.get(LOGOUT).status_code in (302, 303)  # a change row: there is a newest one
    wait_until_cached(logged_in, counting_reads(logged_in))
    time.sleep(3 * POLL_INTERVAL)  # the newest change has been seen

    execute(logged_in, "DELETE FROM auth_session_changes")  # emptied, e.g. by a restore
    execute(logged_in, "DELETE FROM auth_sessions WHERE id = :id", id=record_of(logged_in))
    time.sleep(TRUST_WINDOW)
    assert logged_in.get(PROFILE).status_code == 401


def test_a_purge_keeps_the_newest_changes(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    for record, changed_at in (("old-1", 1), ("old-2", 2), ("new", int(time.time()))):
        execute(
            client,
            "INSERT INTO auth_session_changes (record, changed_at) VALUES (:record, :at)",
            record=record,
            at=changed_at,
        )

    monkeypatch.setattr(sql_store(client), "_purged_at", time.monotonic() - PURGE_INTERVAL)
    install_session(client, make_session(user={"sub": "fresh"}))  # a write: the purge runs

    assert changed_records(client) == ["old-2", "new"]  # the newest old one stays: see sql_cache


def changed_records(client: TestClient) -> list[str]:
    assert client.portal is not None

    async def fetch() -> list[str]:
        async with sql_store(client).database.engine.connect() as connection:
            result = await connection.execute(
                text("SELECT record FROM auth_session_changes ORDER BY id")
            )
            return [row[0] for row in result]

    return client.portal.call(fetch)
