"""Hostile input: the generated app answers bad input with a 4xx (or its documented success),
never a 5xx, never echoes markup, and only ever redirects to its own origin.

The checks live in the package `hostile/` (one test module per theme, see its
`__init__.py`), which runs inside a rendered project (its fixtures, its virtual environment,
the in-process fake provider): property-based tests (hypothesis) of queries, headers, bodies
and cookies for every route; oversized, non-UTF-8, NUL and duplicated input; tampered,
truncated, re-ordered and foreign session and transaction cookies, and cookies of another
SESSION_SECRET; an open-redirect corpus for `returnTo` at login and logout; Host and
X-Forwarded-* headers.

Each answer set of `variants.VARIANTS` gets a scratch copy of its rendered project with the
driver package copied to its `tests/hostile/`, run with the project's interpreter
(hypothesis is installed beside the project's environment, not into it); the copies run
side by side. The session stores
(cookie, redis with the `redis_server` fixture, sql with SQLite) get every test; answer
sets that only add routes (the token route) get the per-route tests for those routes. Each
driver test is reported here as one test per variant. HOSTILE_EXAMPLES (default 100) sets
the hypothesis examples per test and route.
"""

import ast
import os
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import distributions
from pathlib import Path

import pytest
from components import RedisServer
from variants import DEFAULT_ANSWERS, VARIANTS

from tooling.rendering import installed_project, uv

TESTS = Path(__file__).resolve().parent
# A package collected inside the generated projects, not here (norecursedirs in pyproject.toml).
DRIVER = TESTS / "hostile"
DRIVER_PATH = "tests/hostile"  # where it is copied to in the project
REQUIREMENTS = TESTS / "requirements.txt"
# Installed next to (not into) the projects' environments, which other tests share.
FUZZ_PACKAGES = ("hypothesis",)
EXAMPLES = os.environ.get("HOSTILE_EXAMPLES", "100")
RUN_TIMEOUT = 600.0
# Settings the generated tests read from the environment: each variant sets its own.
STORE_VARIABLES = ("REDIS_URL", "DATABASE_URL", "PYTHONPATH", "HOSTILE_EXAMPLES", "HOSTILE_ROUTES")


def full_run(variant: str) -> bool:
    """Each session store gets every test. The other answer sets add routes (the token route,
    account linking), some with another store: they get the per-route tests, for those
    routes only."""
    return set(VARIANTS[variant]) <= {"session_store"}


def driver_functions() -> dict[str, tuple[str, ast.FunctionDef]]:
    """The driver's test functions by name, each with its module's file name. Names are unique
    across the modules: the driver's report is read by test name."""
    found: dict[str, tuple[str, ast.FunctionDef]] = {}
    for module in sorted(DRIVER.glob("test_*.py")):
        for node in ast.parse(module.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                assert node.name not in found, f"{node.name} in {found[node.name][0]} and {module}"
                found[node.name] = (module.name, node)
    return found


def driver_tests(variant: str) -> list[str]:
    return [
        name
        for name, (_, node) in driver_functions().items()
        if full_run(variant)
        or "route" in {arg.arg for arg in node.args.args}
        or name == "test_fuzzed_paths_and_methods"
    ]


def pinned(package: str) -> str:
    """`package==version` as tests/requirements.txt pins it."""
    for line in REQUIREMENTS.read_text().splitlines():
        if line.split("==")[0].strip().lower() == package:
            return line.strip()
    raise AssertionError(f"{package} is not pinned in {REQUIREMENTS}")


@dataclass
class Case:
    name: str
    outcome: str  # passed, failed, skipped, xfailed
    message: str = ""


@dataclass
class DriverRun:
    """One run of the driver in a copy of one variant's project."""

    variant: str
    process: subprocess.Popen[bytes]
    junit: Path
    log: Path
    started: float = field(default_factory=time.monotonic)
    _cases: dict[str, list[Case]] | None = None

    def cases(self, test: str) -> list[Case]:
        if self._cases is None:
            self._cases = self._collect()
        return self._cases.get(test, [])

    def _collect(self) -> dict[str, list[Case]]:
        try:
            code = self.process.wait(timeout=max(1.0, RUN_TIMEOUT - self.elapsed))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"the {self.variant} driver ran over {RUN_TIMEOUT:.0f} s\n{self.tail()}")
        if code not in (0, 1) or not self.junit.exists():
            pytest.fail(f"the {self.variant} driver exited {code}\n{self.tail()}")
        cases: dict[str, list[Case]] = {}
        for case in ET.parse(self.junit).getroot().iter("testcase"):
            name = case.get("name", "")
            outcome, message = "passed", ""
            for child in case:
                if child.tag in ("failure", "error"):
                    outcome = "failed"
                    message = f"{child.get('message', '')}\n{child.text or ''}"
                elif child.tag == "skipped":
                    xfail = child.get("type") == "pytest.xfail"
                    outcome = "xfailed" if xfail else "skipped"
                    message = child.get("message", "")
            cases.setdefault(name.split("[")[0], []).append(Case(name, outcome, message))
        return cases

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-6000:] if self.log.exists() else ""


