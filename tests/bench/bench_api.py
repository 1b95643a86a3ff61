"""What checking an API's access token costs each request: a scoped route vs the same JSON.

Renders and installs the project (the session store does not matter here: API tokens are
not sessions; `--store` picks one anyway), serves the app with uvicorn (one worker) and
the development provider in-process, gets access tokens from it, and loads two routes of
the same process in alternating rounds with `wrk`, sending the same `Authorization` header:

- `/bench/api`: `require_scopes("read:orders")`, as `app/api.py` does: the token is read
  from the header, validated (or found among the tokens checked before), its scope checked.
- `/bench/api-baseline`: the same JSON, without looking at the header.
- `/bench/api-noop`: the same JSON behind a dependency that does nothing: what FastAPI's
  dependency machinery costs by itself (any `Depends`, whatever it checks).

`--tokens 1` (the default) is one client calling again and again (its token is checked once,
then found by its hash); `--tokens N` rotates N distinct tokens: past the cache's 10,000
every request verifies a signature (RS256). Target with a warm key cache: >= 0.85.

    python tests/bench/bench_api.py [--tokens 1] [--seconds 4] [--rounds 3] [--connections 32]
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_session import Run, Wrk
from harness import app_environment, measure_stores

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: components
from components import free_port

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: tooling
from tooling.rendering import Project

TARGET = 0.85
AUDIENCE = "https://api.bench"

BENCH_APP = '''
"""Benchmark app: the generated app plus a baseline route; the dev provider runs in-process."""
import os
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from app.auth import ApiToken, require_scopes
from devserver.provider import FakeProvider

APP_URL = "http://127.0.0.1:{port}"
provider = FakeProvider("https://provider.bench", redirect_uris=(f"{{APP_URL}}/auth/callback",))
os.environ.update(
    AUTH0_DOMAIN=provider.issuer,
    AUTH0_CLIENT_ID=provider.client_id,
    AUTH0_CLIENT_SECRET=provider.client_secret,
    APP_BASE_URL=APP_URL,
    SESSION_SECRET=secrets.token_urlsafe(32),
    API_AUDIENCE="{audience}",
)
from app.config import get_settings  # noqa: E402
from app.main import create_app  # noqa: E402

app = create_app(get_settings(), provider_transport=provider.transport)
BODY = [{{"id": "1001", "customer": "alice", "status": "shipped"}}]
bench = APIRouter(prefix="/bench")


@bench.get("/api-baseline")
async def api_baseline() -> list[dict[str, str]]:
    return BODY


async def nothing(request: Request) -> None:
    return None


@bench.get("/api-noop")
async def api_noop(_: Annotated[None, Depends(nothing)]) -> list[dict[str, str]]:
    return BODY


@bench.get("/api")
async def api(
    token: Annotated[ApiToken, Depends(require_scopes("read:orders"))],
) -> list[dict[str, str]]:
    return BODY


@bench.get("/token")
async def token(user: str = "alice") -> dict[str, str]:
    return {{"token": provider.access_token(user, audience="{audience}", scope="read:orders")}}


app.include_router(bench)
'''

ROTATE_TOKENS = """
local tokens = {}
for line in io.lines("%s") do tokens[#tokens + 1] = line end
local next_token = 0
request = function()
  next_token = next_token %% #tokens + 1
  return wrk.format("GET", nil, {["Authorization"] = "Bearer " .. tokens[next_token]})
end
"""


def measure(
    project: Project, settings: dict[str, str], workdir: Path, args: argparse.Namespace
) -> dict[str, list[Run]]:
    port = free_port()
    (project.path / "bench_api_app.py").write_text(BENCH_APP.format(port=port, audience=AUDIENCE))
    server = subprocess.Popen(
        [str(project.bin("uvicorn")), "bench_api_app:app", "--host", "127.0.0.1",
         "--port", str(port), "--no-access-log", "--log-level", "warning"],
        cwd=project.path, env=app_environment(settings),
    )  # fmt: skip
    runs: dict[str, list[Run]] = {"baseline": [], "api": [], "noop": []}
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30) as client:
            for _ in range(300):
                try:
                    client.get("/bench/api-baseline")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            tokens = [client.get("/bench/token", params={"user": f"user{n}"}).json()["token"]
                      for n in range(args.tokens)]  # fmt: skip
            first = client.get("/bench/api", headers={"Authorization": f"Bearer {tokens[0]}"})
            assert first.status_code == 200, first.text
        wrk = Wrk(server.pid, ["unused"], workdir, args.connections)
        if args.tokens == 1:
            wrk.options = ["-H", f"Authorization: Bearer {tokens[0]}"]
        else:
            (workdir / "tokens.txt").write_text("\n".join(tokens) + "\n")
            (workdir / "rotate.lua").write_text(ROTATE_TOKENS % (workdir / "tokens.txt"))
            wrk.options = ["-s", str(workdir / "rotate.lua")]
        routes = {
            "baseline": f"{base}/bench/api-baseline",
            "api": f"{base}/bench/api",
            "noop": f"{base}/bench/api-noop",
        }
        wrk(routes["api"], 2)  # warm-up: keys fetched, tokens checked once
        wrk(routes["baseline"], 1)
        for round_number in range(args.rounds):
            order = ["baseline", "api"] if round_number % 2 == 0 else ["api", "baseline"]
            for route in [*order, "noop"]:
                run = wrk(routes[route], args.seconds)
                runs[route].append(run)
                print(f"[bench] {route:<9} {run.requests_per_second:8.0f} req/s "
                      f"{run.cpu_us_per_request:6.1f} us app CPU/request")  # fmt: skip
    finally:
        server.terminate()
        server.wait(10)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="cookie")
    parser.add_argument("--tokens", type=int, default=1, help="distinct tokens wrk rotates")
    parser.add_argument("--seconds", type=int, default=4, help="per route and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--ref", help="render the template of this commit")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    results, rendered = measure_stores(
        "bench-api-",
        args,
        lambda store, project, settings, workdir: measure(project, settings, workdir, args),
        lambda store, reason: {},
    )
    runs = results[0]
    pairs = list(zip(runs["api"], runs["baseline"], strict=True))
    ratio = statistics.median(a.requests_per_second / b.requests_per_second for a, b in pairs)
    cpu = statistics.median(b.cpu_us_per_request / a.cpu_us_per_request for a, b in pairs)
    noop_pairs = zip(runs["api"], runs["noop"], strict=True)
    vs_noop = statistics.median(
        a.requests_per_second / n.requests_per_second for a, n in noop_pairs
    )
    print(json.dumps({"template": rendered, "tokens": args.tokens}))
    print(
        f"\n{rendered}; {args.tokens} token(s), {args.rounds} rounds x {args.seconds} s, "
        f"{args.connections} connections\n"
        f"baseline {statistics.median(r.requests_per_second for r in runs['baseline']):.0f} req/s, "
        f"api {statistics.median(r.requests_per_second for r in runs['api']):.0f} req/s, "
        f"ratio {ratio:.3f} (target >= {TARGET}: {'ok' if ratio >= TARGET else 'MISSED'}), "
        f"CPU ratio {cpu:.3f}; vs the same route with a no-op dependency {vs_noop:.3f}"
    )


if __name__ == "__main__":
    main()
