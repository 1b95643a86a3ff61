"""Session fixtures: rendered projects (once per answer set) and the real data stores."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from components import PostgresServer, RedisServer
from variants import DEFAULT_ANSWERS, VARIANTS
from xdist.remote import Producer
from xdist.scheduler import LoadGroupScheduling, Scheduling

from tooling.rendering import Project, install, installed_project, render, uv

# The suite runs as `.venv/bin/python -m pytest` without an activated venv: the tools it
# installed there (ruff, uv, hadolint, copier) come first, as they would when activated.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


@pytest.fixture(scope="session")
def default_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    yield installed_project(tmp_path_factory, **DEFAULT_ANSWERS)


@pytest.fixture(scope="session", params=list(VARIANTS))
def store_project(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Project:
    """The project rendered for each `session_store` answer (and the optional routes)."""
    return installed_project(tmp_path_factory, **DEFAULT_ANSWERS, **VARIANTS[request.param])


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def checking_environment(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A virtual environment with every store's libraries, ruff and mypy: for checking the
    template's sources in place and projects rendered for any answers."""
    every_feature = {"account_linking": "connected_accounts", "access_token_route": True}
    path = render(tmp_path_factory.mktemp("checking") / "app", session_store="sql", **every_feature)
    project = install(path)
    subprocess.run(
        [uv(), "pip", "install", "-q", "--python", str(project.python), "redis[hiredis]>=5.2"],
        check=True,
    )
    return project


# The suite runs on several cores (pytest-xdist: `-n auto --dist loadgroup` in pyproject.toml;
# `-n 0` runs it in this process). Tests that share a costly session fixture stay on one
# worker: the hostile-input drivers (every variant's run starts at once), and the end-to-end
# tests (one OpenID provider, browser and set of servers for all of them). The groups go by
# path, in the scheduler: xdist's `xdist_group` marker no longer groups under pytest 9.2
# (it renames `item._nodeid`, which pytest 9.2 no longer reads).
GROUPS = {"tests/e2e/": "e2e", "tests/test_hostile_input.py": "hostile"}
MAX_WORKERS = 4  # each worker renders and installs the projects its tests use


class _GroupsByPath(LoadGroupScheduling):
    def _split_scope(self, nodeid: str) -> str:
        group = next((g for prefix, g in GROUPS.items() if nodeid.startswith(prefix)), None)
        return group or super()._split_scope(nodeid)


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> Scheduling | None:
    if config.getvalue("dist") != "loadgroup":
        return None
    return _GroupsByPath(config, log)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS))
