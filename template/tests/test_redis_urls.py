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


def test_over_tls_the_sentinels_may_have_a_password_of_their_own() -> None:
    url = (
        "rediss+sentinel://:primary-pw@sentinel-1:26380,sentinel-2/sessions"
        "?sentinel_password=s%26p&ssl_ca_certs=/etc/ssl/redis-ca.pem"
    )

    target = parse_redis_url(url)

    assert (target.kind, target.tls, target.service) == ("sentinel", True, "sessions")
    assert (target.password, target.sentinel_password) == ("primary-pw", "s&p")
    assert target.tls_options()["ssl_ca_certs"] == "/etc/ssl/redis-ca.pem"
    assert target.tls_options()["ssl_check_hostname"] is True  # not redis-py 5's default
    assert target.sentinel_options(2.0)["password"] == "s&p"
    assert target.sentinel_options(2.0)["ssl"] is True  # the sentinels speak TLS too


def test_without_tls_no_tls_options_are_sent() -> None:
    target = parse_redis_url("redis+sentinel://sentinel-1/sessions?sentinel_password=pw")

    assert (target.tls, target.tls_options()) == (False, {})
    assert "ssl" not in target.sentinel_options(2.0)


def test_a_tls_cluster_url() -> None:
    target = parse_redis_url("rediss+cluster://:pw@node-1:7000?ssl_ca_certs=/ca.pem")

    assert (target.kind, target.tls, target.ca_file) == ("cluster", True, "/ca.pem")


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
        ("redis+sentinel://10.0.0.1:26379/sessions?ssl=true", "takes only sentinel_password"),
        ("redis+sentinel://10.0.0.1/sessions?ssl_ca_certs=/ca.pem", "rediss+sentinel://"),
        ("redis+cluster://10.0.0.1:7000?ssl_ca_certs=/ca.pem", "is for TLS: rediss+cluster://"),
        ("rediss+cluster://10.0.0.1:7000?password=pw", "takes only ssl_ca_certs"),
        ("redis+cluster://10.0.0.1:7000/1", "takes no path"),
        ("redis+cluster://10.0.0.1:seven", "'10.0.0.1:seven' is not a host:port"),
        ("sentinel://10.0.0.1:26379/sessions", "must start with redis://"),
        ("redis+tls://10.0.0.1:26379/sessions", "must start with redis://"),
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
