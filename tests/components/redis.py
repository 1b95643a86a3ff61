"""Debian's ``redis-server``: plain, TLS-only with a password, a cluster, a sentinel set."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from components.process import (
    ARTIFACTS_DIR,
    HOST,
    START_TIMEOUT,
    ChildProcess,
    free_port,
    missing_component,
    wait_for,
)


@dataclass(frozen=True)
class Tls:
    """A throw-away self-signed certificate for 127.0.0.1 (its own authority), made with
    ``openssl`` beside the logs (git-ignored), for servers that speak only TLS."""

    certificate: Path
    key: Path

    @classmethod
    def make(cls, name: str) -> Tls:
        if shutil.which("openssl") is None:
            missing_component("openssl", "apt-get install -y openssl")
        tls = cls(ARTIFACTS_DIR / f"{name}-cert.pem", ARTIFACTS_DIR / f"{name}-key.pem")
        if not tls.certificate.exists():
            ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                 "-subj", f"/CN={HOST}", "-addext", f"subjectAltName=IP:{HOST}",
                 "-keyout", str(tls.key), "-out", str(tls.certificate)],
                capture_output=True, check=True, timeout=60,
            )  # fmt: skip
        return tls

    def server_args(self, port: int) -> list[str]:
        """TLS only, on ``port``, also towards a primary and the other nodes of a cluster."""
        return [
            *("--port", "0", "--tls-port", str(port), "--tls-auth-clients", "no"),
            *("--tls-cert-file", str(self.certificate), "--tls-key-file", str(self.key)),
            *("--tls-ca-cert-file", str(self.certificate)),
            *("--tls-replication", "yes", "--tls-cluster", "yes"),
        ]

    def cli_args(self) -> list[str]:
        return ["--tls", "--cacert", str(self.certificate)]


class RedisServer(ChildProcess):
    """Debian's ``redis-server`` without persistence; ``url`` is ``redis://127.0.0.1:<port>/0``.
    With ``tls`` it speaks only TLS; with ``password`` it asks for one (from its primary too)."""

    name = "redis"
    ready_text = "Ready to accept connections"

    def __init__(
        self, port: int | None = None, *, tls: Tls | None = None, password: str | None = None
    ) -> None:
        super().__init__(port)
        self.tls = tls
        self.password = password

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
            *(self.tls.server_args(self.port) if self.tls else ()),
            *(("--requirepass", self.password, "--masterauth", self.password)
              if self.password else ()),
        ]  # fmt: skip

    def cli_auth(self) -> list[str]:
        """``redis-cli``'s options for this server's TLS and password."""
        return [
            *(self.tls.cli_args() if self.tls else ()),
            *(("--no-auth-warning", "-a", self.password) if self.password else ()),
        ]

    def cli_args(self) -> list[str]:
        """``redis-cli``'s options to reach this server."""
        return [*self.cli_auth(), "-h", HOST, "-p", str(self.port)]

    def cli(self, *args: str) -> str:
        """Run one command with ``redis-cli`` (installed with ``redis-server``); its output."""
        return subprocess.run(
            ["redis-cli", *self.cli_args(), *args],
            capture_output=True, check=True, text=True, timeout=10,
        ).stdout  # fmt: skip

    def get_commands(self) -> int:
        """How many GETs the server has answered so far (``INFO commandstats``)."""
        stats = re.search(r"^cmdstat_get:calls=(\d+)", self.cli("INFO", "commandstats"), re.M)
        return int(stats.group(1)) if stats else 0


