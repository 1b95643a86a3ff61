"""Memory over many sessions: one uvicorn worker, 100,000 distinct logins, RSS before and after.

For each store (harness.py) serves the generated app plus one route of this script's, and:

1. measures the worker's resident memory (VmRSS) after start-up and a first login;
2. logs in `--sessions` distinct users through the app's own session layer
   (`/soak/login` builds the session a login through the provider would, and hands it to
   `Sessions.start`, which stores it and sets the cookie; 32 at a time), sampling RSS every
   10 %;
3. reads every session once (`GET /auth/profile` with its cookie, 32 at a time), then again,
   sampling RSS after each pass;
4. logs a tenth of them out (`POST /auth/logout`, same origin), which the cookie store
   records and the server stores delete.

Every in-process cache of the app has a bound (decrypted sessions: 10,000; Redis's and the
database's copies: their `*_CACHE_SIZE`; changed sessions and unfinished logouts: 1,024
each; checked API tokens: 10,000; JWKS and discovery: one document each; refreshes and
locks in flight: only while in flight), so RSS should level off after the first ~10,000
sessions instead of growing with their number. Loopback only.

    python tests/bench/soak.py [--store cookie|redis|sql-sqlite|sql-postgres|all]
        [--sessions 100000] [--concurrency 32]
"""

import argparse
import asyncio
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_session import BENCH_APP, wait_until_serving
from harness import ANSWERS, app_environment, measure_stores

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: components
from components import free_port

from tooling.rendering import Project

SOAK_ROUTES = '''

import secrets as _secrets
import time as _time

from fastapi import Request, Response

from app.auth import get_auth
from app.auth.sessions import AccessToken, Session

soak = APIRouter(prefix="/soak")


@soak.post("/login")
async def soak_login(request: Request, user: str) -> Response:
    """What a login through the provider ends with, without the provider's round trips:
    a session of realistic size (ID token ~1 KB, refresh and access tokens), started."""
    expires_at = int(_time.time()) + 3600
    session = Session.start(
        {{"sub": user, "name": f"User {{user}}", "email": f"{{user}}@example.com"}},
        id_token="h." + _secrets.token_urlsafe(700) + ".s",
        refresh_token=_secrets.token_urlsafe(48),
        access_tokens=(
            AccessToken(_secrets.token_urlsafe(600), expires_at, "openid profile email",
                        audience=None),
        ),
        sid=_secrets.token_urlsafe(16),
    )
    await get_auth(request).sessions.start(request, session)
    return Response(status_code=204)


app.include_router(soak)
'''

RSS = re.compile(r"^VmRSS:\s+(\d+) kB", re.MULTILINE)


def rss_mib(pid: int) -> float:
    found = RSS.search(Path(f"/proc/{pid}/status").read_text())
    assert found, "no VmRSS"
    return int(found.group(1)) / 1024


@dataclass
class Soak:
    store: str
    samples: list[tuple[str, float]] = field(default_factory=list)  # (moment, RSS MiB)
    seconds: dict[str, float] = field(default_factory=dict)
    skipped: str | None = None


async def log_in_all(base: str, users: list[str], concurrency: int) -> list[str]:
    """The session cookie of each user, logged in `concurrency` at a time."""
    cookies: list[str] = [""] * len(users)
    queue = list(enumerate(users))

    async def worker() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            while queue:
                index, user = queue.pop()
                client.cookies.clear()
                answer = await client.post("/soak/login", params={"user": user})
                assert answer.status_code == 204, answer.text
                cookies[index] = f"app_session={client.cookies['app_session']}"

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return cookies


async def send_all(
    base: str, method: str, path: str, cookies: list[str], concurrency: int, expect: int
) -> None:
    queue = list(cookies)

    async def worker() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            while queue:
                cookie = queue.pop()
                headers = {"Cookie": cookie, "Accept": "application/json", "Origin": base}
                answer = await client.request(method, path, headers=headers)
                assert answer.status_code == expect, (answer.status_code, answer.text[:200])

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def soak(project: Project, store: str, settings: dict[str, str], args: argparse.Namespace) -> Soak:
    port = free_port()
    (project.path / "bench_app.py").write_text(BENCH_APP.format(port=port) + SOAK_ROUTES.format())
    server = subprocess.Popen(
        [str(project.bin("uvicorn")), "bench_app:app", "--host", "127.0.0.1", "--port", str(port),
         "--no-access-log", "--log-level", "warning", "--timeout-keep-alive", "60"],
        cwd=project.path, env=app_environment({**settings, "LOG_LEVEL": "WARNING"}),
    )  # fmt: skip
    result = Soak(store)
    base = f"http://127.0.0.1:{port}"

    def sample(moment: str) -> None:
        result.samples.append((moment, rss_mib(server.pid)))
        print(f"[soak] {store:<12} {moment:<28} RSS {result.samples[-1][1]:7.1f} MiB", flush=True)

    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            wait_until_serving(client, server)
        asyncio.run(log_in_all(base, ["warm-up"], 1))
        sample("started, one login")
        cookies: list[str] = []
        step = max(args.sessions // 10, 1)
        started = time.monotonic()
        for first in range(0, args.sessions, step):
            users = [f"user{n}" for n in range(first, min(first + step, args.sessions))]
            cookies += asyncio.run(log_in_all(base, users, args.concurrency))
            sample(f"{len(cookies)} logins")
        result.seconds["logins"] = time.monotonic() - started
        for round_number in (1, 2):
            started = time.monotonic()
            asyncio.run(send_all(base, "GET", "/auth/profile", cookies, args.concurrency, 200))
            result.seconds[f"reads {round_number}"] = time.monotonic() - started
            sample(f"every session read ({round_number})")
        ended = cookies[::10]
        asyncio.run(send_all(base, "POST", "/auth/logout", ended, args.concurrency, 303))
        sample(f"{len(ended)} logouts")
    finally:
        server.terminate()
        server.wait(10)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=[*ANSWERS, "all"], default="all")
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--ref", help="render the template of this commit (default: working tree)")
    args = parser.parse_args()

    results, rendered = measure_stores(
        "bench-soak-",
        args,
        lambda store, project, settings, workdir: soak(project, store, settings, args),
        lambda store, reason: Soak(store, skipped=reason),
    )
    print(json.dumps({"template": rendered, "results": [r.__dict__ for r in results]}, indent=2))
    print(f"\nTemplate {rendered}; {args.sessions} sessions, one uvicorn worker\n")
    print(
        "| store | after start | after 10 % | after all logins | after 2 reads each "
        "| growth 10 % → end |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        if r.skipped:
            print(f"| {r.store} | skipped: {r.skipped} | | | | |")
            continue
        rss = dict(r.samples)
        tenth = r.samples[1][1]
        logins = r.samples[10][1]
        reads = rss["every session read (2)"]
        print(
            f"| {r.store} | {r.samples[0][1]:.0f} MiB | {tenth:.0f} MiB | {logins:.0f} MiB "
            f"| {reads:.0f} MiB | {max(logins, reads) - tenth:+.0f} MiB |"
        )


if __name__ == "__main__":
    main()
