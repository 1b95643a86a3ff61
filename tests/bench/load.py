"""Load per store: many clients with sessions on protected routes, and many logins at once.

For each store (see harness.py: cookie, redis, sql-sqlite, sql-postgres) renders and installs
the project for that `session_store` answer (once per answer), starts what the store needs and
serves the app with uvicorn (one worker), the in-process dev provider approving logins (the
`bench_app.py` of bench_session.py). Then:

1. Concurrent logins: `--logins` clients (default 50), each with a cookie jar of its own, go
   through `/auth/login` -> the provider -> `/auth/callback` in lock-step: all start their
   login, then all are approved, then all callbacks arrive at once, so every transaction is
   pending at the same time. Each must end up logged in as its own user, with a session of
   its own (no transaction mix-ups).
2. Load: `--clients` clients (default 200), each logged in as its own user and on a
   keep-alive connection of its own, request `/auth/profile` (JSON) and `/profile` (HTML) in
   turn for `--seconds` (default 30). Every answer must be 200 and show the client's own user;
   anything else (another status, another user, a connection error or a timeout) is an error.

Reports throughput, p50/p99 latency per route and errors per store; exits 1 if any store had
an error. Loopback only; bounded in time (about `--seconds` + 10 s per store, plus rendering
and installing each project once).

    python tests/bench/load.py [--store cookie|redis|sql-sqlite|sql-postgres|all]
        [--seconds 30] [--clients 200] [--logins 50] [--ref COMMIT]
"""

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_session import BENCH_APP, cpu_seconds, wait_until_serving
from harness import ANSWERS, app_environment, measure_stores

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: components
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: tooling
from components import free_port

from tooling.rendering import Project

HOST = "127.0.0.1"
ROUTES = ("/auth/profile", "/profile")
REQUEST_TIMEOUT = 10.0  # seconds; a slower answer counts as an error
LOGIN_CONCURRENCY = 50  # logins at a time while the load clients get their sessions
T = TypeVar("T")


def user_name(kind: str, number: int) -> str:
    return f"{kind}-{number:03d}"


# --- Concurrent logins ----------------------------------------------------------------------------


@dataclass
class LoginResult:
    clients: int
    succeeded: int = 0
    mixed_up: int = 0  # logged in, but as someone else
    failures: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0  # wall time of all of them

    @property
    def ok(self) -> bool:
        return self.succeeded == self.clients and not self.mixed_up and not self.failures


def session_cookie_header(client: httpx.AsyncClient) -> str:
    """The `Cookie` header of the client's app session (all chunks of a cookie session)."""
    cookies = sorted(
        (cookie.name, cookie.value or "")
        for cookie in client.cookies.jar
        if cookie.name == "app_session" or cookie.name.startswith("app_session.")
    )
    return "; ".join(f"{name}={value}" for name, value in cookies)


class LoginFlow:
    """One browser's login, step by step, with a cookie jar of its own."""

    def __init__(self, base_url: str, user: str) -> None:
        self.user = user
        self.client = httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT)
        self.authorize_url = ""
        self.callback_url = ""

    async def start(self) -> None:
        response = await self.client.get("/auth/login", params={"returnTo": "/profile"})
        _expect(response, 303, "login")
        self.authorize_url = response.headers["location"]

    async def approve(self) -> None:
        """The provider's side: the user logs in, the browser is sent back to the callback."""
        response = await self.client.get(
            "/bench/approve", params={"url": self.authorize_url, "user": self.user}
        )
        _expect(response, 200, "approve")
        self.callback_url = response.json()["callback"]

    async def finish(self) -> None:
        response = await self.client.get(self.callback_url, headers={"Accept": "text/html"})
        _expect(response, 303, "callback")
        if response.headers.get("location") != "/profile":
            raise LoginFailure(f"callback sent to {response.headers.get('location')!r}")

    async def logged_in_as(self) -> str:
        """The `sub` of the session this client now has; also checks the HTML page."""
        profile = await self.client.get("/auth/profile", headers={"Accept": "application/json"})
        _expect(profile, 200, "profile")
        page = await self.client.get("/profile", headers={"Accept": "text/html"})
        _expect(page, 200, "profile page")
        sub = str(profile.json()["sub"])
        if f'"sub": "{sub}"' not in page.text:
            raise LoginFailure("the profile page shows another user than /auth/profile")
        return sub

    async def aclose(self) -> None:
        await self.client.aclose()


