"""What reading the session costs each request, per store: GET /auth/profile vs the same JSON.

For each store (see harness.py: cookie, redis, sql-sqlite, sql-postgres) renders and installs
the project for that `session_store` answer (once per answer), starts what the store needs,
serves the app with uvicorn (one worker), logs in, then loads two routes of the same process
in alternating rounds with `wrk`:

- `/auth/profile`: reads the session (decrypts the cookie, or looks the id up in the store),
  checks expiry, returns the user.
- `/bench/baseline`: returns the same JSON body without touching the session. It sits in an
  APIRouter with a prefix, included after the /auth router, as /auth/profile does: FastAPI
  spends about 2 us matching a route inside an included router, which is not auth work.
- `/app-baseline`: the same JSON from a route on the app itself, reported for reference.

All get the same requests (same cookie headers). The ratio of the throughputs of the first
two is the auth layer's cost per request (1.0 = free). Loopback only; bounded in time (about
40 s per store with the defaults, plus rendering and installing each project once).

    python tests/bench/bench_session.py [--store cookie|redis|sql-sqlite|sql-postgres|all]
        [--seconds 4] [--rounds 3] [--connections 32] [--sessions 1]

`--sessions N` logs in N users and has wrk rotate through their cookies, so a server-side
store looks up different records and the session decoder's cache (1024 entries) misses
once N exceeds it. Needs `wrk` (apt-get install wrk), and redis-server / PostgreSQL for those
stores (a store whose server is missing is reported as skipped).
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ANSWERS, app_environment, measure_stores

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: components
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: tooling
from components import free_port

from tooling.rendering import Project

TARGETS = {"cookie": 0.90, "redis": 0.75}

BENCH_APP = '''
"""Benchmark app: the generated app plus baseline routes; the dev provider runs in-process."""
import os
import secrets

from fastapi import APIRouter

from devserver.provider import FakeProvider

APP_URL = "http://127.0.0.1:{port}"
provider = FakeProvider("https://provider.bench", redirect_uris=(f"{{APP_URL}}/auth/callback",))
os.environ.update(
    AUTH0_DOMAIN=provider.issuer,
    AUTH0_CLIENT_ID=provider.client_id,
    AUTH0_CLIENT_SECRET=provider.client_secret,
    APP_BASE_URL=APP_URL,
    SESSION_SECRET=secrets.token_urlsafe(32),
)
from app.config import get_settings  # noqa: E402
from app.main import create_app  # noqa: E402

app = create_app(get_settings(), provider_transport=provider.transport)
BODY = provider.user_claims("alice")
# Mounted like the /auth routes (an APIRouter with a prefix, included after them), so that
# the baseline differs from /auth/profile only by the session read.
bench = APIRouter(prefix="/bench")


@bench.get("/baseline")
async def baseline() -> dict[str, object]:
    return BODY


@bench.get("/approve")
async def approve(url: str, user: str = "alice") -> dict[str, str]:
    return {{"callback": provider.login(url, user)}}


app.include_router(bench)


@app.get("/app-baseline")
async def app_baseline() -> dict[str, object]:
    """The same JSON from a route on the app itself (no included router): for reference."""
    return BODY
'''

# wrk sends request() of this script for every request: the cookies of a file, in turn.
ROTATE_COOKIES = """
local cookies = {}
for line in io.lines("%s") do cookies[#cookies + 1] = line end
local next_cookie = 0
request = function()
  next_cookie = next_cookie %% #cookies + 1
  return wrk.format("GET", nil, {["Cookie"] = cookies[next_cookie]})
end
"""


@dataclass(frozen=True)
class Run:
    """One wrk run: throughput, and the app process's CPU time (all threads) per request."""

    requests_per_second: float
    cpu_us_per_request: float


@dataclass
class StoreResult:
    store: str
    runs: dict[str, list[Run]] = field(
        default_factory=lambda: {"baseline": [], "profile": [], "app-baseline": []}
    )
    cookie_bytes: int = 0
    skipped: str | None = None

    def median(self, route: str, metric: str = "requests_per_second") -> float:
        return statistics.median(getattr(run, metric) for run in self.runs[route])

    @property
    def ratio(self) -> float:
        """Throughput of /auth/profile over /bench/baseline: the median of the rounds' ratios
        (the two runs of a round are back to back, so a change in machine load hits both)."""
        pairs = zip(self.runs["profile"], self.runs["baseline"], strict=True)
        return statistics.median(p.requests_per_second / b.requests_per_second for p, b in pairs)

    @property
    def app_route_ratio(self) -> float:
        """The ratio against `/app-baseline` (a route on the app itself, not in a router)."""
        pairs = zip(self.runs["profile"], self.runs["app-baseline"], strict=True)
        return statistics.median(p.requests_per_second / b.requests_per_second for p, b in pairs)

    @property
    def cpu_ratio(self) -> float:
        """The same from the app's CPU time per request: the ratio if only the app needed CPU."""
        pairs = zip(self.runs["profile"], self.runs["baseline"], strict=True)
        return statistics.median(b.cpu_us_per_request / p.cpu_us_per_request for p, b in pairs)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Wrk:
    """Runs wrk against one app process with a fixed set of cookies (one, or a rotation)."""

    def __init__(self, app_pid: int, cookies: list[str], workdir: Path, connections: int) -> None:
        self.app_pid = app_pid
        self.connections = connections
        if len(cookies) == 1:
            self.options = ["-H", f"Cookie: {cookies[0]}"]
        else:
            (workdir / "cookies.txt").write_text("\n".join(cookies) + "\n")
            script = workdir / "rotate.lua"
            script.write_text(ROTATE_COOKIES % (workdir / "cookies.txt"))
            self.options = ["-s", str(script)]

    def __call__(self, url: str, seconds: int) -> Run:
        """Load `url` for `seconds`; stops the benchmark on any non-2xx answer."""
        command = ["wrk", "-t1", f"-c{self.connections}", f"-d{seconds}s", *self.options, url]
        cpu_before = cpu_seconds(self.app_pid)
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        cpu = cpu_seconds(self.app_pid) - cpu_before
        if "Non-2xx" in out or "Socket errors" in out:
            raise SystemExit(f"failed requests to {url}:\n{out}")
        rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
        total = re.search(r"(\d+) requests in", out)
        assert rate and total, out
        return Run(float(rate.group(1)), cpu / int(total.group(1)) * 1e6)


def wait_until_serving(client: httpx.Client, server: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if server.poll() is not None:
            raise SystemExit("the app did not start")
        try:
            client.get("/bench/baseline")
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("the app did not answer within 30 s")


def log_in(client: httpx.Client, user: str) -> str:
    """Log `user` in with a fresh cookie jar; return the `Cookie` header value of the session."""
    client.cookies.clear()
    authorize = client.get("/auth/login").headers["location"]
    approve = client.get("/bench/approve", params={"url": authorize, "user": user})
    client.get(approve.json()["callback"])
    profile = client.get("/auth/profile")
    assert profile.status_code == 200, profile.text
    assert profile.json()["sub"] == user, profile.text
    return f"app_session={client.cookies['app_session']}"


def measure(
    project: Project, store: str, settings: dict[str, str], workdir: Path, args: argparse.Namespace
) -> StoreResult:
    """Serve `project` against `store` and compare the two routes in alternating rounds."""
    port = args.port or free_port()
    (project.path / "bench_app.py").write_text(BENCH_APP.format(port=port))
    server = subprocess.Popen(
        [str(project.bin("uvicorn")), "bench_app:app", "--host", "127.0.0.1", "--port", str(port),
         "--no-access-log", "--log-level", "warning"],
        cwd=project.path,
        env=app_environment(settings),
    )  # fmt: skip
    result = StoreResult(store)
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30) as client:
            wait_until_serving(client, server)
            cookies = [log_in(client, "alice")]
            assert client.get("/auth/profile").json() == client.get("/bench/baseline").json()
            cookies += [log_in(client, f"user{n}") for n in range(1, args.sessions)]
        result.cookie_bytes = len(cookies[0])
        wrk = Wrk(server.pid, cookies, workdir, args.connections)
        routes = {
            "baseline": f"{base}/bench/baseline",
            "profile": f"{base}/auth/profile",
            "app-baseline": f"{base}/app-baseline",
        }

        wrk(routes["profile"], 2)  # warm-up
        wrk(routes["baseline"], 1)
        for round_number in range(args.rounds):
            # ABBA order, so a drift in machine speed does not favour either route.
            order = ["baseline", "profile"] if round_number % 2 == 0 else ["profile", "baseline"]
            for route in [*order, "app-baseline"]:
                run = wrk(routes[route], args.seconds)
                result.runs[route].append(run)
                print(
                    f"[bench] {store:<12} {route:<12} {run.requests_per_second:8.0f} req/s "
                    f"{run.cpu_us_per_request:6.1f} us app CPU/request"
                )
        if args.py_spy:
            record_profile(server.pid, lambda: wrk(routes["profile"], args.seconds), store, args)
    finally:
        server.terminate()
        server.wait(10)
    return result


def record_profile(
    pid: int, load: Callable[[], object], store: str, args: argparse.Namespace
) -> None:
    """Sample the app with py-spy while `load` runs: collapsed stacks in `--py-spy` DIR."""
    args.py_spy.mkdir(parents=True, exist_ok=True)
    output = args.py_spy / f"{store}-profile.txt"
    py_spy = subprocess.Popen(
        ["py-spy", "record", "--pid", str(pid), "--format", "raw", "--nonblocking",
         "--rate", "250", "--duration", str(args.seconds + 1), "--output", str(output)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(0.5)  # py-spy attaches
    load()
    py_spy.wait(30)
    print(f"[bench] {store:<12} py-spy samples of /auth/profile under load: {output}")


def print_table(results: list[StoreResult], args: argparse.Namespace, source: str) -> None:
    print(
        f"\n{source}; {args.rounds} rounds x {args.seconds} s per route, "
        f"{args.connections} connections, {args.sessions} session(s); medians of the rounds"
    )
    print(
        f"{'store':<13} {'baseline':>9} {'profile':>9} {'ratio':>6}  {'target':<13}"
        f"{'CPU us/req: baseline':>21} {'profile':>8} {'ratio':>6}  {'vs app route':>12}"
    )
    for result in results:
        if result.skipped:
            print(f"{result.store:<13} skipped: {result.skipped}")
            continue
        target = TARGETS.get(result.store)
        verdict = "" if target is None else f">= {target:.2f} "
        if target is not None:
            verdict += "ok" if result.ratio >= target else "MISSED"
        print(
            f"{result.store:<13} {result.median('baseline'):>9.0f} {result.median('profile'):>9.0f}"
            f" {result.ratio:>6.3f}  {verdict:<13}"
            f"{result.median('baseline', 'cpu_us_per_request'):>21.1f}"
            f" {result.median('profile', 'cpu_us_per_request'):>8.1f} {result.cpu_ratio:>6.3f}"
            f"  {result.app_route_ratio:>12.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=[*ANSWERS, "all"], default="all")
    parser.add_argument("--seconds", type=int, default=4, help="per route and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--sessions", type=int, default=1, help="logged-in users wrk rotates")
    parser.add_argument("--port", type=int, default=0, help="the app's port (0: a free one)")
    parser.add_argument(
        "--ref", help="render the template of this commit (default: the working tree as it is)"
    )
    parser.add_argument(
        "--py-spy", type=Path, metavar="DIR", help="also sample the app under load with py-spy"
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    if args.py_spy and not shutil.which("py-spy"):
        raise SystemExit("py-spy is not installed: pip install py-spy")

    results, rendered = measure_stores(
        "bench-session-",
        args,
        lambda store, project, settings, workdir: measure(project, store, settings, workdir, args),
        lambda store, reason: StoreResult(store, skipped=reason),
    )

    raw = {
        r.store: {
            "cookie_bytes": r.cookie_bytes,
            **{route: [asdict(run) for run in runs] for route, runs in r.runs.items()},
        }
        for r in results
        if not r.skipped
    }
    print(json.dumps({"template": rendered, "runs": raw}, indent=2))
    print_table(results, args, rendered)


if __name__ == "__main__":
    main()
