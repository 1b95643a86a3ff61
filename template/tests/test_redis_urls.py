"""REDIS_URL: one Redis server, a sentinel set or a cluster (app/auth/stores/redis_client.py)."""

import re

import pytest
from redis.asyncio import Redis, RedisCluster
from redis.crc import key_slot

from app.auth.stores.redis_client import RedisTarget, in_slot, parse_redis_url
from app.config import ConfigurationError, load_settings


def test_a_sentinel_url_names_the_sentinels_and_the_primarys_service() -> None:
    url = "redis+sentinel://:s%40cret@10.0.0.1:26379,sentinel-2,[::1]:26380/sessions/2"

    assert parse_redis_url(url) == RedisTarget(
        "sentinel",
        url,
        nodes=(("10.0.0.1", 26379), ("sentinel-2", 26379), ("::1", 26380)),
        service="sessions",
        db=2,
        password="s@cret",
    )


def test_a_cluster_url_names_any_of_its_nodes() -> None:
    url = "redis+cluster://app:pw@node-1:7000,node-2/"

    target = parse_redis_url(url)

    assert (target.kind, target.nodes) == ("cluster", (("node-1", 7000), ("node-2", 6379)))
    assert (target.username, target.password, target.db) == ("app", "pw", 0)


def test_one_server_is_named_as_before(env: pytest.MonkeyPatch) -> None:
    env.setenv("REDIS_URL", "rediss://:pw@redis.internal:6380/3")

    assert load_settings().redis_url == "rediss://:pw@redis.internal:6380/3"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis+sentinel://10.0.0.1:26379", "needs the primary's service name"),
        ("redis+sentinel://10.0.0.1:26379/", "needs the primary's service name"),
        ("redis+sentinel://10.0.0.1:26379/sessions/first", "database 'first' is not a number"),
        ("redis+sentinel://10.0.0.1:26379,/sessions", "'' is not a host:port"),
        ("redis+sentinel://10.0.0.1:26379/sessions?ssl=true", "takes no options"),
        ("redis+cluster://10.0.0.1:7000/1", "takes no path"),
        ("redis+cluster://10.0.0.1:seven", "'10.0.0.1:seven' is not a host:port"),
        ("sentinel://10.0.0.1:26379/sessions", "must start with redis://"),
    ],
)
def test_a_bad_redis_url_is_refused_at_startup(
    env: pytest.MonkeyPatch, url: str, problem: str
) -> None:
    env.setenv("REDIS_URL", url)

    with pytest.raises(ConfigurationError, match=rf"REDIS_URL: .*{re.escape(problem)}"):
        load_settings()


def test_only_in_a_cluster_are_a_sessions_keys_hash_tagged() -> None:
    record = "3f2a9c"
    one_server = Redis()
    cluster = RedisCluster(host="127.0.0.1", port=7000)  # not connected: nothing to close

    # One server (or a sentinel set) keeps the key names that sessions already have.
    assert in_slot(one_server, record) == record
    # In a cluster, a session's record and its lock, used by one script, share a slot.
    record_key, lock_key = (
        f"auth:{kind}:{in_slot(cluster, record)}" for kind in ("session", "lock")
    )
    assert record_key == "auth:session:{3f2a9c}"
    assert key_slot(record_key.encode()) == key_slot(lock_key.encode())
