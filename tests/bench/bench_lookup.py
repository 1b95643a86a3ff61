"""How fast back-channel logout finds sessions: `end_sessions` latency in a store of 100,000.

For each server-side store (redis, sql-postgres, sql-sqlite; see harness.py) renders and
installs the project for that `session_store` answer (once per answer), starts the store's
server (SQLite: a file in the temporary directory), and runs lookup_driver.py inside the
project with the project's own Python: it fills the store with 20,000 users x 5 sessions and
times `end_sessions(sid=...)`, `end_sessions(sub=...)` and `end_sessions(sid=..., sub=...)`
(p50, p95, max over `--lookups` calls each, on sessions that exist), plus `load`. See
lookup_driver.py for the population and the fill modes. Target: p50 < 5 ms.

    python tests/bench/bench_lookup.py [--store redis|sql-postgres|sql-sqlite|all]
        [--fill bulk|save] [--lookups 200] [--users 20000] [--ref COMMIT]

Loopback only. About a minute per store with `--fill bulk`; `--fill save` takes minutes
(SQLite: one synced transaction per session, over ten minutes for 100,000).
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import SERVER_STORES, Projects, app_environment, chosen_stores, store_settings

DRIVER = Path(__file__).resolve().parent / "lookup_driver.py"
TARGET_P50_MS = 5.0
OPERATIONS = ("end_sessions(sid)", "end_sessions(sub)", "end_sessions(sid+sub)", "load")


def run_driver(
    project_path: Path, python: Path, settings: dict[str, str], args: argparse.Namespace
) -> dict[str, Any]:
    shutil.copy(DRIVER, project_path / "bench_lookup_driver.py")
    command = [
        str(python), "bench_lookup_driver.py", "--fill", args.fill,
        "--lookups", str(args.lookups), "--users", str(args.users),
    ]  # fmt: skip
    result = subprocess.run(
        command, cwd=project_path, env=app_environment(settings), capture_output=True, text=True
    )
    if result.returncode != 0:
        raise SystemExit(f"the driver failed:\n{result.stdout}\n{result.stderr}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def print_table(results: dict[str, dict[str, Any]], source: str) -> None:
    print(f"\n{source}; latency of one call, ms (target: end_sessions p50 < {TARGET_P50_MS} ms)")
    print(f"{'store':<13} {'operation':<22} {'p50':>7} {'p95':>7} {'max':>7}  n")
    for store, result in results.items():
        if "skipped" in result:
            print(f"{store:<13} skipped: {result['skipped']}")
            continue
        print(
            f"{store:<13} {result['sessions']} sessions, fill {result['fill']} "
            f"in {result['fill_s']} s"
        )
        for operation in OPERATIONS:
            numbers = result[operation]
            verdict = ""
            if operation.startswith("end_sessions"):
                verdict = "ok" if numbers["p50_ms"] < TARGET_P50_MS else "MISSED"
            print(
                f"{'':<13} {operation:<22} {numbers['p50_ms']:>7.2f} {numbers['p95_ms']:>7.2f} "
                f"{numbers['max_ms']:>7.2f}  {numbers['n']} {verdict}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=[*SERVER_STORES, "all"], default="all")
    parser.add_argument("--fill", choices=["bulk", "save"], default="bulk")
    parser.add_argument("--lookups", type=int, default=200, help="timed calls per operation")
    parser.add_argument("--users", type=int, default=20_000, help="5 sessions each")
    parser.add_argument(
        "--ref", help="render the template of this commit (default: the working tree as it is)"
    )
    args = parser.parse_args()

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-lookup-") as tmp:
        projects = Projects(Path(tmp), args.ref)
        for store in chosen_stores(args.store, SERVER_STORES):
            project = projects.for_store(store)
            workdir = Path(tmp) / store
            workdir.mkdir()
            print(f"[bench] {store}: filling and measuring ...", flush=True)
            try:
                with store_settings(store, workdir) as settings:
                    results[store] = run_driver(project.path, project.python, settings, args)
            except pytest.skip.Exception as exc:  # a store server that is not installed
                results[store] = {"skipped": str(exc)}
            print(f"[bench] {store}: {json.dumps(results[store])}", flush=True)
    print_table(results, projects.description)


if __name__ == "__main__":
    main()
