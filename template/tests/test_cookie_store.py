"""Cookie sessions: the whole session travels encrypted in chunked cookies; logouts are
recorded in a SQLite file or, with REDIS_URL, in Redis."""

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import replace
from functools import partial
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from joserfc import jwe
from redis import Redis

from app.auth import get_access_token, policy
from app.auth.cookies import MAX_CHUNKS, CookieCipher, derive_key
from app.auth.session_cookie import SESSION_COOKIE
from app.auth.sessions import Session
from app.auth.stores.cookie import CookieSessionStore
from app.auth.stores.logouts_sqlite import PURGE_INTERVAL, SqliteLogoutRecords
from app.auth.tokens import CLOCK_LEEWAY, TokenSet
from app.auth.urls import AUTH_PREFIX, CALLBACK_PATH
from app.config import Settings
from devserver.provider import FakeProvider
from tests.conftest import SESSION_SECRET
from tests.helpers import (
    LOGOUT,
    PROFILE,
    assert_a_refused_logout_can_be_retried,
    auth_of,
    claims_of,
    install_session,
    log_in,
    make_session,
    post_logout,
    replace_cookie,
    send_backchannel_logout,
    session_cookies,
)
from tests.redis_tools import (
    assert_a_hung_redis_is_noticed,
    assert_refused_tracking_means_no_cache,
    assert_the_cache_connects_as_the_configured_user,
    calls,
    redis_user,
    set_keys,
    tracking_connections,
    wait_for_log,
    wait_until_cached,
)

OTHER_SECRET = "Zq3vN8pXw2LrT6yB1mKc9HdJ4sFg7QaE"


def current_payload(client: TestClient, settings: Settings) -> dict[str, Any]:
    payload = CookieCipher(settings.session_secrets, "session").decrypt(
        client.cookies[SESSION_COOKIE]
    )
    assert payload is not None
    return payload


