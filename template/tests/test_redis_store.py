"""What Redis holds: encrypted records under hashed ids, expiring by themselves; and the
in-memory copies of them that Redis keeps current (app/auth/stores/redis_cache.py)."""

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient
from redis import Redis

from app.auth.cookies import CookieCipher
from app.auth.session_cookie import SESSION_COOKIE
from app.auth.sessions import SessionCodec
from app.auth.tokens import CLOCK_LEEWAY
from devserver.provider import FakeProvider
from tests.helpers import (
    LOGOUT,
    PROFILE,
    assert_a_refused_logout_can_be_retried,
    auth_of,
    claims_of,
    install_session,
    log_in,
    log_in_each,
    make_session,
    post_logout,
    replace_cookie,
    stored_session,
)
from tests.redis_tools import (
    assert_a_hung_redis_is_noticed,
    assert_refused_tracking_means_no_cache,
    assert_the_cache_connects_as_the_configured_user,
    calls,
    redis_user,
    tracking_connections,
    wait_for_log,
    wait_until_cached,
)

TRACKING_CLIENT = "session-cache"  # the name the cache's connection gives itself


def test_records_are_encrypted_and_keyed_by_a_hash_of_the_id(logged_in: TestClient) -> None:
    settings = auth_of(logged_in).settings
    session_id = logged_in.cookies[SESSION_COOKIE]
    key = f"{settings.redis_key_prefix}session:{hashlib.sha256(session_id.encode()).hexdigest()}"

    with Redis.from_url(settings.redis_url, decode_responses=True) as redis:
        keys = set(redis.scan_iter(match=f"{settings.redis_key_prefix}*"))
        record = redis.get(key)
        ttl = redis.ttl(key)

    assert not any(session_id in k for k in keys)
    assert isinstance(record, str) and record.count(".") == 4  # a compact JWE
    assert "alice" not in record and "id_token" not in record
    inactivity = settings.session_inactivity_duration  # yours may differ from the default
    assert inactivity - 400 < int(ttl) <= inactivity
    assert f"{settings.redis_key_prefix}sub:alice" in keys


def test_ttl_follows_the_absolute_limit_near_its_end(client: TestClient) -> None:
    settings = auth_of(client).settings
    created = int(time.time()) - settings.session_absolute_duration + 600
    install_session(client, make_session(created_at=created, touched_at=created + 100))

    with Redis.from_url(settings.redis_url, decode_responses=True) as redis:
        [key] = redis.scan_iter(match=f"{settings.redis_key_prefix}session:*")
        assert 0 < int(redis.ttl(key)) <= 600


@pytest.fixture
def redis(logged_in: TestClient) -> Iterator[Redis]:
    with Redis.from_url(auth_of(logged_in).settings.redis_url, decode_responses=True) as redis:
        yield redis


def session_key(client: TestClient) -> str:
    session_id = client.cookies[SESSION_COOKIE]
    prefix = auth_of(client).settings.redis_key_prefix
    return f"{prefix}session:{hashlib.sha256(session_id.encode()).hexdigest()}"


def test_a_session_in_use_is_read_from_memory(logged_in: TestClient, redis: Redis) -> None:
    wait_until_cached(logged_in, redis, "get")
    before = calls(redis, "get")

    for _ in range(20):
        assert logged_in.get(PROFILE).json()["sub"] == "alice"
    assert calls(redis, "get") == before


def test_without_the_cache_every_request_reads_redis(
    client_for: Callable[..., TestClient], provider: FakeProvider, redis: Redis
) -> None:
    client = client_for(redis_cache_size=0)
    log_in(client, provider)
    before = calls(redis, "get")

    for _ in range(5):
        assert client.get(PROFILE).status_code == 200
    assert calls(redis, "get") == before + 5
    assert not [c for c in redis.client_list() if c["name"] == TRACKING_CLIENT][1:]


def test_the_cache_keeps_at_most_its_size(
    client_for: Callable[..., TestClient], provider: FakeProvider, redis: Redis
) -> None:
    client = client_for(redis_cache_size=1)
    cookies = log_in_each(client, provider, "alice", "bob")
    wait_until_cached(client, redis, "get")  # Bob's
    replace_cookie(client, SESSION_COOKIE, cookies["alice"])
    wait_until_cached(client, redis, "get")  # Alice's, in place of Bob's: one fits

    before = calls(redis, "get")
    for user in ("bob", "alice", "bob", "alice"):
        replace_cookie(client, SESSION_COOKIE, cookies[user])
        assert client.get(PROFILE).json()["sub"] == user
    assert calls(redis, "get") == before + 4