@pytest.fixture(scope="session")
def fuzz_packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """hypothesis for the projects' interpreter, on PYTHONPATH only.

    Packages the projects already have are removed again, so the app runs with its own
    versions of them (PYTHONPATH comes first on sys.path).
    """
    target = tmp_path_factory.mktemp("hostile-packages")
    project = installed_project(tmp_path_factory, **DEFAULT_ANSWERS)
    subprocess.run(
        [uv(), "pip", "install", "-q", "--python", str(project.python), "--target", str(target),
         *(pinned(package) for package in FUZZ_PACKAGES)],
        check=True,
    )  # fmt: skip
    site_packages = [str(path) for path in project.venv.glob("lib/python*/site-packages")]
    present = {canonical(d.metadata["Name"]) for d in distributions(path=site_packages)}
    for dist in distributions(path=[str(target)]):
        if canonical(dist.metadata["Name"]) in present:
            for file in dist.files or ():
                path = target / file
                if path.is_file():
                    path.unlink()
    for directory in sorted(target.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
    return target


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.fixture(scope="session")
def hostile_runs(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer, fuzz_packages: Path
) -> Iterator[dict[str, DriverRun]]:
    """Start the driver for every variant at once; each test waits for its variant's run."""
    runs: dict[str, DriverRun] = {}
    base_env = {k: v for k, v in os.environ.items() if k not in STORE_VARIABLES}
    try:
        for variant, answers in VARIANTS.items():
            project = installed_project(tmp_path_factory, **DEFAULT_ANSWERS, **answers)
            work = tmp_path_factory.mktemp(f"hostile-{variant}")
            copy = work / "app"
            shutil.copytree(
                project.path,
                copy,
                ignore=shutil.ignore_patterns(".venv", "__pycache__", ".*_cache", ".hypothesis"),
            )
            shutil.copytree(
                DRIVER, copy / DRIVER_PATH, ignore=shutil.ignore_patterns("__pycache__")
            )
            env = {
                **base_env,
                "PYTHONPATH": str(fuzz_packages),
                "HOSTILE_EXAMPLES": EXAMPLES,
                # Only hypothesis' plugin: pytest would otherwise compile (assertion-rewrite)
                # every module of every package that ships a plugin, on every run.
                "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
            }
            if answers.get("session_store") == "redis":
                env["REDIS_URL"] = redis_server.url
            selection = [DRIVER_PATH]
            if not full_run(variant):
                env["HOSTILE_ROUTES"] = "extra"
                modules = driver_functions()
                selection = [
                    f"{DRIVER_PATH}/{modules[test][0]}::{test}" for test in driver_tests(variant)
                ]
            junit, log = work / "junit.xml", work / "driver.log"
            with log.open("wb") as output:
                process = subprocess.Popen(
                    [str(project.python), "-m", "pytest", *selection, "-q",
                     "-p", "_hypothesis_pytestplugin", "-p", "no:cacheprovider",
                     f"--junitxml={junit}"],
                    cwd=copy, env=env, stdout=output, stderr=subprocess.STDOUT,
                )  # fmt: skip
            runs[variant] = DriverRun(variant, process, junit, log)
        yield runs
    finally:
        for run in runs.values():
            if run.process.poll() is None:
                run.process.kill()
                run.process.wait()


@pytest.mark.parametrize(
    ("variant", "test"),
    [(variant, test) for variant in VARIANTS for test in driver_tests(variant)],
)
def test_hostile_input(hostile_runs: dict[str, DriverRun], variant: str, test: str) -> None:
    cases = hostile_runs[variant].cases(test)
    if not cases:
        pytest.fail(f"{test} did not run\n{hostile_runs[variant].tail()}")
    failed = [case for case in cases if case.outcome == "failed"]
    if failed:
        report = "\n\n".join(f"{case.name}: {case.message[-3000:]}" for case in failed[:3])
        pytest.fail(f"{len(failed)} of {len(cases)} failed\n{report}", pytrace=False)
    if all(case.outcome == "skipped" for case in cases):
        pytest.skip(cases[0].message)
    xfailed = [case for case in cases if case.outcome == "xfailed"]
    if xfailed:
        pytest.xfail(xfailed[0].message)