def test_large_sessions_are_chunked_and_stale_chunks_removed(
    client: TestClient, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(policy, "SESSION_CLAIMS", (*policy.SESSION_CLAIMS, "bio"))
    provider.id_token_claims = {"bio": "x" * 5000}

    response = log_in(client, provider)

    lines = session_cookies(response)
    assert len(lines) > 2
    assert all(
        len(f"Set-Cookie: {line}") <= 4096 for line in response.headers.get_list("set-cookie")
    )
    assert client.get(PROFILE).json()["bio"] == "x" * 5000

    provider.id_token_claims = {}
    smaller = log_in(client, provider, "bob")

    deleted = {
        line.split("=")[0]
        for line in smaller.headers.get_list("set-cookie")
        if "Max-Age=0" in line and line.startswith(SESSION_COOKIE)
    }
    assert deleted == {f"{SESSION_COOKIE}.{i}" for i in range(len(lines))}
    remaining = {c.name for c in client.cookies.jar if c.name.startswith(SESSION_COOKIE)}
    assert remaining == {SESSION_COOKIE}
    assert client.get(PROFILE).json()["sub"] == "bob"


def test_tokens_of_the_apis_used_longest_ago_make_room_in_a_full_cookie(
    client: TestClient, provider: FakeProvider, app: FastAPI
) -> None:
    @app.get("/apis/{number}")
    async def call_api(request: Request, number: int) -> dict[str, str | None]:
        token = await get_access_token(request, audience=f"https://api{number}.example")
        return {"token": token.token}

    log_in(client, provider)
    provider.token_response = {"access_token": "x" * 11_000}  # large tokens, as some APIs have
    for number in range(6):  # more than 16 cookies' worth of them
        assert client.get(f"/apis/{number}").status_code == 200
        chunks = [c for c in client.cookies.jar if c.name.startswith(SESSION_COOKIE)]
        assert 0 < len(chunks) <= MAX_CHUNKS

    refreshes = len(provider.token_requests)
    assert client.get("/apis/5").status_code == 200  # the newest is kept
    assert len(provider.token_requests) == refreshes
    assert client.get("/apis/0").status_code == 200  # the oldest made room: refreshed again
    assert len(provider.token_requests) == refreshes + 1
    assert client.get(PROFILE).json()["sub"] == "alice"


def test_a_session_of_sixteen_cookies_is_kept(client: TestClient) -> None:
    for size in range(40_000, 50_000, 500):  # a session that needs all MAX_CHUNKS cookies
        install_session(client, make_session(user={"sub": "alice", "bio": "x" * size}))
        chunks = [c for c in client.cookies.jar if c.name.startswith(f"{SESSION_COOKIE}.")]
        if len(chunks) == MAX_CHUNKS:
            break
    assert len(chunks) == MAX_CHUNKS

    assert client.get(PROFILE).json()["bio"] == "x" * size


def test_a_login_too_large_for_the_cookies_gets_an_error_page(
    client: TestClient, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def on_login(request: Request, session: Session, tokens: TokenSet) -> Session:
        return replace(session, user={**session.user, "bio": "x" * 70_000})

    monkeypatch.setattr(policy, "on_login", on_login)

    response = log_in(client, provider)  # was a 500 (a ValueError writing the cookies)

    assert response.status_code == 502
    assert "too large to keep in the session cookie" in response.text
    assert not [c for c in client.cookies.jar if c.name.startswith(SESSION_COOKIE)]


@pytest.mark.parametrize(
    "change",
    [
        {"user": {"name": "no sub"}},
        {"user": {"sub": 42}},
        {"user": "alice"},
        {"id_token": None},
        {"login_id": 7},
        {"created_at": "yesterday"},
        {"touched_at": 1.5},
        {"access_tokens": [{"token": "x"}]},
        {"unknown": 1},
    ],
)
def test_an_encrypted_payload_of_another_shape_is_no_session(
    logged_in: TestClient, settings: Settings, change: dict[str, Any]
) -> None:
    cipher = CookieCipher(settings.session_secrets, "session")
    payload = {**current_payload(logged_in, settings), **change}
    replace_cookie(logged_in, SESSION_COOKIE, cipher.encrypt(payload))

    assert logged_in.get(PROFILE).status_code == 401


def test_partial_chunks_mean_no_session(client: TestClient) -> None:
    replace_cookie(client, f"{SESSION_COOKIE}.0", "half")
    replace_cookie(client, f"{SESSION_COOKIE}.1", "of nothing")

    assert client.get(PROFILE).status_code == 401


def test_session_data_is_encrypted(logged_in: TestClient, settings: Settings) -> None:
    value = logged_in.cookies[SESSION_COOKIE]

    assert "alice" not in value and value.count(".") == 4  # a compact JWE
    assert current_payload(logged_in, settings)["user"]["sub"] == "alice"


def test_tampered_cookie_is_rejected(logged_in: TestClient) -> None:
    value = logged_in.cookies[SESSION_COOKIE]
    middle = len(value) // 2
    flipped = value[:middle] + ("A" if value[middle] != "A" else "B") + value[middle + 1 :]
    replace_cookie(logged_in, SESSION_COOKIE, flipped)

    assert logged_in.get(PROFILE).status_code == 401


def test_transaction_cookies_cannot_stand_in_for_sessions(
    logged_in: TestClient, settings: Settings
) -> None:
    payload = current_payload(logged_in, settings)
    forged = CookieCipher(settings.session_secrets, "transaction").encrypt(payload)
    replace_cookie(logged_in, SESSION_COOKIE, forged)

    assert logged_in.get(PROFILE).status_code == 401


def test_cookie_from_another_secret_is_rejected(logged_in: TestClient, settings: Settings) -> None:
    stranger = CookieCipher([OTHER_SECRET], "session").encrypt(current_payload(logged_in, settings))
    replace_cookie(logged_in, SESSION_COOKIE, stranger)

    assert logged_in.get(PROFILE).status_code == 401


def test_renewal_sets_a_new_cookie_only_when_due(logged_in: TestClient) -> None:
    assert not session_cookies(logged_in.get(PROFILE))


def test_logout_deletes_every_chunk(logged_in: TestClient) -> None:
    value = logged_in.cookies[SESSION_COOKIE]
    logged_in.cookies.delete(SESSION_COOKIE)
    for index, start in enumerate(range(0, len(value), 1000)):
        logged_in.cookies.set(
            f"{SESSION_COOKIE}.{index}", value[start : start + 1000], domain="127.0.0.1"
        )
    assert logged_in.get(PROFILE).status_code == 200

    logged_in.get(LOGOUT)

    assert not [c for c in logged_in.cookies.jar if c.name.startswith(SESSION_COOKIE)]
    assert logged_in.get(PROFILE).status_code == 401


@contextmanager
def sqlite_logout_records(client: TestClient) -> Iterator[sqlite3.Connection]:
    """The logout records file of `client`'s app (created by the app on first use)."""
    assert client.get(PROFILE).status_code in (200, 401)
    path = auth_of(client).settings.logout_records_path
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        yield db


@contextmanager
def recording_refused(
    client: TestClient, client_for: Callable[..., TestClient]
) -> Iterator[TestClient]:
    """`client`'s store, where logout records cannot be written (logout-token ids can)."""
    settings = auth_of(client).settings
    if settings.redis_url:
        prefix = settings.redis_key_prefix
        with redis_user(settings.redis_url, "%R~*", f"%RW~{prefix}jti:*") as url:
            yield client_for(redis_url=url)
        return
    with sqlite_logout_records(client) as db:
        db.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON logout_records "
            "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
        yield client
        db.execute("DROP TRIGGER refuse")


def test_a_logout_that_cannot_be_recorded_can_be_retried(
    logged_in: TestClient, provider: FakeProvider, client_for: Callable[..., TestClient]
) -> None:
    refusing = recording_refused(logged_in, client_for)
    assert_a_refused_logout_can_be_retried(logged_in, provider, refusing)


@contextmanager
def records_unreadable(
    client: TestClient, client_for: Callable[..., TestClient]
) -> Iterator[tuple[TestClient, Callable[[bool], None]]]:
    """A client of another app on `client`'s store, and a switch that makes the logout
    records unreadable for it (True) or readable again (False)."""
    settings = auth_of(client).settings
    if settings.redis_url:
        url, prefix = settings.redis_url, settings.redis_key_prefix
        with redis_user(url, "~*") as user_url:

            def break_redis(broken: bool) -> None:
                keys = (f"%RW~{prefix}session:*", f"%RW~{prefix}jti:*") if broken else ("~*",)
                set_keys(url, user_url, *keys)

            yield client_for(redis_url=user_url), break_redis
        return
    with sqlite_logout_records(client) as db:

        def break_sqlite(broken: bool) -> None:
            old, new = ("logout_records", "gone") if broken else ("gone", "logout_records")
            db.execute(f"ALTER TABLE {old} RENAME TO {new}")

        yield client_for(), break_sqlite


def test_unusable_logout_records_answer_503(
    logged_in: TestClient, provider: FakeProvider, client_for: Callable[..., TestClient]
) -> None:
    broken: dict[str, Any] = {"logout_records_path": "/nonexistent/dir/logouts.db"}
    if auth_of(logged_in).settings.redis_url:
        broken = {"redis_url": "redis://127.0.0.1:9/0", "redis_timeout": 0.5}
    other = client_for(**broken)
    for name, value in logged_in.cookies.items():
        replace_cookie(other, name, value)

    response = other.get(PROFILE)
    assert response.status_code == 503
    assert response.json()["error"] == "session_store_unavailable"


def test_expired_logout_records_are_purged(
    logged_in: TestClient, provider: FakeProvider, client_for: Callable[..., TestClient]
) -> None:
    settings = auth_of(logged_in).settings
    token = provider.logout_token(sub="alice")
    jti = claims_of(token)["jti"]
    if settings.redis_url:  # Redis expires them: a record lives as long as a session could
        assert post_logout(logged_in, token).status_code == 200
        prefix = settings.redis_key_prefix
        with Redis.from_url(settings.redis_url) as redis:
            assert 0 < redis.ttl(f"{prefix}logout:sub:alice") <= settings.session_absolute_duration
            assert 0 < redis.ttl(f"{prefix}jti:{jti}") <= 120 + CLOCK_LEEWAY  # its exp
        return
    with sqlite_logout_records(logged_in) as db:
        db.execute(  # ended long ago
            "INSERT INTO logout_records (kind, value, ended_at, expires_at) "
            "VALUES ('sub', 'gone', 0, 1)"
        )
        db.execute("INSERT INTO logout_tokens VALUES ('used-long-ago', 1)")
        other = client_for()  # a new process purges at its first write
        assert post_logout(other, token).status_code == 200
        left = {
            value for (value,) in db.execute("SELECT value FROM logout_records WHERE kind = 'sub'")
        }
        tokens = {jti for (jti,) in db.execute("SELECT jti FROM logout_tokens")}
    assert (left, tokens) == ({"alice"}, {jti})


def test_the_logout_signal_file_is_private(logged_in: TestClient) -> None:
    settings = auth_of(logged_in).settings
    if settings.redis_url:  # no files: the records live in Redis
        assert not os.path.exists(f"{settings.logout_records_path}.signal")
        return
    with sqlite_logout_records(logged_in):
        mode = os.stat(f"{settings.logout_records_path}.signal").st_mode
    assert mode & 0o777 == 0o600


def test_a_logout_recorded_by_an_instance_whose_clock_is_behind_still_holds(
    logged_in: TestClient, settings: Settings, client_for: Callable[..., TestClient]
) -> None:
    login_id = current_payload(logged_in, settings)["login_id"]
    long_ago = 1_000_000_000  # before the session started, by that instance's clock
    store = auth_of(logged_in).settings
    if store.redis_url:
        with Redis.from_url(store.redis_url) as redis:
            redis.set(f"{store.redis_key_prefix}logout:login:{login_id}", long_ago)
    else:
        with sqlite_logout_records(logged_in) as db:
            db.execute(
                "INSERT INTO logout_records (kind, value, ended_at, expires_at) "
                "VALUES ('login', ?, ?, ?)",
                (login_id, long_ago, int(time.time()) + 3600),
            )
    other = client_for()  # another process, which reads the records afresh
    for name, value in logged_in.cookies.items():
        replace_cookie(other, name, value)

    assert other.get(PROFILE).status_code == 401


def test_a_failed_read_of_logout_records_answers_503_and_misses_nothing(
    logged_in: TestClient, provider: FakeProvider, client_for: Callable[..., TestClient]
) -> None:
    with records_unreadable(logged_in, client_for) as (other, break_records):
        log_in(other, provider, "alice")
        assert other.get(PROFILE).status_code == 200
        assert send_backchannel_logout(logged_in, provider, sub="alice").status_code == 200

        break_records(True)
        failed = other.get(PROFILE)
        assert failed.status_code == 503
        assert failed.json()["error"] == "session_store_unavailable"

        break_records(False)
        assert other.get(PROFILE).status_code == 401


def test_unchanged_logout_records_are_checked_from_memory(
    logged_in: TestClient, client_for: Callable[..., TestClient]
) -> None:
    with records_unreadable(logged_in, client_for) as (other, break_records):
        replace_cookie(other, SESSION_COOKIE, logged_in.cookies[SESSION_COOKIE])
        deadline = time.monotonic() + 5
        while True:  # until the records are in memory (Redis: once it tracks them)
            assert other.get(PROFILE).status_code == 200
            break_records(True)
            if other.get(PROFILE).status_code == 200:
                break
            break_records(False)
            assert time.monotonic() < deadline, "logout records are never kept in memory"
            time.sleep(0.01)

        for _ in range(5):
            assert other.get(PROFILE).status_code == 200
        break_records(False)


# With REDIS_URL, logout records live in Redis and are kept in memory while Redis tracks them.
if os.environ.get("REDIS_URL"):
    LOGOUT_CACHE = "logout-cache"  # the name the cache's connection gives itself

    def test_checks_of_logout_records_need_no_round_trip(logged_in: TestClient) -> None:
        with Redis.from_url(os.environ["REDIS_URL"]) as redis:
            wait_until_cached(logged_in, redis, "mget")
            before = calls(redis, "mget")
            for _ in range(20):
                assert logged_in.get(PROFILE).status_code == 200
            assert calls(redis, "mget") == before

    def test_after_redis_lost_the_records_old_sessions_end_and_logins_work(
        logged_in: TestClient, provider: FakeProvider
    ) -> None:
        """Redis restarted empty while the app runs: the first login after it was refused
        (its session began before the records were started again, a moment later)."""
        alice = {c.name: c.value or "" for c in logged_in.cookies.jar}
        prefix = auth_of(logged_in).settings.redis_key_prefix
        with Redis.from_url(os.environ["REDIS_URL"]) as redis:
            lost = list(redis.scan_iter(f"{prefix}logout:*"))
            assert lost and redis.delete(*lost) == len(lost)

        assert log_in(logged_in, provider, "carol").status_code == 303
        assert logged_in.get(PROFILE).json()["sub"] == "carol"
        for name, value in alice.items():
            replace_cookie(logged_in, name, value)
        assert logged_in.get(PROFILE).status_code == 401  # its logout may have been lost

    def test_a_lost_cache_connection_never_revives_a_session(
        logged_in: TestClient, provider: FakeProvider, caplog: pytest.LogCaptureFixture
    ) -> None:
        prefix = auth_of(logged_in).settings.redis_key_prefix
        with Redis.from_url(os.environ["REDIS_URL"]) as redis:
            wait_until_cached(logged_in, redis, "mget")
            [tracking] = tracking_connections(redis, LOGOUT_CACHE)
            redis.client_kill_filter(_id=tracking["id"])
            redis.set(f"{prefix}logout:sub:alice", time.time())  # announced to nobody
            assert logged_in.get(PROFILE).status_code == 401
            wait_for_log(caplog, f"auth.redis_cache_off cache={LOGOUT_CACHE} error=")

            deadline = time.monotonic() + 5
            while not tracking_connections(redis, LOGOUT_CACHE):  # it reconnects by itself
                assert time.monotonic() < deadline
                time.sleep(0.05)
            for _ in range(10):  # what it kept before the loss is gone
                assert logged_in.get(PROFILE).status_code == 401
                time.sleep(0.05)

    def test_a_logout_leaves_the_other_records_in_memory(
        client_for: Callable[..., TestClient], provider: FakeProvider
    ) -> None:
        alice, bob = client_for(), client_for()
        log_in(alice, provider, "alice")
        log_in(bob, provider, "bob")
        with Redis.from_url(os.environ["REDIS_URL"]) as redis:
            wait_until_cached(alice, redis, "mget")
            wait_until_cached(bob, redis, "mget")
            connections = {c["id"] for c in tracking_connections(redis, LOGOUT_CACHE)}

            assert send_backchannel_logout(alice, provider, sub="alice").status_code == 200
            before = calls(redis, "mget")
            assert bob.get(PROFILE).status_code == 200
            assert calls(redis, "mget") == before
            assert alice.get(PROFILE).status_code == 401
            # The announcement was read, not choked on: the same connections are tracking.
            assert {c["id"] for c in tracking_connections(redis, LOGOUT_CACHE)} == connections

    def test_without_the_cache_every_check_reads_redis(
        client_for: Callable[..., TestClient], provider: FakeProvider
    ) -> None:
        client = client_for(redis_cache_size=0)
        log_in(client, provider)
        with Redis.from_url(os.environ["REDIS_URL"]) as redis:
            before = calls(redis, "mget")
            for _ in range(3):
                assert client.get(PROFILE).status_code == 200
            assert calls(redis, "mget") == before + 3
            assert not tracking_connections(redis, LOGOUT_CACHE)

    def test_a_hung_redis_is_noticed(
        client_for: Callable[..., TestClient], provider: FakeProvider
    ) -> None:
        url = os.environ["REDIS_URL"]
        assert_a_hung_redis_is_noticed(client_for, provider, url=url, command="mget")

    def test_a_redis_that_refuses_tracking_means_no_cache(
        client_for: Callable[..., TestClient],
        provider: FakeProvider,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        url = os.environ["REDIS_URL"]
        assert_refused_tracking_means_no_cache(
            client_for, provider, caplog, url=url, cache=LOGOUT_CACHE, command="mget"
        )

    def test_the_logout_cache_connects_as_the_configured_user(
        client_for: Callable[..., TestClient], provider: FakeProvider
    ) -> None:
        url = os.environ["REDIS_URL"]
        assert_the_cache_connects_as_the_configured_user(
            client_for, provider, url=url, cache=LOGOUT_CACHE
        )


def test_cookie_sessions_cannot_be_listed_and_say_so(logged_in: TestClient) -> None:
    response = logged_in.get(f"{AUTH_PREFIX}/sessions")

    assert response.status_code == 404
    assert "cannot be listed" in response.json()["error_description"]
    page = logged_in.get("/sessions")
    assert page.status_code == 200 and "cannot list them" in page.text


def copy_session(source: TestClient, target: TestClient) -> None:
    """Give `target` (another app instance, as another process would be) `source`'s cookies."""
    for cookie in source.cookies.jar:
        if cookie.name.startswith(SESSION_COOKIE):
            replace_cookie(target, cookie.name, cookie.value or "")


if not os.environ.get("REDIS_URL"):  # SQLite records (Redis has no ids to reuse)

    def test_a_logout_after_a_purge_of_the_newest_records_reaches_every_process(
        client: TestClient,
        provider: FakeProvider,
        client_for: Callable[..., TestClient],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        log_in(client, provider)
        other = client_for()  # another process with its own copy of the records
        copy_session(client, other)
        store = auth_of(client).sessions.store
        assert isinstance(store, CookieSessionStore) and client.portal is not None
        logouts = store.logouts
        assert isinstance(logouts, SqliteLogoutRecords)
        # The newest record has expired: the other process has seen it ...
        monkeypatch.setattr(logouts, "_purged_at", time.monotonic())  # no purge yet
        expired = int(time.time()) - 1
        client.portal.call(partial(logouts.record, "login", "old", until=expired))
        assert other.get(PROFILE).status_code == 200
        # ... a purge removes it, and the next record must not slip past the other process.
        monkeypatch.setattr(logouts, "_purged_at", -PURGE_INTERVAL)
        client.portal.call(partial(logouts.claim, "some-jti", until=int(time.time()) + 60))
        client.get(LOGOUT)

        assert other.get(PROFILE).status_code == 401


def test_lost_logout_records_end_the_sessions_they_could_have_ended(
    logged_in: TestClient, client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    logged_out = client_for()
    log_in(logged_out, provider, "bob")
    copy = {c.name: c.value or "" for c in logged_out.cookies.jar}
    logged_out.get(LOGOUT)

    # An instance whose records are new (a new container without the volume, a Redis
    # that lost its data): it cannot know of Bob's logout, so it ends every session
    # from before its records started, and keeps those from after.
    settings = auth_of(logged_in).settings
    fresh = {"logout_records_path": settings.logout_records_path + ".new"}
    if settings.redis_url:
        fresh = {"redis_key_prefix": settings.redis_key_prefix + "new:"}
    replacement = client_for(**fresh)
    for name, value in copy.items():
        replace_cookie(replacement, name, value)
    assert replacement.get(PROFILE).status_code == 401
    copy_session(logged_in, replacement)
    assert replacement.get(PROFILE).status_code == 401

    log_in(replacement, provider, "carol")
    assert replacement.get(PROFILE).json()["sub"] == "carol"


def test_another_process_uses_the_tokens_this_one_refreshed(
    client: TestClient, provider: FakeProvider, client_for: Callable[..., TestClient]
) -> None:
    provider.token_ttl = 30  # access tokens within the refresh leeway: every use refreshes
    log_in(client, provider)
    other = client_for()  # another worker, which gets a request with the same cookie
    copy_session(client, other)

    assert client.get("/api-example").status_code == 200  # refreshes: the token rotates
    assert other.get("/api-example").status_code == 200  # must not reuse the spent token

    used = [form["refresh_token"] for form in provider.token_requests if "refresh_token" in form]
    assert len(used) == len(set(used)) == 2
    assert client.get(PROFILE).status_code == 200
    assert other.get(PROFILE).status_code == 200


HTTPS_APP = "https://app.example.com"


def as_written_before_v02(value: str) -> str:
    """A cookie-store session cookie of this version as versions before v0.2 wrote it: the
    same payload, with the key's thumbprint as `kid` in the header."""
    key = derive_key(SESSION_SECRET, "session")
    payload = CookieCipher([SESSION_SECRET], "session").decrypt(value)
    old_header = {"alg": "dir", "enc": "A256GCM", "kid": key.thumbprint()[:16]}
    return jwe.encrypt_compact(old_header, json.dumps(payload).encode(), key)


def test_a_session_cookie_of_the_old_name_keeps_working_until_logout(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    provider.redirect_uris = (f"{HTTPS_APP}{CALLBACK_PATH}",)
    https_client = client_for(app_base_url=HTTPS_APP)
    assert log_in(https_client, provider).status_code == 303
    value = as_written_before_v02(https_client.cookies[f"__Host-{SESSION_COOKIE}"])
    https_client.cookies.clear()
    https_client.cookies.set(SESSION_COOKIE, value, domain="app.example.com")  # as before

    assert https_client.get(PROFILE).json()["sub"] == "alice"  # nobody logged out by the update
    logout = https_client.get(f"{AUTH_PREFIX}/logout")
    assert f"{SESSION_COOKIE}=" in logout.headers["set-cookie"]  # the old cookie goes too
    assert https_client.get(PROFILE).status_code == 401
