"""Mutation testing of a generated project: do its tests notice small wrong changes?

    python tests/mutation/run.py --store cookie --sample 320 --seed 14 --jobs 2

renders the template with `session_store=cookie` (or takes `--project PATH`, a rendered and
installed project), picks a seeded sample of mutants (`mutants.py`) of the auth modules, and
for each one runs the project's tests against the mutated code until one fails. A mutant
whose tests all pass survived: a wrong change nobody would notice. The report lists the
score per module and every survivor; survivors judged equivalent (no observable effect) in
`equivalent.toml` are listed with the reason and left out of the score.

Speed: one run of the whole suite with coverage records which tests run which lines (each
test's node id is a coverage context, threads included); a mutant runs only those tests
(`-x`, one pytest at a time per job, forked from a process that has imported the project's
dependencies: `forkserver.py`). A test that never runs the changed line cannot fail because
of it; a line that only runs at import time runs the whole suite, and `--confirm` runs the
whole suite for every survivor. Each suite configuration runs (the cookie store with and
without `REDIS_URL`, the Redis store against a `redis-server` this command starts, the SQL
store on SQLite and, with `--postgres`, PostgreSQL).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from queue import Queue

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(HERE), str(REPO / "tests"), str(REPO)]  # tests/: components; tooling/

from forkserver import ERROR_FILE  # noqa: E402
from mutants import Mutant, mutants_of  # noqa: E402

DEFAULT_MODULES = (
    "tokens.py",
    "routes.py",
    "urls.py",
    "cookies.py",
    "transactions.py",
    "sessions.py",
    "deps.py",
    "client.py",
    "provider.py",
    "stores/*.py",
)
JUDGMENTS = HERE / "equivalent.toml"
IGNORED_COPY = shutil.ignore_patterns(".venv", "__pycache__", ".pytest_cache", ".mypy_cache")


@dataclass
class Suite:
    """One configuration the project's tests run in (its environment variables)."""

    name: str
    env: dict[str, str]
    seconds: float = 0.0
    # module -> line -> the tests that ran it
    contexts: dict[str, dict[int, set[str]]] = field(default_factory=dict)
    reach: Counter[str] = field(default_factory=Counter)  # test -> lines it runs

    def tests_reaching(self, mutant: Mutant) -> list[str]:
        """The tests that run the mutant's lines, the most focused (fewest lines) first."""
        lines = self.contexts.get(mutant.module, {})
        found: set[str] = set()
        for line in range(mutant.start[0], mutant.end[0] + 1):
            found |= lines.get(line, set())
        return sorted(found, key=lambda test: (self.reach[test], test))


@dataclass
class Result:
    mutant: Mutant
    outcome: str  # killed, timeout, survived, or error (pytest could not run: see the log)
    by: str = ""  # the suite and the test selection that killed it
    seconds: float = 0.0


