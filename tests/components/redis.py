"""Debian's ``redis-server``: plain, and TLS-only with a password."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess

from components.process import ARTIFACTS_DIR, HOST, ChildProcess, missing_component


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


def redis_ping(port: int) -> bytes:
    """Send a raw ``PING`` to Redis on 127.0.0.1 and return the reply line (``b"+PONG"``)."""
    with socket.create_connection((HOST, port), timeout=5) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64).strip()
