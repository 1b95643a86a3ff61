"""Real components for end-to-end tests: an OpenID provider, Redis, PostgreSQL, the generated app
under uvicorn, and login helpers.

Each component is a context manager that runs one child process on 127.0.0.1, logs its output to
``tests/artifacts/<name>-<port>.log`` and is always stopped on exit. A component that is not
installed skips the test (or fails it when ``CI=true``), see :func:`missing_component`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, NamedTuple, NoReturn, Protocol, Self
from urllib.parse import urlencode, urljoin, urlsplit

import httpx
import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser

HOST = "127.0.0.1"
TESTS_DIR = Path(__file__).resolve().parent
ARTIFACTS_DIR = TESTS_DIR / "artifacts"
PROVIDER_DIR = TESTS_DIR / "e2e" / "provider"

START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0


def missing_component(name: str, how_to_install: str) -> NoReturn:
    """Skip the test because ``name`` is not installed; fail it instead when ``CI=true``."""
    message = f"{name} is not available; install it with: {how_to_install}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until true; after ``timeout`` s raise ``TimeoutError`` naming ``what``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


class ChildProcess:
    """A server process on 127.0.0.1 with its output in a log file; start/stop may repeat.

    Subclasses define ``name``, :meth:`command` and ``ready_text``, printed once it serves.
    """

    name = "process"
    ready_text = ""
    stop_signal = signal.SIGTERM

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.log_path = ARTIFACTS_DIR / f"{self.name}-{self.port}.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def popen_options(self) -> dict[str, Any]:
        """Extra ``subprocess.Popen`` arguments (environment, user, working directory)."""
        return {}

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the process and wait until it prints ``ready_text``; stop it again on failure."""
        if self._process is not None:
            raise RuntimeError(f"{self.name} is already started")
        command = self.command()  # may skip the test: before anything needs cleaning up
        ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        log_offset = self._log.tell()
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            **self.popen_options(),
        )
        try:
            wait_for(lambda: self._is_ready(log_offset), START_TIMEOUT, f"{self.name} to start")
        except BaseException:
            self.stop()
            raise

    def _is_ready(self, log_offset: int) -> bool:
        if not self.running:
            raise RuntimeError(f"{self.name} exited during start-up, see {self.log_path}")
        with self.log_path.open("rb") as log:
            log.seek(log_offset)
            return self.ready_text.encode() in log.read()

    def stop(self) -> None:
        """Stop the process (SIGKILL if it does not end in time) and close its log. Idempotent."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)  # a paused process would not handle the signal
                process.send_signal(self.stop_signal)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): the kernel accepts connections, nothing answers."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Undo :meth:`pause`."""
        self._signal(signal.SIGCONT)

    def _signal(self, signum: signal.Signals) -> None:
        if self._process is None or not self.running:
            raise RuntimeError(f"{self.name} is not running")
        self._process.send_signal(signum)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


# --- OpenID provider ------------------------------------------------------------------------------


class OidcClient(NamedTuple):
    client_id: str
    client_secret: str


@dataclass(frozen=True)
class AccountActivity:
    """What the provider did for one account (``GET /__test/account``), since it started.

    ``token_grants``: successful token requests by grant type; ``token_errors``: failed ones by
    grant type, then error code; ``revoked_grants``: grants revoked by the provider's own rules, by
    route (``"revocation"``: RFC 7009, ``"token"``: reuse of a spent refresh token);
    ``live_grants``: the account's grants that still exist.
    """

    token_grants: dict[str, int]
    token_errors: dict[str, dict[str, int]]
    revoked_grants: dict[str, int]
    live_grants: int

    @property
    def refreshes(self) -> int:
        """Successful ``grant_type=refresh_token`` requests."""
        return self.token_grants.get("refresh_token", 0)

    @property
    def logins(self) -> int:
        """Successful ``grant_type=authorization_code`` requests."""
        return self.token_grants.get("authorization_code", 0)


