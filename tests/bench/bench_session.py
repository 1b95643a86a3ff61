"""What reading the session costs each request: GET /auth/profile vs the same JSON without it.

Renders the default project, installs it, serves it with uvicorn (one worker), logs
in, then loads two routes of the same process in alternating rounds with `wrk`:

- `/auth/profile`: reads and decrypts the session cookie, checks expiry, returns the user.
- `/bench/baseline`: returns the same JSON body without touching the session.

Both get the same request (same cookie header). The ratio of their throughputs is the
auth layer's cost per request (1.0 = free). Loopback only; bounded in time.

    python tests/bench/bench_session.py [--seconds 5] [--rounds 3] [--connections 32]

Needs `wrk` (apt-get install wrk).
"""

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rendering import install, render

BENCH_APP = '''
"""Benchmark app: the generated app plus a baseline route; the dev provider runs in-process."""
import os
import secrets

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


@app.get("/bench/baseline")
async def baseline() -> dict[str, object]:
    return BODY


@app.get("/bench/approve")
async def approve(url: str) -> dict[str, str]:
    return {{"callback": provider.login(url, "alice")}}
'''


def wrk(url: str, cookie: str, seconds: int, connections: int) -> float:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-H", f"Cookie: {cookie}", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    if "Non-2xx" in out:
        raise SystemExit(f"non-2xx answers from {url}:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install -y wrk")

    with tempfile.TemporaryDirectory() as tmp:
        project = install(render(Path(tmp) / "app"))
        (project.path / "bench_app.py").write_text(BENCH_APP.format(port=args.port))
        server = subprocess.Popen(
            [str(project.bin("uvicorn")), "bench_app:app", "--port", str(args.port),
             "--no-access-log", "--log-level", "warning"],
            cwd=project.path,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{args.port}"
            with httpx.Client(base_url=base) as client:
                for _ in range(150):
                    if server.poll() is not None:
                        raise SystemExit("the app did not start")
                    try:
                        client.get("/bench/baseline")
                        break
                    except httpx.TransportError:
                        time.sleep(0.1)
                authorize = client.get("/auth/login").headers["location"]
                callback = client.get(f"/bench/approve?url={quote(authorize)}").json()["callback"]
                client.get(callback)
                profile = client.get("/auth/profile")
                assert profile.status_code == 200, profile.text
                assert profile.json() == client.get("/bench/baseline").json()
                cookie = f"app_session={client.cookies['app_session']}"

            wrk(f"{base}/auth/profile", cookie, 2, args.connections)  # warm-up
            results: dict[str, list[float]] = {"baseline": [], "profile": []}
            for _ in range(args.rounds):
                results["baseline"].append(
                    wrk(f"{base}/bench/baseline", cookie, args.seconds, args.connections)
                )
                results["profile"].append(
                    wrk(f"{base}/auth/profile", cookie, args.seconds, args.connections)
                )
        finally:
            server.terminate()
            server.wait(10)

    baseline, profile = (statistics.median(results[name]) for name in ("baseline", "profile"))
    print(json.dumps({"requests_per_second": results, "cookie_bytes": len(cookie)}, indent=2))
    print(f"baseline  {baseline:8.0f} req/s (median of {args.rounds})")
    print(f"profile   {profile:8.0f} req/s")
    print(f"ratio     {profile / baseline:8.3f}  (target >= 0.90)")


if __name__ == "__main__":
    main()