class LoginFailure(Exception):
    pass


def _expect(response: httpx.Response, status: int, step: str) -> None:
    if response.status_code != status:
        raise LoginFailure(f"{step}: {response.status_code}")


async def _each(flows: list[LoginFlow], step: Callable[[LoginFlow], Awaitable[T]]) -> list[Any]:
    """Run `step` for every flow at once; failures are returned, not raised."""
    return await asyncio.gather(*(step(flow) for flow in flows), return_exceptions=True)


async def concurrent_logins(base_url: str, count: int) -> LoginResult:
    """`count` logins in lock-step (see the module docstring); each checked for mix-ups."""
    result = LoginResult(count)
    flows = [LoginFlow(base_url, user_name("login", n)) for n in range(count)]
    failed: dict[str, str] = {}  # user -> what went wrong first

    async def each(step: Callable[[LoginFlow], Awaitable[T]]) -> list[tuple[LoginFlow, T]]:
        live = [flow for flow in flows if flow.user not in failed]
        done = []
        for flow, outcome in zip(live, await _each(live, step), strict=True):
            if isinstance(outcome, BaseException):
                failed[flow.user] = f"{type(outcome).__name__}: {outcome}"
            else:
                done.append((flow, outcome))
        return done

    try:
        started = time.perf_counter()
        await each(LoginFlow.start)  # every transaction pending at once ...
        await each(LoginFlow.approve)
        await each(LoginFlow.finish)  # ... and every callback at once
        result.seconds = time.perf_counter() - started
        sessions = []
        for flow, sub in await each(LoginFlow.logged_in_as):
            sessions.append(session_cookie_header(flow.client))
            if sub != flow.user:
                result.mixed_up += 1
            elif any(cookie.name.startswith("app_tx.") for cookie in flow.client.cookies.jar):
                failed[flow.user] = "the transaction cookie was not removed"
            else:
                result.succeeded += 1
        if len(set(sessions)) != len(sessions):
            result.failures["two clients got the same session cookie"] += 1
    finally:
        await asyncio.gather(*(flow.aclose() for flow in flows))
    result.failures.update(failed.values())
    return result


async def log_in_many(base_url: str, users: list[str]) -> list[str]:
    """Log every user in (at most LOGIN_CONCURRENCY at a time); their session cookie headers."""
    limit = asyncio.Semaphore(LOGIN_CONCURRENCY)

    async def log_in(user: str) -> str:
        async with limit:
            flow = LoginFlow(base_url, user)
            try:
                await flow.start()
                await flow.approve()
                await flow.finish()
                if (sub := await flow.logged_in_as()) != user:
                    raise SystemExit(f"{user} was logged in as {sub}")
                return session_cookie_header(flow.client)
            finally:
                await flow.aclose()

    return list(await asyncio.gather(*(log_in(user) for user in users)))


# --- Load: many clients with sessions -------------------------------------------------------------