def main() -> None:
    args = parse_arguments()
    if args.rescore:
        rescore(args)
        return
    with ExitStack() as stack:
        project = Path(args.project) if args.project else render_project(args, stack)
        python = project / ".venv" / "bin" / "python"
        install_coverage(python)
        suites = make_suites(args, stack)
        modules = select_modules(project, args.modules)
        every = [
            m for module in modules for m in mutants_of(module, (project / module).read_text())
        ]
        chosen = choose(every, args)
        print(f"{len(every)} mutants in {len(modules)} modules; running {len(chosen)}", flush=True)
        for suite in suites:
            record_contexts(project, python, suite)
            print(f"suite {suite.name}: {suite.seconds:.1f} s with coverage", flush=True)
        results = run_all(project, python, suites, chosen, args.jobs, args.confirm)
        store = args.store or project_store(project)
        header = Header(store, args.seed, template_commit(), len(modules), len(every))
        write_report(args, header, results)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--store", choices=["cookie", "redis", "sql"], help="render this store")
    where.add_argument("--project", help="a rendered project with its .venv")
    where.add_argument(
        "--rescore", metavar="REPORT.json", nargs="+",
        help="write an earlier run's report again; with several, later runs' results of the "
        "same mutants replace earlier ones (e.g. survivors run again with --ids)",
    )  # fmt: skip
    parser.add_argument("--answer", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument(
        "--modules", nargs="+", default=list(DEFAULT_MODULES),
        help="files (globs) under app/auth/; default: %(default)s",
    )  # fmt: skip
    parser.add_argument("--sample", type=int, default=0, help="how many mutants (0: all)")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--ids", nargs="+", default=[], help="run just these mutants")
    parser.add_argument("--jobs", type=int, default=1, help="mutants tested at once")
    parser.add_argument(
        "--confirm", action="store_true",
        help="run the whole suite before calling a mutant a survivor (slow; for checking)",
    )  # fmt: skip
    parser.add_argument("--postgres", action="store_true", help="SQL store: also PostgreSQL")
    parser.add_argument(
        "--no-redis", action="store_true",
        help="cookie store: skip the suite with REDIS_URL (modules that do not touch Redis)",
    )  # fmt: skip
    parser.add_argument("--report", help="write the Markdown report here (and .json beside)")
    return parser.parse_args()


def render_project(args: argparse.Namespace, stack: ExitStack) -> Path:
    from tooling.rendering import install, render

    answers: dict[str, object] = {"session_store": args.store}
    for pair in args.answer:
        name, _, value = pair.partition("=")
        answers[name] = {"true": True, "false": False}.get(value, value)
    where = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mutation-")))
    print(f"rendering {answers} into {where}", flush=True)
    return install(render(where / "project", **answers)).path


def install_coverage(python: Path) -> None:
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    subprocess.run([uv, "pip", "install", "-q", "--python", str(python), "coverage"], check=True)


def make_suites(args: argparse.Namespace, stack: ExitStack) -> list[Suite]:
    from components import PostgresServer, RedisServer

    store = args.store or project_store(Path(args.project))
    clean = {"REDIS_URL": "", "DATABASE_URL": ""}  # "": unset
    suites = []
    if store in ("cookie", "sql"):
        suites.append(Suite(store, {**clean}))
    if store == "redis" or (store == "cookie" and not args.no_redis):
        redis = stack.enter_context(RedisServer())
        name = "redis" if store == "redis" else f"{store}+redis"
        suites.append(Suite(name, {**clean, "REDIS_URL": redis.url}))
    if store == "sql" and args.postgres:
        postgres = stack.enter_context(PostgresServer())
        suites.append(Suite("sql+postgres", {**clean, "DATABASE_URL": postgres.url}))
    return suites


def project_store(project: Path) -> str:
    answers = (project / ".copier-answers.yml").read_text()
    for line in answers.splitlines():
        if line.startswith("session_store:"):
            return line.split(":", 1)[1].strip()
    return "cookie"


def select_modules(project: Path, patterns: list[str]) -> list[str]:
    auth = project / "app" / "auth"
    if patterns == ["all"]:
        patterns = ["*.py", "stores/*.py"]
    found = {
        str(path.relative_to(project))
        for pattern in patterns
        for path in auth.glob(pattern)
        if path.name != "__init__.py"
    }
    return sorted(found)


def choose(every: list[Mutant], args: argparse.Namespace) -> list[Mutant]:
    if args.ids:
        wanted = set(args.ids)
        return [m for m in every if m.id in wanted]
    chosen = list(every)
    random.Random(args.seed).shuffle(chosen)
    return chosen[: args.sample] if args.sample else chosen


# -- running the tests ---------------------------------------------------------------------


def record_contexts(project: Path, python: Path, suite: Suite) -> None:
    """Run the whole suite once with coverage: which tests reach which lines."""
    data_file = project / f".mutation-coverage-{suite.name}"
    env = {
        **{name: value for name, value in os.environ.items() if name not in suite.env},
        **{name: value for name, value in suite.env.items() if value},
        "PYTHONPATH": str(HERE),
        "MUTATION_COVERAGE_FILE": str(data_file),
        "MUTATION_SOURCE": str(project / "app"),
    }
    started = time.monotonic()
    command = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["-p", "mutation_contexts"]
    run = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
    suite.seconds = time.monotonic() - started
    if run.returncode != 0:
        sys.exit(f"the unmutated suite {suite.name} fails:\n{run.stdout[-4000:]}{run.stderr}")
    dump = subprocess.run(
        [str(python), "-c", READ_CONTEXTS, str(data_file)],
        capture_output=True,
        text=True,
        check=True,
    )
    for filename, lines in json.loads(dump.stdout).items():
        module = str(Path(filename).relative_to(project))
        suite.contexts[module] = {int(line): set(tests) for line, tests in lines.items()}
        for tests in lines.values():
            suite.reach.update(tests)
    data_file.unlink()


# Run by the project's Python, which has coverage installed.
READ_CONTEXTS = """
import json, sys
import coverage
data = coverage.CoverageData(basename=sys.argv[1])
data.read()
print(json.dumps({
    name: {line: [t for t in tests if t] for line, tests in data.contexts_by_lineno(name).items()}
    for name in data.measured_files()
}))
"""


class ForkServer:
    """`forkserver.py` in the project's Python: pytest runs without paying for imports."""

    def __init__(self, project: Path, python: Path) -> None:
        listing = subprocess.run(
            [str(python), "-c", LIST_IMPORTS], cwd=project, capture_output=True, text=True,
            check=True,
        )  # fmt: skip
        self.process = subprocess.Popen(
            [str(python), str(HERE / "forkserver.py"), listing.stdout.strip()],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=project,
        )  # fmt: skip
        assert self.process.stdout and self.process.stdout.readline().strip() == "ready"

    def pytest(self, cwd: Path, tests: list[str], env: dict[str, str], timeout: float) -> str:
        assert self.process.stdin and self.process.stdout
        # Plugins' packages (anyio) are preloaded, so pytest cannot rewrite their asserts.
        quiet = ["-W", "ignore::pytest.PytestAssertRewriteWarning"]
        args = [*quiet, "-x", "-q", "-p", "no:cacheprovider", *tests]
        request = {"cwd": str(cwd), "args": args, "env": env, "timeout": timeout}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def close(self) -> None:
        assert self.process.stdin
        self.process.stdin.close()
        self.process.wait(timeout=30)


# The top-level packages the project's tests import (run by the project's Python in it).
# Submodules are left to the child: preloading every one (asyncio's among them) broke
# asyncio's current-task bookkeeping in forked children.
LIST_IMPORTS = """
import importlib, json, pathlib, sys
sys.path.insert(0, ".")
importlib.import_module("tests.conftest")  # sets the environment app.main needs
for path in sorted(pathlib.Path("tests").glob("test_*.py")):
    importlib.import_module(f"tests.{path.stem}")
own = ("app", "devserver", "tests", "__main__")
tops = {name.split(".")[0] for name in sys.modules}
print(json.dumps(sorted(n for n in tops if n not in own and not n.startswith("_"))))
"""


@dataclass
class Worker:
    directory: Path
    server: ForkServer
    # A Redis of its own: tests count Redis's commands (INFO commandstats), which another
    # worker's tests would disturb.
    redis_url: str | None = None


def run_all(
    project: Path,
    python: Path,
    suites: list[Suite],
    chosen: list[Mutant],
    jobs: int,
    confirm: bool,
) -> list[Result]:
    from components import RedisServer

    workspace = Path(tempfile.mkdtemp(prefix="mutation-workers-"))
    workers: Queue[Worker] = Queue()
    redis_servers: list[RedisServer] = []
    for number in range(jobs):
        copy = workspace / f"worker-{number}"
        shutil.copytree(project, copy, ignore=IGNORED_COPY, symlinks=True)
        redis_url = None
        if any(suite.env.get("REDIS_URL") for suite in suites):
            redis_servers.append(RedisServer().__enter__())
            redis_url = redis_servers[-1].url
        workers.put(Worker(copy, ForkServer(project, python), redis_url))
    check_workers(list(workers.queue), suites)
    done = 0
    counts: Counter[str] = Counter()

    def test(mutant: Mutant) -> Result:
        nonlocal done
        worker = workers.get()
        try:
            result = test_mutant(worker, project, suites, mutant, confirm)
        finally:
            workers.put(worker)
        done += 1
        counts[result.outcome] += 1
        if result.outcome == "survived" or done % 20 == 0:
            status = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
            print(f"[{done}/{len(chosen)}] {status}", flush=True)
        if result.outcome == "survived":
            print(
                f"  survived {mutant.id} {mutant.module}:{mutant.line} {mutant.describe()}"
                f" ({result.seconds:.1f} s)",
                flush=True,
            )
        return result

    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            return list(pool.map(test, chosen))
    finally:
        while not workers.empty():
            workers.get().server.close()
        for server in redis_servers:
            server.__exit__(None, None, None)
        shutil.rmtree(workspace, ignore_errors=True)


def check_workers(workers: list[Worker], suites: list[Suite]) -> None:
    """Each worker's forked runs pass on the unmutated code, or they could not judge mutants."""

    def check(worker: Worker) -> list[str]:
        return [suite.name for suite in suites if run_tests(worker, suite, []) != "survived"]

    with ThreadPoolExecutor(max_workers=len(workers)) as pool:
        failing = [name for names in pool.map(check, workers) for name in names]
    if failing:
        sys.exit(f"the unmutated suites {sorted(set(failing))} fail in forked runs")


def test_mutant(
    worker: Worker, project: Path, suites: list[Suite], mutant: Mutant, confirm: bool
) -> Result:
    target = worker.directory / mutant.module
    original = (project / mutant.module).read_text()
    target.write_text(mutant.apply(original))
    started = time.monotonic()
    try:
        # Tests that run none of the mutant's lines cannot fail because of it, unless the
        # line runs only at import time (no test's context): then the whole suite runs.
        reaching = [suite.tests_reaching(mutant) for suite in suites]
        runs = [
            (suite, tests, "reaching")
            for suite, tests in zip(suites, reaching, strict=True)
            if tests
        ]
        if not any(reaching) or confirm:
            runs += [(suite, [], "all") for suite in suites]
        for suite, tests, selection in runs:
            outcome = run_tests(worker, suite, tests)
            if outcome != "survived":
                by = f"{suite.name} ({selection} tests)"
                return Result(mutant, outcome, by, time.monotonic() - started)
        return Result(mutant, "survived", seconds=time.monotonic() - started)
    finally:
        target.write_text(original)
        for cache in target.parent.glob(f"__pycache__/{target.stem}.*"):
            cache.unlink()


def run_tests(worker: Worker, suite: Suite, tests: list[str]) -> str:
    env = {**suite.env, "PYTHONDONTWRITEBYTECODE": "1"}
    if env.get("REDIS_URL") and worker.redis_url:
        env["REDIS_URL"] = worker.redis_url
    code = worker.server.pytest(worker.directory, tests, env, timeout=3 * suite.seconds + 30)
    if code == "timeout":
        return "timeout"
    if code == "99":  # pytest.main raised: a plain `pytest` run fails the same way
        error = worker.directory / ERROR_FILE
        error.unlink(missing_ok=True)  # e.g. SystemExit (the app refused to start), or the
        return "killed"  # unraisable-exception errors of leaked sockets at session end
    if code == "5":  # no tests ran: the selection is wrong, not the mutant
        print(f"no tests ran: {tests[:3]}", flush=True)
        return "error"
    # 1: a test failed; 2: collection failed; 3: internal error; 4: conftest failed to import
    return "survived" if code == "0" else "killed"


# -- the report ----------------------------------------------------------------------------


def load_judgments(store: str) -> dict[str, str]:
    """Equivalent mutants by id: `[equivalent]` for every project, and `[equivalent.<store>]`
    for code that only one store's project leaves unused."""
    if not JUDGMENTS.exists():
        return {}
    table = tomllib.loads(JUDGMENTS.read_text()).get("equivalent", {})
    judged = {key: value for key, value in table.items() if isinstance(value, str)}
    return judged | dict(table.get(store, {}))


@dataclass(frozen=True)
class Header:
    """What a report is about."""

    store: str
    seed: int
    commit: str
    modules: int
    mutants: int  # in the modules; `results` holds the sample


def write_report(args: argparse.Namespace, header: Header, results: list[Result]) -> None:
    judgments = load_judgments(header.store)
    text = "\n".join(report_lines(header, results, judgments)) + "\n"
    print(text)
    if args.report:
        report = Path(args.report)
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(text)
        raw = [
            {**result.mutant.__dict__, "id": result.mutant.id, "outcome": result.outcome,
             "by": result.by, "seconds": round(result.seconds, 2)}
            for result in results
        ]  # fmt: skip
        document = {"header": header.__dict__, "results": raw}
        report.with_suffix(".json").write_text(json.dumps(document, indent=1) + "\n")


def rescore(args: argparse.Namespace) -> None:
    """The report of an earlier run (its .json) again, with today's judgments; results of
    later runs (`--ids` runs of its survivors) replace those of the same mutants."""
    documents = [json.loads(Path(name).read_text()) for name in args.rescore]
    header = Header(**documents[0]["header"])
    results: dict[str, Result] = {}
    for document in documents:
        for raw in document["results"]:
            fields = {name: raw[name] for name in Mutant.__dataclass_fields__}
            fields["start"], fields["end"] = tuple(fields["start"]), tuple(fields["end"])
            mutant = Mutant(**fields)
            if document is documents[0] or mutant.id in results:
                results[mutant.id] = Result(mutant, raw["outcome"], raw["by"], raw["seconds"])
    if len(documents) > 1:
        commits = ", ".join(document["header"]["commit"] for document in documents[1:])
        header = replace(header, commit=f"{header.commit}, survivors run again at {commits}")
    write_report(args, header, list(results.values()))


def template_commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()


def report_lines(header: Header, results: list[Result], judgments: dict[str, str]) -> Iterator[str]:
    yield f"# Mutation report: {header.store} project"
    yield ""
    yield (
        f"Template commit {header.commit or '?'} (plus uncommitted changes, if any), "
        f"seed {header.seed}, {len(results)} of {header.mutants} mutants of "
        f"{header.modules} modules."
    )
    yield ""
    yield "| module | mutants | killed | equivalent | survived | score |"
    yield "| --- | ---: | ---: | ---: | ---: | ---: |"
    per_module: dict[str, Counter[str]] = defaultdict(Counter)
    for result in results:
        outcome = result.outcome
        if outcome == "survived" and result.mutant.id in judgments:
            outcome = "equivalent"
        elif outcome == "timeout":
            outcome = "killed"
        elif outcome == "error":
            continue
        per_module[result.mutant.module][outcome] += 1
    total: Counter[str] = Counter()
    for module in sorted(per_module):
        counts = per_module[module]
        total.update(counts)
        yield score_row(module, counts)
    yield score_row("**all**", total)
    yield ""
    survivors = [r for r in results if r.outcome == "survived" and r.mutant.id not in judgments]
    equivalent = [r for r in results if r.outcome == "survived" and r.mutant.id in judgments]
    yield f"## Survivors ({len(survivors)})"
    yield ""
    for result in sorted(survivors, key=lambda r: (r.mutant.module, r.mutant.line)):
        yield mutant_line(result.mutant)
    yield ""
    errors = [r for r in results if r.outcome == "error"]
    if errors:
        yield f"## pytest could not run, left out of the score ({len(errors)})"
        yield ""
        for result in errors:
            yield mutant_line(result.mutant)
        yield ""
    yield f"## Equivalent, left out of the score ({len(equivalent)})"
    yield ""
    for result in sorted(equivalent, key=lambda r: (r.mutant.module, r.mutant.line)):
        yield f"{mutant_line(result.mutant)}: {judgments[result.mutant.id]}"


def score_row(module: str, counts: Counter[str]) -> str:
    killed, equivalent, survived = counts["killed"], counts["equivalent"], counts["survived"]
    mutants = killed + equivalent + survived
    judged = killed + survived
    score = f"{100 * killed / judged:.0f} %" if judged else "-"
    return f"| {module} | {mutants} | {killed} | {equivalent} | {survived} | {score} |"


def mutant_line(mutant: Mutant) -> str:
    text = mutant.describe().replace("|", "\\|")
    return f"- `{mutant.id}` {mutant.module}:{mutant.line} ({mutant.scope or 'module'}) {text}"


if __name__ == "__main__":
    main()
