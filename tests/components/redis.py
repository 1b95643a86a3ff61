"""Debian's ``redis-server``: plain, TLS-only with a password, a cluster, a sentinel set."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from typing import TYPE_CHECKING, Self

from components.process import (
    ARTIFACTS_DIR,
    HOST,
    START_TIMEOUT,
    ChildProcess,
    free_port,
    missing_component,
    wait_for,
)

if TYPE_CHECKING:
    from pathlib import Path


class RedisServer(ChildProcess):
    """Debian's ``redis-server`` without persistence; ``url`` is ``redis://127.0.0.1:<port>/0``."""

    name = "redis"
    ready_text = "Ready to accept connections"

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def command(self) -> list[str]:
        redis_server = shutil.which("redis-server")
        if redis_server is None:
            missing_component("redis-server", "apt-get install -y redis-server")
        return [
            redis_server,
            *("--bind", HOST, "--port", str(self.port)),
            *("--save", "", "--appendonly", "no", "--daemonize", "no"),
        ]

    def cli(self, *args: str) -> str:
        """Run one command with ``redis-cli`` (installed with ``redis-server``); its output."""
        return subprocess.run(
            ["redis-cli", "-h", HOST, "-p", str(self.port), *args],
            capture_output=True, check=True, text=True, timeout=10,
        ).stdout  # fmt: skip

    def get_commands(self) -> int:
        """How many GETs the server has answered so far (``INFO commandstats``)."""
        stats = re.search(r"^cmdstat_get:calls=(\d+)", self.cli("INFO", "commandstats"), re.M)
        return int(stats.group(1)) if stats else 0


class TlsRedisServer(RedisServer):
    """``redis-server`` that speaks only TLS, with a self-signed certificate for 127.0.0.1 (made
    with ``openssl``) and a password; ``url`` names both, as a user of a managed Redis would."""

    name = "redis-tls"
    password = "tls-test-password"

    def __init__(self, port: int | None = None) -> None:
        super().__init__(port)
        # Beside its log (git-ignored): a throw-away key for a throw-away server.
        self.certificate = ARTIFACTS_DIR / f"{self.name}-{self.port}-cert.pem"
        self.key = ARTIFACTS_DIR / f"{self.name}-{self.port}-key.pem"

    @property
    def url(self) -> str:
        return f"rediss://:{self.password}@{HOST}:{self.port}/0?ssl_ca_certs={self.certificate}"

    def command(self) -> list[str]:
        if shutil.which("openssl") is None:
            missing_component("openssl", "apt-get install -y openssl")
        if not self.certificate.exists():
            ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                 "-subj", f"/CN={HOST}", "-addext", f"subjectAltName=IP:{HOST}",
                 "-keyout", str(self.key), "-out", str(self.certificate)],
                capture_output=True, check=True, timeout=60,
            )  # fmt: skip
        return [
            *super().command(),
            *("--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no"),
            *("--tls-cert-file", str(self.certificate), "--tls-key-file", str(self.key)),
            *("--requirepass", self.password),
        ]

    def cli(self, *args: str) -> str:
        return subprocess.run(
            ["redis-cli", "--tls", "--cacert", str(self.certificate), "--no-auth-warning",
             "-a", self.password, "-h", HOST, "-p", str(self.port), *args],
            capture_output=True, check=True, text=True, timeout=10,
        ).stdout  # fmt: skip


def _offset(info: str, field: str) -> int:
    found = re.search(rf"^{field}:(\d+)", info, re.M)
    return int(found.group(1)) if found else -1


def redis_ping(port: int) -> bytes:
    """Send a raw ``PING`` to Redis on 127.0.0.1 and return the reply line (``b"+PONG"``)."""
    with socket.create_connection((HOST, port), timeout=5) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64).strip()


class ClusterNodeServer(RedisServer):
    """One master of a :class:`RedisClusterServers`; its ``nodes.conf`` lives in ``directory``."""

    name = "redis-cluster"

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory
        self.bus_port = free_port()

    def command(self) -> list[str]:
        return [
            *super().command(),
            *("--cluster-enabled", "yes", "--dir", str(self.directory)),
            *("--cluster-port", str(self.bus_port)),  # not port + 10000: that may be > 65535
            *("--cluster-config-file", f"nodes-{self.port}.conf", "--cluster-node-timeout", "2000"),
        ]


class RedisClusterServers:
    """A Redis Cluster of three masters and no replicas (``redis-cli --cluster create``);
    ``url`` is the app's ``redis+cluster://`` form naming two of them as seed nodes."""

    def __init__(self, directory: Path) -> None:
        self.nodes = [ClusterNodeServer(directory) for _ in range(3)]

    @property
    def url(self) -> str:
        return f"redis+cluster://{HOST}:{self.nodes[0].port},{HOST}:{self.nodes[1].port}"

    def __enter__(self) -> Self:
        try:
            for node in self.nodes:
                node.start()
            subprocess.run(
                ["redis-cli", "--cluster", "create", *(f"{HOST}:{n.port}" for n in self.nodes),
                 "--cluster-replicas", "0", "--cluster-yes"],
                capture_output=True, check=True, timeout=30,
            )  # fmt: skip
            wait_for(self._ready, START_TIMEOUT, "the Redis Cluster to serve every slot")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _ready(self) -> bool:
        return all("cluster_state:ok" in node.cli("CLUSTER", "INFO") for node in self.nodes)

    def keys(self, pattern: str) -> list[str]:
        """The keys matching ``pattern``, from every node."""
        return [key for node in self.nodes for key in node.cli("KEYS", pattern).split()]

    def __exit__(self, *exc_info: object) -> None:
        for node in self.nodes:
            node.stop()