@dataclass
class RouteStats:
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class LoadResult:
    store: str
    seconds: float = 0.0
    routes: dict[str, RouteStats] = field(
        default_factory=lambda: {route: RouteStats() for route in ROUTES}
    )
    app_cpu_us_per_request: float = 0.0
    client_cpu_share: float = 0.0  # CPU seconds of this process per wall second
    logins: LoginResult | None = None
    skipped: str | None = None

    @property
    def requests(self) -> int:
        return sum(len(stats.latencies_ms) for stats in self.routes.values())

    @property
    def errors(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for stats in self.routes.values():
            total.update(stats.errors)
        return total


def request_bytes(path: str, cookie: str, accept: str, port: int) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAccept: {accept}\r\n"
        f"Cookie: {cookie}\r\nUser-Agent: load.py\r\n\r\n"
    ).encode()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """One HTTP/1.1 response: status, body, and whether the server keeps the connection."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed")
    status = int(status_line.split(b" ", 2)[1])
    length, chunked, keep_alive = 0, False, True
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value:
            chunked = True
        elif name == b"connection" and value == b"close":
            keep_alive = False
    if not chunked:
        return status, await reader.readexactly(length), keep_alive
    body = bytearray()
    while size := int((await reader.readline()).split(b";")[0], 16):
        body += await reader.readexactly(size)
        await reader.readline()
    await reader.readline()
    return status, bytes(body), keep_alive


def owner_of(route: str, body: bytes) -> str | None:
    """Whose data a 200 answer of `route` shows."""
    if route == "/auth/profile":
        return str(json.loads(body)["sub"])
    marker = b'"sub": "'
    start = body.find(marker)
    if start < 0:
        return None
    start += len(marker)
    return body[start : body.index(b'"', start)].decode()


async def load_client(
    port: int, user: str, cookie: str, deadline: float, result: LoadResult, measuring: list[bool]
) -> None:
    """Request the routes in turn on one keep-alive connection until `deadline`."""
    requests = [
        (route, request_bytes(route, cookie, accept, port))
        for route, accept in zip(ROUTES, ("application/json", "text/html"), strict=True)
    ]
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    turn = 0
    try:
        while time.perf_counter() < deadline:
            route, request = requests[turn % len(requests)]
            turn += 1
            started = time.perf_counter()
            error = None
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    if connection is None:
                        connection = await asyncio.open_connection(HOST, port)
                    reader, writer = connection
                    writer.write(request)
                    status, body, keep_alive = await read_response(reader)
                if not keep_alive:
                    writer.close()
                    connection = None
                if status != 200:
                    error = f"status {status}"
                elif owner_of(route, body) != user:
                    error = "another user's data"
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                error = type(exc).__name__
                if connection is not None:
                    connection[1].close()
                    connection = None
            if not measuring[0]:
                continue  # warm-up
            stats = result.routes[route]
            stats.latencies_ms.append((time.perf_counter() - started) * 1000)
            if error is not None:
                stats.errors[error] += 1
    finally:
        if connection is not None:
            connection[1].close()


async def run_load(
    pid: int, port: int, users: list[str], cookies: list[str], args: argparse.Namespace
) -> LoadResult:
    """Every user's client at once; measured after the warm-up, CPU times over the same span."""
    result = LoadResult("")
    measuring = [False]
    deadline = time.perf_counter() + args.warmup + args.seconds
    clients = [
        asyncio.create_task(load_client(port, user, cookie, deadline, result, measuring))
        for user, cookie in zip(users, cookies, strict=True)
    ]
    await asyncio.sleep(args.warmup)
    measuring[0] = True
    started, app_cpu, own_cpu = time.perf_counter(), cpu_seconds(pid), time.process_time()
    await asyncio.gather(*clients)
    result.seconds = time.perf_counter() - started
    app_cpu, own_cpu = cpu_seconds(pid) - app_cpu, time.process_time() - own_cpu
    result.app_cpu_us_per_request = app_cpu / max(result.requests, 1) * 1e6
    result.client_cpu_share = own_cpu / result.seconds
    return result