class OidcProvider(ChildProcess):
    """``tests/e2e/provider/server.mjs`` (panva oidc-provider) at ``http://127.0.0.1:<port>``.

    State lives in memory: :meth:`stop` then :meth:`start` (same port, same signing keys) loses all
    clients, sessions and grants, and :meth:`start` registers nothing again; the caller does.
    Use :meth:`pause`/:meth:`resume` for a provider that hangs instead of refusing connections.
    """

    name = "oidc-provider"

    def __init__(
        self, port: int | None = None, *, access_token_ttl: int = 300, id_token_ttl: int = 300
    ) -> None:
        super().__init__(port)
        self.issuer = f"http://{HOST}:{self.port}"
        self.ready_text = f"ready {self.issuer}"
        self.access_token_ttl = access_token_ttl
        self.id_token_ttl = id_token_ttl

    def command(self) -> list[str]:
        node = shutil.which("node")
        if node is None:
            missing_component("Node.js (20 or later)", "apt-get install -y nodejs")
        if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
            missing_component("oidc-provider (npm)", "npm ci --prefix tests/e2e/provider")
        return [node, str(PROVIDER_DIR / "server.mjs")]

    def popen_options(self) -> dict[str, Any]:
        env = {
            **os.environ,
            "PORT": str(self.port),
            "ISSUER": self.issuer,
            "ACCESS_TOKEN_TTL": str(self.access_token_ttl),
            "ID_TOKEN_TTL": str(self.id_token_ttl),
        }
        return {"env": env, "cwd": PROVIDER_DIR}

    def url(self, path: str) -> str:
        return f"{self.issuer}{path}"

    def metadata(self) -> dict[str, Any]:
        """The discovery document (``/.well-known/openid-configuration``)."""
        response = httpx.get(self.url("/.well-known/openid-configuration"))
        response.raise_for_status()
        return dict(response.json())

    def register_client(
        self,
        redirect_uris: Sequence[str],
        post_logout_redirect_uris: Sequence[str] = (),
        backchannel_logout_uri: str | None = None,
        **metadata: Any,
    ) -> OidcClient:
        """Register a confidential client (client_secret_basic) by Dynamic Client Registration.

        Extra keyword arguments are more client metadata, e.g. ``token_endpoint_auth_method``.
        """
        body: dict[str, Any] = {
            "redirect_uris": list(redirect_uris),
            "post_logout_redirect_uris": list(post_logout_redirect_uris),
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_basic",
        }
        if backchannel_logout_uri is not None:
            body["backchannel_logout_uri"] = backchannel_logout_uri
            body["backchannel_logout_session_required"] = True
        body.update(metadata)
        response = httpx.post(self.url("/reg"), json=body)
        if response.status_code != 201:
            raise RuntimeError(f"registration failed: {response.status_code} {response.text}")
        registered = response.json()
        return OidcClient(registered["client_id"], registered.get("client_secret", ""))

    def logout(self, sub: str, client_id: str | None = None) -> dict[str, Any]:
        """End the provider sessions of ``sub`` (test-only route) and send back-channel logouts.

        Returns ``{"sub": ..., "backchannel": [{"client_id", "ok", "status"?, "error"?}, ...]}``.
        """
        body = {"sub": sub} if client_id is None else {"sub": sub, "client_id": client_id}
        response = httpx.post(self.url("/__test/logout"), json=body, timeout=10)
        response.raise_for_status()
        return dict(response.json())

    def configure_account(
        self, sub: str, *, access_token_ttl: int | None = None, refresh_delay: float | None = None
    ) -> None:
        """Change how the account ``sub`` gets tokens from now on (test-only route).

        ``access_token_ttl`` (seconds) applies to access tokens issued afterwards, including
        refreshed ones; ``refresh_delay`` (seconds, 0 for none) holds back the token endpoint's
        answers to its refresh requests. Arguments left out keep their current values.
        """
        body: dict[str, Any] = {"sub": sub}
        if access_token_ttl is not None:
            body["access_token_ttl"] = access_token_ttl
        if refresh_delay is not None:
            body["refresh_delay_ms"] = round(refresh_delay * 1000)
        response = httpx.post(self.url("/__test/account"), json=body, timeout=10)
        response.raise_for_status()

    def account_activity(self, sub: str) -> AccountActivity:
        """Token requests, errors and grants of the account ``sub`` (test-only route)."""
        response = httpx.get(self.url("/__test/account"), params={"sub": sub}, timeout=10)
        response.raise_for_status()
        data = response.json()
        return AccountActivity(
            token_grants=data["token_grants"],
            token_errors=data["token_errors"],
            revoked_grants=data["revoked_grants"],
            live_grants=data["live_grants"],
        )

    def revoke_grants(self, sub: str) -> int:
        """Revoke every grant of ``sub`` with its tokens, telling no one (test-only route).

        Like an administrator revoking the user's access: refresh tokens get ``invalid_grant``.
        Returns how many grants there were.
        """
        response = httpx.post(self.url("/__test/revoke-grants"), json={"sub": sub}, timeout=10)
        response.raise_for_status()
        return int(response.json()["revoked"])