def test_a_request_reads_its_session_once_however_many_dependencies_ask(
    client_for: Callable[..., TestClient], provider: FakeProvider, redis: Redis
) -> None:
    client = client_for(redis_cache_size=0)
    log_in(client, provider)
    before = calls(redis, "get")

    assert client.get("/api-example").status_code == 200  # CurrentSession, CurrentAccessToken
    assert calls(redis, "get") == before + 1


def test_a_record_deleted_in_redis_ends_the_session_at_the_next_request(
    logged_in: TestClient, redis: Redis
) -> None:
    wait_until_cached(logged_in, redis, "get")

    redis.delete(session_key(logged_in))
    assert logged_in.get(PROFILE).status_code == 401


def test_a_record_changed_in_redis_is_read_again(
    client_for: Callable[..., TestClient], provider: FakeProvider, redis: Redis
) -> None:
    alice, bob = client_for(), client_for()
    log_in(alice, provider, "alice")
    log_in(bob, provider, "bob")
    wait_until_cached(alice, redis, "get")

    # Another instance changes Alice's session (its record, encrypted for its key).
    session = stored_session(alice)
    assert session is not None
    renamed = replace(session, user={**session.user, "name": "Alice Renamed"})
    codec = SessionCodec(auth_of(alice).settings.session_secrets)
    record = session_key(alice).rpartition(":")[2]
    redis.set(session_key(alice), codec.encode(renamed, bound_to=record))
    assert alice.get(PROFILE).json()["name"] == "Alice Renamed"


def test_a_record_copied_over_another_users_is_refused(
    client_for: Callable[..., TestClient], provider: FakeProvider, redis: Redis
) -> None:
    alice, bob = client_for(), client_for()
    log_in(alice, provider, "alice")
    log_in(bob, provider, "bob")

    # Without the secret, an attacker with write access to Redis copies Bob's record
    # over Alice's: Alice's cookie must not become Bob's session.
    redis.set(session_key(alice), str(redis.get(session_key(bob))))
    assert alice.get(PROFILE).status_code == 401
    assert bob.get(PROFILE).json()["sub"] == "bob"


def test_a_logout_on_one_instance_holds_at_once_on_another(
    client_for: Callable[..., TestClient], provider: FakeProvider, redis: Redis
) -> None:
    first, second = client_for(), client_for()
    for attempt in range(10):
        log_in(first, provider)
        replace_cookie(second, SESSION_COOKIE, first.cookies[SESSION_COOKIE])
        wait_until_cached(first, redis, "get")
        wait_until_cached(second, redis, "get")

        second.get(LOGOUT)
        assert first.get(PROFILE).status_code == 401, f"attempt {attempt}"


def test_used_logout_tokens_are_remembered_as_long_as_they_could_be_replayed(
    logged_in: TestClient, provider: FakeProvider, redis: Redis
) -> None:
    token = provider.logout_token(sub="alice")
    assert post_logout(logged_in, token).status_code == 200

    jti = claims_of(token)["jti"]
    ttl = redis.ttl(f"{auth_of(logged_in).settings.redis_key_prefix}jti:{jti}")
    assert 0 < ttl <= 120 + CLOCK_LEEWAY  # the token expires in 120 s: replays end then


def test_a_flushed_database_ends_the_sessions_kept_in_memory(
    client_for: Callable[..., TestClient], provider: FakeProvider, redis: Redis
) -> None:
    url = auth_of(client_for()).settings.redis_url
    own_database = url.rsplit("/", 1)[0] + "/15"  # flushed whole: no other test's keys there
    client = client_for(redis_url=own_database)
    log_in(client, provider)
    with Redis.from_url(own_database) as database:
        wait_until_cached(client, database, "get")
        database.flushdb()

    assert client.get(PROFILE).status_code == 401


def test_ended_sessions_leave_the_user_index(
    logged_in: TestClient, provider: FakeProvider, redis: Redis
) -> None:
    index = f"{auth_of(logged_in).settings.redis_key_prefix}sub:alice"
    assert redis.scard(index) == 1

    assert post_logout(logged_in, provider.logout_token(sub="alice")).status_code == 200
    assert redis.scard(index) == 0


@pytest.mark.parametrize(
    "change", [{"user": {"name": "no sub"}}, {"id_token": 42}, {"touched_at": "now"}]
)
def test_a_record_of_another_shape_is_no_session(
    logged_in: TestClient, redis: Redis, change: dict[str, object]
) -> None:
    settings = auth_of(logged_in).settings
    cipher = CookieCipher(settings.session_secrets, "session")
    payload = cipher.decrypt(str(redis.get(session_key(logged_in)) or ""))
    assert payload is not None
    redis.set(session_key(logged_in), cipher.encrypt({**payload, **change}))

    assert logged_in.get(PROFILE).status_code == 401