def measure(
    project: Project, store: str, settings: dict[str, str], args: argparse.Namespace
) -> LoadResult:
    port = args.port or free_port()
    (project.path / "bench_app.py").write_text(BENCH_APP.format(port=port))
    server = subprocess.Popen(
        [str(project.bin("uvicorn")), "bench_app:app", "--host", HOST, "--port", str(port),
         "--no-access-log", "--log-level", "warning"],
        cwd=project.path,
        env=app_environment(settings),
    )  # fmt: skip
    base_url = f"http://{HOST}:{port}"
    try:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            wait_until_serving(client, server)
        logins = asyncio.run(concurrent_logins(base_url, args.logins))
        print(
            f"[load] {store:<12} {args.logins} concurrent logins: {logins.succeeded} ok, "
            f"{logins.mixed_up} mixed up, failures {dict(logins.failures) or 0} "
            f"({logins.seconds:.2f} s)",
            flush=True,
        )
        users = [user_name("load", n) for n in range(args.clients)]
        cookies = asyncio.run(log_in_many(base_url, users))
        result = asyncio.run(run_load(server.pid, port, users, cookies, args))
        result.store, result.logins = store, logins
        for route, stats in result.routes.items():
            print(
                f"[load] {store:<12} {route:<14} {len(stats.latencies_ms) / result.seconds:8.0f}"
                f" req/s  p50 {stats.quantile(0.5):7.1f} ms  p99 {stats.quantile(0.99):7.1f} ms"
                f"  errors {sum(stats.errors.values())} {dict(stats.errors) or ''}",
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(10)
    return result


# --- Report ---------------------------------------------------------------------------------------


def print_table(results: list[LoadResult], args: argparse.Namespace, source: str) -> None:
    print(
        f"\n{source}; {args.clients} clients x {args.seconds} s (after {args.warmup} s warm-up), "
        f"{args.logins} concurrent logins; one uvicorn worker"
    )
    header = (
        f"{'store':<13}{'req/s':>7}{'p50 ms':>8}{'p99 ms':>8}{'errors':>7}"
        f"{'/auth/profile p50/p99':>23}{'/profile p50/p99':>18}{'app CPU us/req':>16}"
        f"{'client CPU':>11}   logins"
    )
    print(header)
    for result in results:
        if result.skipped:
            print(f"{result.store:<13} skipped: {result.skipped}")
            continue
        merged = RouteStats([x for s in result.routes.values() for x in s.latencies_ms])
        api, page = result.routes["/auth/profile"], result.routes["/profile"]
        logins = result.logins
        login_text = (
            f"{logins.succeeded}/{logins.clients} ok, {logins.mixed_up} mixed up "
            f"in {logins.seconds:.2f} s"
            if logins
            else "-"
        )
        print(
            f"{result.store:<13}{result.requests / result.seconds:>7.0f}"
            f"{merged.quantile(0.5):>8.1f}{merged.quantile(0.99):>8.1f}"
            f"{sum(result.errors.values()):>7}"
            f"{f'{api.quantile(0.5):.1f} / {api.quantile(0.99):.1f}':>23}"
            f"{f'{page.quantile(0.5):.1f} / {page.quantile(0.99):.1f}':>18}"
            f"{result.app_cpu_us_per_request:>16.0f}{result.client_cpu_share:>10.0%}"
            f"   {login_text}"
        )


def summary(result: LoadResult) -> dict[str, Any]:
    if result.skipped:
        return {"skipped": result.skipped}
    return {
        "seconds": round(result.seconds, 2),
        "requests": result.requests,
        "requests_per_second": round(result.requests / result.seconds),
        "errors": dict(result.errors),
        "routes": {
            route: {
                "requests": len(stats.latencies_ms),
                "p50_ms": round(stats.quantile(0.5), 2),
                "p99_ms": round(stats.quantile(0.99), 2),
                "max_ms": round(max(stats.latencies_ms, default=0.0), 2),
                "errors": dict(stats.errors),
            }
            for route, stats in result.routes.items()
        },
        "app_cpu_us_per_request": round(result.app_cpu_us_per_request, 1),
        "client_cpu_share": round(result.client_cpu_share, 2),
        "logins": asdict(result.logins) if result.logins else None,
    }


def raise_open_files_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=[*ANSWERS, "all"], default="all")
    parser.add_argument("--seconds", type=float, default=30, help="of load per store")
    parser.add_argument("--warmup", type=float, default=2, help="seconds before measuring")
    parser.add_argument("--clients", type=int, default=200, help="concurrent clients")
    parser.add_argument("--logins", type=int, default=50, help="concurrent logins")
    parser.add_argument("--port", type=int, default=0, help="the app's port (0: a free one)")
    parser.add_argument(
        "--ref", help="render the template of this commit (default: the working tree as it is)"
    )
    args = parser.parse_args()
    raise_open_files_limit(4 * (args.clients + args.logins) + 64)

    results, rendered = measure_stores(
        "bench-load-",
        args,
        lambda store, project, settings, workdir: measure(project, store, settings, args),
        lambda store, reason: LoadResult(store, skipped=reason),
    )
    report = {"template": rendered, "load": args.__dict__}
    report["stores"] = {result.store: summary(result) for result in results}
    print(json.dumps(report, indent=2, default=str))
    print_table(results, args, rendered)
    failed = [
        r.store for r in results if not r.skipped and (r.errors or not (r.logins and r.logins.ok))
    ]
    if failed:
        print(f"\nERRORS in: {', '.join(failed)}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