class TlsRedisServer(RedisServer):
    """``redis-server`` that speaks only TLS, with a self-signed certificate for 127.0.0.1 and a
    password; ``url`` names both, as a user of a managed Redis would."""

    name = "redis-tls"

    def __init__(self, port: int | None = None) -> None:
        port = port or free_port()
        super().__init__(port, tls=Tls.make(f"{self.name}-{port}"), password="tls-test-password")

    @property
    def url(self) -> str:
        assert self.tls is not None
        return f"rediss://:{self.password}@{HOST}:{self.port}/0?ssl_ca_certs={self.tls.certificate}"


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

    def __init__(
        self, directory: Path, *, tls: Tls | None = None, password: str | None = None
    ) -> None:
        super().__init__(tls=tls, password=password)
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
    ``url`` is the app's ``redis+cluster://`` form naming two of them as seed nodes. With
    ``tls``, every node (and the cluster bus) speaks only TLS and asks for a password:
    ``rediss+cluster://``."""

    password = "cluster-test-password"

    def __init__(self, directory: Path, *, tls: bool = False) -> None:
        self.tls = Tls.make(f"redis-cluster-{directory.name}") if tls else None
        password = self.password if tls else None
        self.nodes = [
            ClusterNodeServer(directory, tls=self.tls, password=password) for _ in range(3)
        ]

    @property
    def url(self) -> str:
        seeds = f"{HOST}:{self.nodes[0].port},{HOST}:{self.nodes[1].port}"
        if self.tls is None:
            return f"redis+cluster://{seeds}"
        return f"rediss+cluster://:{self.password}@{seeds}?ssl_ca_certs={self.tls.certificate}"

    def __enter__(self) -> Self:
        try:
            for node in self.nodes:
                node.start()
            subprocess.run(
                ["redis-cli", *self.nodes[0].cli_auth(), "--cluster", "create",
                 *(f"{HOST}:{n.port}" for n in self.nodes),
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


class SentinelServer(RedisServer):
    """``redis-sentinel`` watching the primary ``service`` at ``primary_port`` (quorum 2), with
    short timeouts so that a failover takes about a second. Its config file is its own (sentinel
    rewrites it) in ``directory``."""

    name = "redis-sentinel"
    ready_text = "+monitor master"

    def __init__(
        self,
        directory: Path,
        service: str,
        primary_port: int,
        *,
        tls: Tls | None = None,
        passwords: tuple[str, str] | None = None,  # the primary's, the sentinels' own
    ) -> None:
        super().__init__(tls=tls, password=passwords[1] if passwords else None)
        self.config = directory / f"sentinel-{self.port}.conf"
        listen = (
            f"port 0\ntls-port {self.port}\ntls-auth-clients no\ntls-replication yes\n"
            f"tls-cert-file {tls.certificate}\ntls-key-file {tls.key}\n"
            f"tls-ca-cert-file {tls.certificate}\n"
            if tls
            else f"port {self.port}\n"
        )
        auth = (
            f"requirepass {passwords[1]}\nsentinel auth-pass {service} {passwords[0]}\n"
            if passwords
            else ""
        )
        self.config.write_text(
            f"{listen}bind {HOST}\ndir {directory}\n"
            f"sentinel monitor {service} {HOST} {primary_port} 2\n{auth}"
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


class SentinelledServer(RedisServer):
    """A primary or (with ``primary_port``) a replica of a :class:`SentinelRedisServers`. A replica
    writes what it receives to disk, whatever ``--save`` says: into ``directory``."""

    name = "redis-sentinelled"

    def __init__(
        self,
        directory: Path,
        primary_port: int | None = None,
        *,
        tls: Tls | None = None,
        password: str | None = None,
    ) -> None:
        super().__init__(tls=tls, password=password)
        self.directory = directory
        self.primary_port = primary_port

    def command(self) -> list[str]:
        replica = ("--replicaof", HOST, str(self.primary_port)) if self.primary_port else ()
        sync_now = ("--repl-diskless-sync-delay", "0")  # not 5 s after a replica asks
        return [*super().command(), "--dir", str(self.directory), *sync_now, *replica]


class SentinelRedisServers:
    """A primary, one replica and three sentinels that fail over between them; ``url`` is the
    app's ``redis+sentinel://`` form. :meth:`stop_primary` makes them fail over. With ``tls``,
    every server and sentinel speaks only TLS, and each asks for a password (the sentinels
    for their own): ``rediss+sentinel://``."""

    service = "sessions"
    passwords = ("primary-test-password", "sentinel-test-password")

    def __init__(self, directory: Path, *, tls: bool = False) -> None:
        self.tls = Tls.make(f"redis-sentinel-{directory.name}") if tls else None
        password = self.passwords[0] if tls else None
        self.primary = SentinelledServer(directory, tls=self.tls, password=password)
        self.replica = SentinelledServer(
            directory, self.primary.port, tls=self.tls, password=password
        )
        self.sentinels = [
            SentinelServer(
                directory,
                self.service,
                self.primary.port,
                tls=self.tls,
                passwords=self.passwords if tls else None,
            )
            for _ in range(3)
        ]

    @property
    def url(self) -> str:
        nodes = ",".join(f"{HOST}:{sentinel.port}" for sentinel in self.sentinels)
        if self.tls is None:
            return f"redis+sentinel://{nodes}/{self.service}/0"
        return (
            f"rediss+sentinel://:{self.passwords[0]}@{nodes}/{self.service}/0"
            f"?sentinel_password={self.passwords[1]}&ssl_ca_certs={self.tls.certificate}"
        )

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