# --- The generated app ----------------------------------------------------------------------------

# Settings of the generated app (see template/app/config.py) that must not leak in from the shell.
APP_SETTING_PREFIXES = ("AUTH0_", "APP_", "SESSION_")


class RenderedProject(Protocol):
    """A rendered and installed project, like ``Project`` of ``tests/conftest.py``."""

    @property
    def path(self) -> Path: ...

    def bin(self, name: str) -> Path: ...


def app_base_url(port: int) -> str:
    """The URL of an app on ``port`` of 127.0.0.1, its ``APP_BASE_URL``."""
    return f"http://{HOST}:{port}"


def register_app_client(provider: OidcProvider, ports: Sequence[int]) -> OidcClient:
    """Register one client at ``provider`` for the apps on ``ports`` (replicas of one app).

    Every app's callback and post-logout URIs are registered; back-channel logouts go to the first
    app (a client has one such URI).
    """
    base_urls = [app_base_url(port) for port in ports]
    return provider.register_client(
        [f"{base_url}/auth/callback" for base_url in base_urls],
        [f"{base_url}/" for base_url in base_urls],
        backchannel_logout_uri=f"{base_urls[0]}/auth/backchannel-logout",
    )


class AppServer(ChildProcess):
    """The generated app under uvicorn at ``http://127.0.0.1:<port>``, a client of ``provider``.

    Registers its own client at ``provider`` (callback, post-logout and back-channel logout URIs of
    its port) when created, so the provider must be running then, unless given ``client``: apps
    that share a client (see :func:`register_app_client`), a ``session_secret`` and a session store
    act as replicas, each accepting the other's sessions. ``settings`` are more environment
    variables, e.g. ``{"AUTH0_TIMEOUT": "1"}``. The working directory is ``workdir``, which should
    be empty: the app reads ``.env`` from there, and a project's ``.env`` must not change the test.
    """

    name = "app"

    def __init__(
        self,
        project: RenderedProject,
        provider: OidcProvider,
        *,
        workdir: Path,
        settings: Mapping[str, str] | None = None,
        port: int | None = None,
        client: OidcClient | None = None,
        session_secret: str | None = None,
    ) -> None:
        super().__init__(port)
        self.project = project
        self.provider = provider
        self.workdir = workdir
        self.base_url = app_base_url(self.port)
        self.ready_text = f"Uvicorn running on {self.base_url}"
        self.settings = dict(settings or {})
        self.client = client or register_app_client(provider, [self.port])
        self._session_secret = session_secret or secrets.token_urlsafe(48)

    def url(self, path: str) -> str:
        """``path`` (starting with ``/``) on this app."""
        return f"{self.base_url}{path}"

    def command(self) -> list[str]:
        uvicorn = self.project.bin("uvicorn")
        if not uvicorn.exists():
            raise RuntimeError(f"{uvicorn} is missing: is the project installed?")
        app_dir = str(self.project.path)
        return [
            str(uvicorn),
            "app.main:app",
            "--app-dir",
            app_dir,
            "--host",
            HOST,
            "--port",
            str(self.port),
        ]

    def popen_options(self) -> dict[str, Any]:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(APP_SETTING_PREFIXES)}
        env = {
            **inherited,
            "PYTHONUNBUFFERED": "1",
            "AUTH0_DOMAIN": self.provider.issuer,
            "AUTH0_CLIENT_ID": self.client.client_id,
            "AUTH0_CLIENT_SECRET": self.client.client_secret,
            "APP_BASE_URL": self.base_url,
            "SESSION_SECRET": self._session_secret,
            **self.settings,
        }
        return {"env": env, "cwd": self.workdir}

    def start(self) -> None:
        """Start uvicorn and wait until the app answers ``GET /``."""
        super().start()
        try:
            wait_for(self._answers, START_TIMEOUT, f"{self.name} to answer")
        except BaseException:
            self.stop()
            raise

    def _answers(self) -> bool:
        try:
            return httpx.get(self.url("/"), timeout=1).status_code == 200
        except httpx.TransportError:
            return False


