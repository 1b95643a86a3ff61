"""The Redis client, configured once for the whole app; used logout tokens kept in Redis.

REDIS_URL names one Redis server, or a highly available set:

    redis://[[user]:password@]host:6379/0          one server (rediss:// TLS, unix:// socket)
    redis+sentinel://[[user]:password@]host:26379[,host:26379...]/<service>[/<db>]
        the primary that these sentinels call <service>, found again after a failover
        (the password is the primary's; `?sentinel_password=` the sentinels' own, if any)
    redis+cluster://[[user]:password@]host:7000[,host:7001...]
        a Redis Cluster, reached through any of these nodes

`rediss+sentinel://` and `rediss+cluster://` speak TLS to every node (the sentinels too),
checking certificates against the system's authorities or `?ssl_ca_certs=/path/ca.pem`.

In a cluster, the keys that one command or script uses together are hash-tagged (see
`in_slot`), so that they live on the same node.
"""

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, unquote

from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.connection import parse_url
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.exceptions import RedisError

from app.auth.errors import StoreUnavailable

if TYPE_CHECKING:
    from app.auth.settings import AuthSettings

RedisClient = Redis | RedisCluster
DEFAULT_PORTS = {"sentinel": 26379, "cluster": 6379}
# What may follow '?' in a redis+sentinel:// or redis+cluster:// URL.
OPTIONS = {"sentinel": ("sentinel_password",), "cluster": ()}
TLS_OPTIONS = ("ssl_ca_certs",)


@dataclass(frozen=True)
class RedisTarget:
    """Where REDIS_URL points: one `server` (`url`), a `sentinel` set or a `cluster`."""

    kind: Literal["server", "sentinel", "cluster"]
    url: str
    nodes: tuple[tuple[str, int], ...] = ()  # the sentinels, or the cluster's seed nodes
    service: str = ""  # the name the sentinels know the primary by
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False  # rediss+sentinel:// or rediss+cluster://
    ca_file: str | None = None  # ?ssl_ca_certs=: the authorities TLS certificates must be from
    sentinel_password: str | None = None  # ?sentinel_password=: the sentinels' requirepass

    def tls_options(self) -> dict[str, Any]:
        """Client options for TLS to the nodes (none without TLS): certificates and host
        names checked, against `ca_file` or the system's authorities."""
        if not self.tls:
            return {}
        return {
            "ssl": True,
            "ssl_cert_reqs": "required",
            "ssl_check_hostname": True,  # the default only from redis-py 6 on
            "ssl_ca_certs": self.ca_file,
        }

    def sentinel_options(self, timeout: float) -> dict[str, Any]:
        """Options of the connections to the sentinels themselves."""
        return {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "password": self.sentinel_password,
            **self.tls_options(),
        }


def parse_redis_url(url: str) -> RedisTarget:
    """REDIS_URL understood, or ValueError saying what is wrong with it."""
    scheme, _, rest = url.partition("://")
    if scheme in ("redis", "rediss", "unix"):
        parse_url(url)  # raises ValueError for a bad one
        return RedisTarget("server", url)
    tls = scheme.startswith("rediss+")
    kind = {"sentinel": "sentinel", "cluster": "cluster"}.get(scheme.partition("+")[2])
    if not scheme.startswith(("redis+", "rediss+")) or kind is None:
        raise ValueError(
            "must start with redis://, rediss://, unix://, redis+sentinel://, "
            "redis+cluster:// (or rediss+sentinel://, rediss+cluster:// for TLS)"
        )
    rest, _, query = rest.partition("?")
    options = _options(query, scheme, (*OPTIONS[kind], *(TLS_OPTIONS if tls else ())))
    if "#" in rest:
        raise ValueError(f"{scheme}:// takes no '#'")
    location, _, path = rest.partition("/")
    credentials, _, hosts = location.rpartition("@")
    username, _, password = credentials.partition(":")
    nodes = tuple(_node(node, DEFAULT_PORTS[kind]) for node in hosts.split(","))
    names = [unquote(name) for name in path.split("/") if name]
    if kind == "cluster" and names:
        raise ValueError(f"{scheme}:// takes no path: a cluster has only database 0")
    if kind == "sentinel" and not 1 <= len(names) <= 2:
        raise ValueError(
            f"{scheme}:// needs the primary's service name: "
            f"{scheme}://host:26379[,host:26379...]/<service>[/<db>]"
        )
    if len(names) == 2 and not names[1].isdigit():
        raise ValueError(f"{scheme}:// database {names[1]!r} is not a number")
    return RedisTarget(
        "sentinel" if kind == "sentinel" else "cluster",
        url,
        nodes,
        service=names[0] if names else "",
        db=int(names[1]) if len(names) == 2 else 0,
        username=unquote(username) or None,
        password=unquote(password) or None,
        tls=tls,
        ca_file=options.get("ssl_ca_certs"),
        sentinel_password=options.get("sentinel_password"),
    )