class SentinelServer(ChildProcess):
    """``redis-sentinel`` watching the primary ``service`` at ``primary_port`` (quorum 2), with
    short timeouts so that a failover takes about a second. Its config file is its own (sentinel
    rewrites it) in ``directory``."""

    name = "redis-sentinel"
    ready_text = "+monitor master"

    def __init__(self, directory: Path, service: str, primary_port: int) -> None:
        super().__init__()
        self.config = directory / f"sentinel-{self.port}.conf"
        self.config.write_text(
            f"port {self.port}\nbind {HOST}\ndir {directory}\n"
            f"sentinel monitor {service} {HOST} {primary_port} 2\n"
            f"sentinel down-after-milliseconds {service} 800\n"
            f"sentinel failover-timeout {service} 3000\n"
            f"sentinel parallel-syncs {service} 1\n"
        )

    def command(self) -> list[str]:
        if shutil.which("redis-sentinel") is None:  # same binary, but installed apart
            missing_component("redis-sentinel", "apt-get install -y redis-sentinel")
        redis_server = shutil.which("redis-server")
        assert redis_server is not None
        return [redis_server, str(self.config), "--sentinel"]

    def cli(self, *args: str) -> str:
        return subprocess.run(
            ["redis-cli", "-h", HOST, "-p", str(self.port), *args],
            capture_output=True, check=True, text=True, timeout=10,
        ).stdout  # fmt: skip


class SentinelledServer(RedisServer):
    """A primary or (with ``primary_port``) a replica of a :class:`SentinelRedisServers`. A replica
    writes what it receives to disk, whatever ``--save`` says: into ``directory``."""

    name = "redis-sentinelled"

    def __init__(self, directory: Path, primary_port: int | None = None) -> None:
        super().__init__()
        self.directory = directory
        self.primary_port = primary_port

    def command(self) -> list[str]:
        replica = ("--replicaof", HOST, str(self.primary_port)) if self.primary_port else ()
        sync_now = ("--repl-diskless-sync-delay", "0")  # not 5 s after a replica asks
        return [*super().command(), "--dir", str(self.directory), *sync_now, *replica]


class SentinelRedisServers:
    """A primary, one replica and three sentinels that fail over between them; ``url`` is the
    app's ``redis+sentinel://`` form. :meth:`stop_primary` makes them fail over."""

    service = "sessions"

    def __init__(self, directory: Path) -> None:
        self.primary = SentinelledServer(directory)
        self.replica = SentinelledServer(directory, self.primary.port)
        self.sentinels = [
            SentinelServer(directory, self.service, self.primary.port) for _ in range(3)
        ]

    @property
    def url(self) -> str:
        nodes = ",".join(f"{HOST}:{sentinel.port}" for sentinel in self.sentinels)
        return f"redis+sentinel://{nodes}/{self.service}/0"

    def __enter__(self) -> Self:
        try:
            self.primary.start()
            self.replica.start()
            # Then the sentinels: the replica they learn of from the primary's first INFO
            # (later ones come every 10 s).
            wait_for(self._in_sync, START_TIMEOUT, "the replica to sync")
            for sentinel in self.sentinels:
                sentinel.start()
            wait_for(self._watched, START_TIMEOUT, "the sentinels to see all servers")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _in_sync(self) -> bool:
        return "master_link_status:up" in self.replica.cli("INFO", "replication")

    def _watched(self) -> bool:
        return all(
            f"slaves=1,sentinels={len(self.sentinels)}" in sentinel.cli("INFO", "sentinel")
            for sentinel in self.sentinels
        )

    def wait_replicated(self) -> None:
        """Wait until the replica has every write the primary had when this was called."""
        written = _offset(self.primary.cli("INFO", "replication"), "master_repl_offset")
        wait_for(
            lambda: (
                _offset(self.replica.cli("INFO", "replication"), "slave_repl_offset") >= written
            ),
            START_TIMEOUT,
            "the replica to catch up",
        )

    def primary_port(self) -> int:
        """The port of the primary, as the sentinels name it now."""
        reply = self.sentinels[0].cli("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
        return int(reply.split()[1])

    def server_on(self, port: int) -> SentinelledServer:
        """The primary or the replica, by port."""
        [server] = [server for server in (self.primary, self.replica) if server.port == port]
        return server

    def stop_primary(self) -> None:
        """Stop the primary (it waits until the replica has every write): the sentinels see it
        down after ``down-after-milliseconds`` and promote the replica."""
        self.server_on(self.primary_port()).stop()

    def __exit__(self, *exc_info: object) -> None:
        for server in (*self.sentinels, self.replica, self.primary):
            server.stop()