# --- Redis ----------------------------------------------------------------------------------------


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


# --- PostgreSQL -----------------------------------------------------------------------------------


def child_pids(parent: int) -> list[int]:
    """The ids of the processes whose parent is ``parent`` (from ``/proc/<pid>/stat``)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # the process ended meanwhile
            continue
        if fields and int(fields[1]) == parent:
            children.append(int(stat.parent.name))
    return children


def postgres_bin(program: str) -> str:
    """Path of a PostgreSQL server program (Debian keeps them out of PATH)."""
    found = shutil.which(program)
    if found is not None:
        return found
    candidates = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{program}"),
        key=lambda path: int(path.parts[-3]) if path.parts[-3].isdigit() else 0,
    )
    if not candidates:
        missing_component("PostgreSQL server", "apt-get install -y postgresql")
    return str(candidates[-1])


class PostgresServer(ChildProcess):
    """A throw-away PostgreSQL cluster in a temporary directory, trust auth on 127.0.0.1 only.

    As root it runs as the ``postgres`` user (PostgreSQL refuses root). ``url`` is for SQLAlchemy
    with asyncpg, ``dsn`` for libpq tools. :meth:`stop` keeps the data; :meth:`cleanup` deletes it.
    """

    name = "postgres"
    ready_text = "database system is ready to accept connections"
    stop_signal = signal.SIGINT  # "fast" shutdown; SIGTERM would wait for clients to disconnect

    def __init__(self, port: int | None = None, *, database: str = "app") -> None:
        super().__init__(port)
        self.database = database
        self.directory: Path | None = None  # created by the first start()
        self._as_postgres = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@{HOST}:{self.port}/{self.database}"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/{self.database}"

    def popen_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"cwd": self.directory}
        if self._as_postgres:
            options.update(user="postgres", group="postgres", extra_groups=[])
        return options

    def command(self) -> list[str]:
        assert self.directory is not None
        return [
            postgres_bin("postgres"),
            *("-D", str(self.directory / "data"), "-F"),
            *("-h", HOST, "-p", str(self.port), "-k", str(self.directory)),
        ]

    def start(self) -> None:
        first_start = self.directory is None
        if first_start:
            self._initdb()
        super().start()
        if first_start:
            self.psql(f'CREATE DATABASE "{self.database}"', database="postgres")

    def _initdb(self) -> None:
        initdb = postgres_bin("initdb")
        self.directory = Path(tempfile.mkdtemp(prefix="e2e-postgres-"))
        if self._as_postgres:
            shutil.chown(self.directory, "postgres", "postgres")
        command = [
            initdb,
            *("-D", str(self.directory / "data"), "-U", "postgres", "--auth=trust"),
            *("--no-sync", "--no-locale", "--encoding=UTF8"),
        ]
        subprocess.run(command, check=True, capture_output=True, **self.popen_options())

    def psql(self, sql: str, database: str | None = None) -> str:
        """Run ``sql`` with ``psql`` and return its unaligned, tuples-only output."""
        dsn = f"postgresql://postgres@{HOST}:{self.port}/{database or self.database}"
        result = subprocess.run(
            [postgres_bin("psql"), dsn, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
            check=True,
            capture_output=True,
            text=True,
        )
        return result.stdout.strip()

    def _signal(self, signum: signal.Signals) -> None:
        """Signal the postmaster and its children: the backends serve open connections by
        themselves, so :meth:`pause` must freeze them too for the server to hang."""
        super()._signal(signum)
        assert self._process is not None
        for pid in child_pids(self._process.pid):
            with contextlib.suppress(ProcessLookupError):  # a backend that just exited
                os.kill(pid, signum)

    def stop(self) -> None:
        if self.running:
            self.resume()  # paused backends would keep the postmaster from shutting down
        super().stop()

    def cleanup(self) -> None:
        """Stop the server and delete its data directory."""
        self.stop()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.cleanup()


# --- Browser --------------------------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@contextmanager
def chromium_browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (never ``playwright install``)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing_component("playwright (Python package)", "pip install -r tests/requirements.txt")
    if not CHROMIUM.exists():
        missing_component("Chromium", "apt-get install -y chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            yield browser
        finally:
            browser.close()


# --- OAuth helpers --------------------------------------------------------------------------------


def pkce_pair() -> tuple[str, str]:
    """A PKCE ``(code_verifier, code_challenge)`` pair for the S256 method."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, NOT verified: for assertions about tokens only."""
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