def _options(query: str, scheme: str, allowed: tuple[str, ...]) -> dict[str, str]:
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(options) - set(allowed))
    if unknown and unknown[0] in TLS_OPTIONS:
        raise ValueError(f"{unknown[0]} is for TLS: rediss{scheme.removeprefix('redis')}://")
    if unknown:
        takes = f"only {', '.join(allowed)}" if allowed else "none"
        raise ValueError(f"{scheme}:// takes {takes} after '?', not {unknown[0]!r}")
    return options


def _node(node: str, default_port: int) -> tuple[str, int]:
    host, colon, port = node.rpartition(":") if not node.endswith("]") else (node, "", "")
    if not colon:
        host, port = node, str(default_port)
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{node!r} is not a host:port")
    return host, int(port)


def check_redis_url(url: str | None) -> str | None:
    """The validator of the REDIS_URL setting."""
    if url is not None:
        parse_redis_url(url)
    return url


def connect(url: str, settings: "AuthSettings") -> RedisClient:
    """A client whose pool makes requests wait for a free connection (up to the
    timeout) instead of failing when more than REDIS_MAX_CONNECTIONS are busy.

    In a cluster there is a pool per node, of REDIS_MAX_CONNECTIONS connections each.
    """
    target = parse_redis_url(url)
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": settings.redis_timeout,
        "socket_connect_timeout": settings.redis_timeout,
        "max_connections": settings.redis_max_connections,
    }
    if target.kind == "cluster":
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
            username=target.username,
            password=target.password,
            **options,
            **target.tls_options(),
        )
    options |= {"timeout": settings.redis_timeout, "health_check_interval": 30}
    if target.kind == "sentinel":
        sentinel = Sentinel(
            target.nodes, sentinel_kwargs=target.sentinel_options(settings.redis_timeout)
        )
        client: Redis = sentinel.master_for(
            target.service,
            connection_pool_class=BlockingSentinelPool,
            db=target.db,
            username=target.username,
            password=target.password,
            **options,
            **target.tls_options(),
        )
        return client
    return Redis.from_pool(BlockingConnectionPool.from_url(url, **options))  # owns the pool


class BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """Connections to the primary the sentinels name, waiting for a free one like the
    pool of a single server."""


async def close(redis: RedisClient) -> None:
    """Close the client, its pool and, for a sentinel set, the connections to the sentinels."""
    pool = redis.connection_pool if isinstance(redis, Redis) else None
    await redis.aclose()
    if isinstance(pool, SentinelConnectionPool):
        for sentinel in pool.sentinel_manager.sentinels:
            await sentinel.aclose()


def is_cluster(redis: RedisClient) -> bool:
    return isinstance(redis, RedisCluster)


def in_slot(redis: RedisClient, name: str) -> str:
    """`name` as the part of a key that picks its hash slot in a cluster (`{name}`), so
    that the keys built with it can be used together in one script. Unchanged for one
    server or a sentinel set, so that keys written before keep their names."""
    return "{" + name + "}" if is_cluster(redis) else name


async def get_many(redis: RedisClient, keys: list[str]) -> list[bytes | str | None]:
    """The values of `keys` (None where missing): one MGET, or in a cluster, where keys
    live on several nodes, one MGET per node."""
    if not keys:
        return []
    if isinstance(redis, RedisCluster):
        return list(await redis.mget_nonatomic(keys))
    return list(await redis.mget(keys))


class RedisLogoutTokens:
    """Ids of logout tokens already used, as `<prefix>jti:<jti>` keys expiring by themselves."""

    def __init__(self, redis: RedisClient, *, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def used(self, jti: str) -> bool:
        try:
            return bool(await self._redis.exists(f"{self._prefix}jti:{jti}"))
        except (RedisError, OSError):
            raise StoreUnavailable("Logout tokens cannot be read right now.") from None

    async def claim(self, jti: str, *, until: int) -> bool:
        ttl = max(until - int(time.time()), 1)
        try:
            return bool(await self._redis.set(f"{self._prefix}jti:{jti}", 1, ex=ttl, nx=True))
        except (RedisError, OSError):
            raise StoreUnavailable("Logout tokens cannot be recorded right now.") from None
