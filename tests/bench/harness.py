"""What the benchmarks share: the stores they cover, rendered projects, and store servers.

A store name is a `session_store` answer plus, where it matters, the server behind it:

    cookie        session_store=cookie (logout records in SQLite)
    cookie-redis  session_store=cookie, logout records in a throw-away redis-server (REDIS_URL)
    redis         session_store=redis, a throw-away redis-server (REDIS_URL)
    sql-sqlite    session_store=sql, a SQLite file in the run's temporary directory
    sql-postgres  session_store=sql, a throw-away PostgreSQL cluster (DATABASE_URL)

`Projects` renders and installs each answer at most once per run (cookie and cookie-redis
share one project, as do sql-sqlite and sql-postgres), from the working tree (uncommitted
changes included, like the template tests) or from a committed `ref`, so that numbers can be
tied to a commit.
`store_settings` starts what a store needs and yields the environment variables that point
the generated app at it.
"""

import os
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: components
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: tooling
from components import PostgresServer, RedisServer

from tooling.rendering import REPO, Project, install, render

R = TypeVar("R")

# Store name -> the `session_store` answer it is generated with.
ANSWERS: dict[str, str] = {
    "cookie": "cookie",
    "cookie-redis": "cookie",
    "redis": "redis",
    "sql-sqlite": "sql",
    "sql-postgres": "sql",
}
SERVER_STORES = ("redis", "sql-postgres", "sql-sqlite")

# Settings of the generated app that must not leak in from the shell running the benchmark.
APP_SETTING_PREFIXES = ("AUTH0_", "AUTH_", "API_", "APP_", "SESSION_", "REDIS_", "DATABASE_")


def chosen_stores(choice: str, available: tuple[str, ...]) -> list[str]:
    """The stores named by a `--store` option: one of `available`, or `all` of them."""
    return list(available) if choice == "all" else [choice]


def git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


class Projects:
    """Rendered and installed projects under `root`, one per `session_store` answer.

    `ref` None renders the working tree; a commit-ish renders that commit's template.
    """

    def __init__(self, root: Path, ref: str | None = None) -> None:
        self.root = root
        self.commit = git("rev-parse", ref or "HEAD")
        self.ref = ref
        self._projects: dict[str, Project] = {}
        self._source: Path | None = None

    @property
    def description(self) -> str:
        """Which template the projects come from, for the benchmark's report."""
        if self.ref is not None:
            return f"template at {self.ref} ({self.commit[:10]})"
        dirty = git("status", "--porcelain", "--", "copier.yml", "template")
        return f"template working tree: {self.commit[:10]}" + (
            " + uncommitted changes" if dirty else ""
        )

    def for_store(self, store: str) -> Project:
        answer = ANSWERS[store]
        if answer not in self._projects:
            print(f"[bench] rendering and installing session_store={answer} ...", flush=True)
            path = self._render(self.root / f"app-{answer}", session_store=answer)
            self._projects[answer] = install(path, {"session_store": answer})
        return self._projects[answer]

    def _render(self, destination: Path, **answers: str) -> Path:
        if self.ref is None:
            return render(destination, **answers)
        from copier import run_copy

        if self._source is None:
            self._source = self.root / f"template-{self.commit[:10]}"
            self._source.mkdir()
            archive = subprocess.run(
                ["git", "-C", str(REPO), "archive", self.commit, "copier.yml", "template"],
                capture_output=True,
                check=True,
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(self._source)], input=archive, check=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run_copy(
                str(self._source),
                destination,
                data=answers,
                defaults=True,
                quiet=True,
                unsafe=False,
            )
        return destination


@contextmanager
def store_settings(store: str, workdir: Path) -> Iterator[dict[str, str]]:
    """Start what `store` needs (stopped on exit); yield the app's settings for it."""
    if store == "cookie":
        # Where the cookie store records logouts (a setting since back-channel logout).
        yield {"LOGOUT_RECORDS_PATH": str(workdir / "logout-records.db")}
    elif store in ("redis", "cookie-redis"):
        with RedisServer() as redis:
            yield {"REDIS_URL": redis.url}
    elif store == "sql-sqlite":
        database = workdir / "sessions.db"
        for leftover in workdir.glob("sessions.db*"):
            leftover.unlink()
        yield {"DATABASE_URL": f"sqlite:///{database}"}
    elif store == "sql-postgres":
        with PostgresServer() as postgres:
            yield {"DATABASE_URL": postgres.dsn}
    else:
        raise ValueError(f"unknown store {store!r}")


def app_environment(settings: dict[str, str]) -> dict[str, str]:
    """This process's environment without the app's settings, plus `settings`."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(APP_SETTING_PREFIXES)}
    return {**inherited, **settings}


def measure_stores(
    prefix: str,
    args: Any,
    measure: Callable[[str, Project, dict[str, str], Path], R],
    skipped: Callable[[str, str], R],
) -> tuple[list[R], str]:
    """Run `measure(store, project, settings, workdir)` for each store `args.store` names,
    each with its rendered project and a running store server; a store whose server is
    not installed gives `skipped(store, reason)`. Returns the results and what was rendered."""
    results: list[R] = []
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        projects = Projects(Path(tmp), args.ref)
        for store in chosen_stores(args.store, tuple(ANSWERS)):
            project = projects.for_store(store)
            workdir = Path(tmp) / store
            workdir.mkdir()
            try:
                with store_settings(store, workdir) as settings:
                    results.append(measure(store, project, settings, workdir))
            except pytest.skip.Exception as exc:  # a store server that is not installed
                results.append(skipped(store, str(exc)))
        return results, projects.description