@dataclass
class _Form:
    action: str
    fields: dict[str, str] = field(default_factory=dict)


class _FormParser(HTMLParser):
    """Collects the forms of a page with their hidden/preset input values."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[_Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.forms.append(_Form(values.get("action", "")))
        elif tag == "input" and self.forms and values.get("name"):
            self.forms[-1].fields[values["name"]] = values.get("value", "")


def _forms(html: str) -> list[_Form]:
    parser = _FormParser()
    parser.feed(html)
    parser.close()
    return parser.forms


def _drive_provider(
    client: httpx.Client, url: str, answer: Callable[[_Form], dict[str, str] | None]
) -> str:
    """GET ``url`` on the provider, follow its redirects and answer its forms with ``answer``.

    Returns the first redirect that leaves the provider (scheme, host and port differ), unfollowed.
    """
    provider_origin = urlsplit(url)[:2]
    response = client.get(url, follow_redirects=False)
    for _step in range(10):
        if response.is_redirect:
            location = urljoin(str(response.url), response.headers["location"])
            if urlsplit(location)[:2] != provider_origin:
                return location
            response = client.get(location, follow_redirects=False)
            continue
        if response.status_code != 200:
            raise AssertionError(f"provider answered {response.status_code}: {response.text[:500]}")
        page_forms = [(form, answer(form)) for form in _forms(response.text)]
        answered = [(form, data) for form, data in page_forms if data is not None]
        if not answered:
            raise AssertionError(f"unexpected page at {response.url}: {response.text[:500]}")
        form, data = answered[0]
        action = urljoin(str(response.url), form.action)
        response = client.post(action, data={**form.fields, **data}, follow_redirects=False)
    raise AssertionError(f"too many steps at the provider, last at {response.url}")


def provider_login(client: httpx.Client, authorize_url: str, username: str) -> str:
    """Log ``username`` in through the provider's login (and consent) pages, with plain HTTP.

    ``client`` must keep cookies across calls (the provider's interaction cookies) and should be
    the same client for the app's requests, if any. Returns the redirect to the app's callback
    (``...?code=...&state=...`` or ``...?error=...``) without following it.
    """

    def answer(form: _Form) -> dict[str, str] | None:
        if form.fields.get("prompt") == "login":
            return {"login": username, "password": "any password"}
        if form.fields.get("prompt") == "consent":
            return {}
        return None

    return _drive_provider(client, authorize_url, answer)


def provider_logout(client: httpx.Client, end_session_url: str) -> str:
    """Confirm RP-initiated logout on the provider's page (``logout=yes``: the whole session).

    Returns the redirect to the ``post_logout_redirect_uri`` without following it. Raises if the
    provider keeps the user on its own "signed out" page (no registered post-logout URI).
    """

    def answer(form: _Form) -> dict[str, str] | None:
        return {"logout": "yes"} if "xsrf" in form.fields else None

    return _drive_provider(client, end_session_url, answer)


def authorize_url(
    provider: OidcProvider,
    client_id: str,
    redirect_uri: str,
    code_challenge: str,
    *,
    scope: str = "openid profile email offline_access",
    state: str | None = None,
    **params: str,
) -> str:
    """An authorization-code request URL with PKCE S256 and a random state and nonce."""
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state or secrets.token_urlsafe(16),
        "nonce": secrets.token_urlsafe(16),
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
        **params,
    }
    return f"{provider.url('/auth')}?{urlencode(query)}"
