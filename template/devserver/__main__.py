"""`python -m devserver`: run the app with auto-reload against a local development provider.

Log in with any username, no Auth0 tenant needed. On first run it creates a
git-ignored `.env` with a random SESSION_SECRET. The AUTH0_* values in `.env`
are left alone: they are used when you run the app without this command.
"""

import argparse
import os
import secrets
import socket
import threading
import time
from pathlib import Path

import uvicorn

from app.auth.urls import AUTH_PREFIX
from devserver.provider import FakeProvider
from devserver.variant import REDIRECT_PATHS, Provider

HOST = "127.0.0.1"


def ensure_env_file(path: Path = Path(".env"), example: Path = Path(".env.example")) -> None:
    """Create `.env` (or add SESSION_SECRET to it) so the app can start."""
    secret_line = f"SESSION_SECRET={secrets.token_urlsafe(48)}\n"
    if not path.exists():
        template = example.read_text() if example.exists() else ""
        lines = [
            line
            for line in template.splitlines(keepends=True)
            if not line.startswith("SESSION_SECRET=")
        ]
        # Readable by its owner only, from the first byte: it holds secrets.
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as env:
            env.write("".join(lines) + secret_line)
        print(f"Created {path} with a random SESSION_SECRET.")
    elif not any(
        line.startswith("SESSION_SECRET=") and line.strip() != "SESSION_SECRET="
        for line in path.read_text().splitlines()
    ):
        path.chmod(0o600)  # it is about to hold a secret
        with path.open("a") as env_file:
            env_file.write("\n" + secret_line)
        print(f"Added a random SESSION_SECRET to {path}.")


def api_audience(app_url: str, env_file: Path = Path(".env")) -> str:
    """The audience of the app's API tokens: yours if `.env` or the environment names one,
    else `<app URL>/api` (set in the environment, for the app)."""
    names = ("API_AUDIENCE", "AUTH0_AUDIENCE")
    lines = env_file.read_text().splitlines() if env_file.exists() else []
    for name in names:
        value = os.environ.get(name) or next(
            (line.split("=", 1)[1].strip() for line in lines if line.startswith(f"{name}=")), ""
        )
        if value:
            return value
    os.environ["API_AUDIENCE"] = f"{app_url}/api"
    return os.environ["API_AUDIENCE"]


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((HOST, port))
        except OSError:
            return True
    return False


def serve_provider(provider: FakeProvider, port: int) -> None:
    server = uvicorn.Server(uvicorn.Config(provider.app, host=HOST, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise SystemExit(f"The development provider could not start on port {port}.")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devserver", description=__doc__)
    parser.add_argument("--port", type=int, default=8000, help="port of the app (default 8000)")
    parser.add_argument(
        "--provider-port", type=int, default=8001, help="port of the provider (default 8001)"
    )
    parser.add_argument("--no-reload", action="store_true", help="do not restart on code changes")
    args = parser.parse_args()
    for port, option, what in (
        (args.port, "--port", "the app"),
        (args.provider_port, "--provider-port", "the development provider"),
    ):
        if port_in_use(port):
            parser.error(
                f"port {port} for {what} is taken (another devserver or program runs there): "
                f"stop it, or choose another port with {option}"
            )

    ensure_env_file()
    app_url = f"http://{HOST}:{args.port}"
    provider = Provider(
        f"http://{HOST}:{args.provider_port}",
        client_secret=secrets.token_urlsafe(32),
        redirect_uris=tuple(app_url + path for path in REDIRECT_PATHS),
        logout_redirect_prefix=f"{app_url}/",
    )
    provider.frontchannel_logout_uri = f"{app_url}{AUTH_PREFIX}/frontchannel-logout"
    serve_provider(provider, args.provider_port)
    os.environ.update(
        AUTH0_DOMAIN=provider.issuer,
        AUTH0_CLIENT_ID=provider.client_id,
        AUTH0_CLIENT_SECRET=provider.client_secret,
        AUTH0_PRIVATE_KEY="",  # blank overrides a key in .env (the local provider takes the secret)
        AUTH0_PRIVATE_KEY_FILE="",
        APP_BASE_URL=app_url,
    )
    audience = api_audience(app_url)
    print(f"Development provider at {provider.issuer} (any username logs in).")
    print(
        f"API tokens for {audience} (see app/api.py):\n"
        f"  curl -s -u {provider.client_id}:{provider.client_secret}"
        f" -d grant_type=client_credentials -d audience={audience} -d scope=read:orders"
        f" {provider.issuer}/token"
    )
    print(f"Open {app_url}")
    uvicorn.run(
        "app.main:app", host=HOST, port=args.port, reload=not args.no_reload, reload_dirs=["app"]
    )


if __name__ == "__main__":
    main()