def test_a_hung_redis_is_noticed(
    client_for: Callable[..., TestClient], provider: FakeProvider, redis: Redis
) -> None:
    url = auth_of(client_for()).settings.redis_url
    assert_a_hung_redis_is_noticed(client_for, provider, url=url, command="get")


def test_a_lost_cache_connection_means_reading_redis_again(
    logged_in: TestClient, redis: Redis, provider: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    wait_until_cached(logged_in, redis, "get")
    [tracking] = [c for c in redis.client_list() if c["name"] == TRACKING_CLIENT]
    ended = logged_in.cookies[SESSION_COOKIE]

    redis.client_kill_filter(_id=tracking["id"])
    redis.delete(session_key(logged_in))  # announced to nobody
    assert logged_in.get(PROFILE).status_code == 401
    wait_for_log(caplog, f"auth.redis_cache_off cache={TRACKING_CLIENT} error=")

    logged_in.cookies.clear()
    log_in(logged_in, provider)
    wait_until_cached(logged_in, redis, "get")  # it reconnected by itself
    replace_cookie(logged_in, SESSION_COOKIE, ended)  # what it kept before is gone
    assert logged_in.get(PROFILE).status_code == 401


def test_a_change_of_one_session_leaves_the_others_in_memory(
    client_for: Callable[..., TestClient], provider: FakeProvider, redis: Redis
) -> None:
    alice, bob = client_for(), client_for()
    log_in(alice, provider, "alice")
    log_in(bob, provider, "bob")
    wait_until_cached(alice, redis, "get")
    wait_until_cached(bob, redis, "get")

    connections = {c["id"] for c in tracking_connections(redis, TRACKING_CLIENT)}

    alice.get(LOGOUT)
    before = calls(redis, "get")
    assert bob.get(PROFILE).status_code == 200
    assert calls(redis, "get") == before
    # The announcement was read, not choked on: the same connections are tracking.
    assert {c["id"] for c in tracking_connections(redis, TRACKING_CLIENT)} == connections


def test_a_logout_that_cannot_be_carried_out_can_be_retried(
    logged_in: TestClient, provider: FakeProvider, client_for: Callable[..., TestClient]
) -> None:
    settings = auth_of(logged_in).settings
    prefix = settings.redis_key_prefix

    @contextmanager
    def refusing() -> Iterator[TestClient]:  # sessions read-only, logout-token ids writable
        with redis_user(settings.redis_url, "%R~*", f"%RW~{prefix}jti:*") as url:
            yield client_for(redis_url=url)

    assert_a_refused_logout_can_be_retried(logged_in, provider, refusing())


def test_a_redis_that_refuses_tracking_means_no_cache(
    logged_in: TestClient,
    client_for: Callable[..., TestClient],
    provider: FakeProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = auth_of(logged_in).settings.redis_url
    assert_refused_tracking_means_no_cache(
        client_for, provider, caplog, url=url, cache=TRACKING_CLIENT, command="get"
    )


def test_the_session_cache_connects_as_the_configured_user(
    logged_in: TestClient, client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    url = auth_of(logged_in).settings.redis_url
    assert_the_cache_connects_as_the_configured_user(
        client_for, provider, url=url, cache=TRACKING_CLIENT
    )


def test_the_index_of_a_users_sessions_keeps_only_live_ones(
    logged_in: TestClient,
    client_for: Callable[..., TestClient],
    provider: FakeProvider,
    redis: Redis,
) -> None:
    laptop, phone, tablet = logged_in, client_for(), client_for()  # alice's
    for browser in (phone, tablet):
        log_in(browser, provider, "alice")
    prefix = auth_of(laptop).settings.redis_key_prefix
    index = f"{prefix}sub:alice"

    def record(browser: TestClient) -> str:
        return session_key(browser).rpartition(":")[2]

    assert redis.smembers(index) == {record(b) for b in (laptop, phone, tablet)}
    phone_record = record(phone)
    phone.get(LOGOUT)  # a logout leaves the index
    assert redis.smembers(index) == {record(laptop), record(tablet)}
    assert phone_record not in redis.smembers(index)

    redis.delete(session_key(tablet))  # a session that expired
    log_in(phone, provider, "alice")  # the next login prunes it
    assert redis.smembers(index) == {record(laptop), record(phone)}
