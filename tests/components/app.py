"""The generated app under uvicorn, a client of the test OpenID provider."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import httpx

from components.process import HOST, START_TIMEOUT, ChildProcess, wait_for
from components.provider import OidcClient, OidcProvider

# Settings of the generated app (see template/app/config.py) that must not leak in from the shell.
APP_SETTING_PREFIXES = ("AUTH0_", "AUTH_", "APP_", "SESSION_")


class RenderedProject(Protocol):
    """A rendered and installed project, like ``Project`` of ``tooling/rendering.py``."""

    @property
    def path(self) -> Path: ...

    def bin(self, name: str) -> Path: ...


# Where the generated app mounts its auth routes unless its ``AUTH_PREFIX`` setting says otherwise
# (``DEFAULT_AUTH_PREFIX`` of template/app/auth/urls.py); AppServer sets no ``AUTH_PREFIX``.
AUTH_PREFIX = "/auth"


def app_base_url(port: int, host: str = HOST) -> str:
    """The URL of an app on ``port`` of 127.0.0.1, its ``APP_BASE_URL``; ``host`` may be another
    name of that address (``localhost``: another site for browsers)."""
    return f"http://{host}:{port}"


def register_app_client(
    provider: OidcProvider,
    ports: Sequence[int],
    *,
    host: str = HOST,
    backchannel_logout: bool = True,
    frontchannel_logout: bool = True,
) -> OidcClient:
    """Register one client at ``provider`` for the apps on ``ports`` (replicas of one app).

    Every app's callback and post-logout URIs are registered; back-channel and front-channel
    logouts (with ``iss`` and ``sid``) go to the first app (a client has one URI of each), unless
    turned off. ``host``: the apps' host name in their URLs (see :func:`app_base_url`).
    """
    base_urls = [app_base_url(port, host) for port in ports]
    auth_url = f"{base_urls[0]}{AUTH_PREFIX}"
    logout_uris: dict[str, Any] = {}
    if backchannel_logout:
        logout_uris["backchannel_logout_uri"] = f"{auth_url}/backchannel-logout"
    if frontchannel_logout:
        logout_uris["frontchannel_logout_uri"] = f"{auth_url}/frontchannel-logout"
        logout_uris["frontchannel_logout_session_required"] = True
    return provider.register_client(
        [f"{base_url}{AUTH_PREFIX}/callback" for base_url in base_urls],
        [f"{base_url}/" for base_url in base_urls],
        **logout_uris,
    )


class AppServer(ChildProcess):
    """The generated app under uvicorn at ``http://127.0.0.1:<port>``, a client of ``provider``.

    Registers its own client at ``provider`` (callback, post-logout, back-channel and front-channel
    logout URIs of its port) when created, so the provider must be running then, unless given
    ``client``: apps that share a client (see :func:`register_app_client`), a ``session_secret``
    and a session store act as replicas, each accepting the other's sessions. ``settings`` are
    more environment variables, e.g. ``{"AUTH0_TIMEOUT": "1"}``. The working directory is
    ``workdir``, which should be empty: the app reads ``.env`` from there, and a project's ``.env``
    must not change the test.
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
        workers: int = 1,
    ) -> None:
        super().__init__(port)
        self.workers = workers
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
            *(["--workers", str(self.workers)] if self.workers > 1 else []),
        ]

    def worker_pids(self) -> list[int]:
        """The worker processes of ``uvicorn --workers N`` (empty with one worker)."""
        if self._process is None or self.workers == 1:
            return []
        pid = self._process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return [int(child) for child in children if "spawn" in _cmdline(int(child))]

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
            # Each of several workers imports the app on a machine that runs other tests.
            timeout = START_TIMEOUT * (2 if self.workers > 1 else 1)
            wait_for(self._answers, timeout, f"{self.name} to answer")
        except BaseException:
            self.stop()
            raise

    def _answers(self) -> bool:
        try:
            return httpx.get(self.url("/"), timeout=1).status_code == 200
        except httpx.TransportError:
            return False


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
