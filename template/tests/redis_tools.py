"""Redis for tests: users that may run only some commands (real faults, through Redis
ACLs), command counts, and the in-memory caches Redis keeps current (redis_cache.py)."""

import logging
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import pytest
from fastapi.testclient import TestClient
from redis import Redis

from devserver.provider import FakeProvider
from tests.helpers import PROFILE, log_in


@contextmanager
def redis_prefix(url: str) -> Iterator[str]:
    """A key prefix of this test's own in the Redis at `url`; its keys are removed afterwards."""
    prefix = f"test-{uuid.uuid4().hex}:"
    yield prefix
    with Redis.from_url(url) as redis:
        keys = list(redis.scan_iter(match=f"{prefix}*"))
        if keys:
            redis.delete(*keys)


@contextmanager
def redis_user(url: str, *rules: str, password: bool = True) -> Iterator[str]:
    """A Redis user of this test's own with these ACL rules on top of `+@all` (e.g. key
    patterns such as `%R~*`, or `-client|tracking`); yields `url` with its credentials.
    Its rules can be changed while clients use it (`set_keys`)."""
    name, secret = f"test-{secrets.token_hex(6)}", secrets.token_urlsafe(16)
    parts = urlsplit(url)
    credentials = f"{name}:{secret}" if password else name
    netloc = f"{credentials}@{parts.hostname}:{parts.port}"
    with Redis.from_url(url) as admin:
        login = f">{secret}" if password else "nopass"
        keys = () if any("~" in rule for rule in rules) else ("~*",)  # every key by default
        admin.execute_command("ACL", "SETUSER", name, "on", login, *keys, "+@all", *rules)
        try:
            yield urlunsplit(parts._replace(netloc=netloc))
        finally:
            admin.execute_command("ACL", "DELUSER", name)


def set_keys(url: str, user_url: str, *patterns: str) -> None:
    """Replace the key permissions of the user in `user_url` (e.g. `%R~*`)."""
    with Redis.from_url(url) as admin:
        admin.execute_command("ACL", "SETUSER", urlsplit(user_url).username, "resetkeys", *patterns)


def calls(redis: Redis, command: str) -> int:
    """How often Redis has run `command` (all clients: the tests run one at a time)."""
    stats = redis.info("commandstats").get(f"cmdstat_{command.lower()}", {})
    return int(stats.get("calls", 0))


def wait_until_cached(client: TestClient, redis: Redis, command: str) -> None:
    """Until a request needs no `command`: the cache is tracking and holds what it reads."""
    deadline = time.monotonic() + 5
    while True:
        before = calls(redis, command)
        assert client.get(PROFILE).status_code == 200
        if calls(redis, command) == before:
            return
        assert time.monotonic() < deadline, "nothing is ever served from memory"
        time.sleep(0.01)


def tracking_connections(redis: Redis, name: str) -> list[dict[str, str]]:
    return [c for c in redis.client_list() if c["name"] == name]


def assert_refused_tracking_means_no_cache(
    client_for: Callable[..., TestClient],
    provider: FakeProvider,
    caplog: pytest.LogCaptureFixture,
    *,
    url: str,
    cache: str,
    command: str,
) -> None:
    """A Redis that refuses `CLIENT TRACKING` (a proxy, an ACL): every read asks Redis,
    sessions work, and the log says why the cache is off."""
    caplog.set_level(logging.WARNING, logger="app.auth")
    with redis_user(url, "-client|tracking") as user_url, Redis.from_url(url) as redis:
        client = client_for(redis_url=user_url)
        log_in(client, provider)
        deadline = time.monotonic() + 5
        while f"cache={cache} error=TrackingRefused" not in caplog.text:
            assert time.monotonic() < deadline, caplog.text
            assert client.get(PROFILE).status_code == 200
            time.sleep(0.01)
        for _ in range(3):
            before = calls(redis, command)
            assert client.get(PROFILE).status_code == 200
            assert calls(redis, command) == before + 1
        assert not tracking_connections(redis, cache)


def assert_the_cache_connects_as_the_configured_user(
    client_for: Callable[..., TestClient], provider: FakeProvider, *, url: str, cache: str
) -> None:
    """The tracking connection logs in as REDIS_URL's user, with or without a password."""
    for password in (True, False):
        with redis_user(url, password=password) as user_url, Redis.from_url(url) as redis:
            name = urlsplit(user_url).username
            client = client_for(redis_url=user_url)
            log_in(client, provider)
            deadline = time.monotonic() + 5
            while name not in {c["user"] for c in tracking_connections(redis, cache)}:
                assert time.monotonic() < deadline, tracking_connections(redis, cache)
                assert client.get(PROFILE).status_code == 200  # reads start the cache
                time.sleep(0.01)


def assert_a_hung_redis_is_noticed(
    client_for: Callable[..., TestClient], provider: FakeProvider, *, url: str, command: str
) -> None:
    """A Redis that stops answering is noticed within half a second: from then on requests
    ask Redis (and get 503 past REDIS_TIMEOUT) instead of being answered from memory."""
    client = client_for(redis_timeout=0.3)
    log_in(client, provider)
    with Redis.from_url(url) as redis:
        wait_until_cached(client, redis, command)
        redis.execute_command("CLIENT", "PAUSE", 1500, "ALL")  # every client waits 1.5 s
        time.sleep(0.7)
        assert client.get(PROFILE).status_code == 503

        deadline = time.monotonic() + 5
        while client.get(PROFILE).status_code != 200:
            assert time.monotonic() < deadline, "requests never succeed again"
            time.sleep(0.05)


def wait_for_log(caplog: pytest.LogCaptureFixture, text: str) -> None:
    """Until `text` was logged (by a background task of the app's event loop)."""
    deadline = time.monotonic() + 5
    while text not in caplog.text:
        assert time.monotonic() < deadline, f"never logged: {text}"
        time.sleep(0.01)
