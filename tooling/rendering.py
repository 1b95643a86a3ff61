"""Render the template and install generated projects (shared by hooks, tests, benchmarks and
the mutation command)."""

import os
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def snapshot_template(destination: Path) -> Path:
    """A git repository holding the template's working tree as one commit.

    Copier records the template commit a project was made from; for uncommitted
    changes it makes a throwaway commit that `copier update` cannot find later.
    Tests that update projects render from a snapshot instead.
    """
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, files):
        if (REPO / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, destination / name)
    git = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "Template snapshot"]):
        subprocess.run([*git, *command], cwd=destination, check=True)
    return destination


def render(
    destination: Path, *, template: Path = REPO, vcs_ref: str = "HEAD", **answers: object
) -> Path:
    """Render the template (by default the working tree, uncommitted changes included)."""
    from copier import run_copy
    from copier.errors import DirtyLocalWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DirtyLocalWarning)
        run_copy(
            str(template),
            destination,
            data=answers,
            defaults=True,
            vcs_ref=vcs_ref,
            quiet=True,
            unsafe=False,
        )
    return destination


@dataclass(frozen=True)
class Project:
    """A rendered project with its own virtual environment."""

    path: Path
    venv: Path
    answers: dict[str, object] = field(default_factory=dict)

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name

    def run(
        self,
        *args: str | Path,
        check: bool = True,
        timeout: float = 300,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in the project (or in `cwd`), failing the test on errors."""
        result = subprocess.run(
            [str(arg) for arg in args],
            cwd=cwd or self.path,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )
        if check and result.returncode != 0:
            pytest.fail(
                f"{' '.join(map(str, args))} exited {result.returncode}\n"
                f"--- stdout ---\n{result.stdout[-6000:]}\n--- stderr ---\n{result.stderr[-6000:]}"
            )
        return result


def generated_files(project: Path) -> list[Path]:
    """The files of a rendered project, without its virtual environment and tools' caches."""
    skipped = {".venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
    return [
        path
        for path in project.rglob("*")
        if path.is_file() and not skipped.intersection(path.relative_to(project).parts)
    ]


def uv() -> str:
    found = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    if not Path(found).exists():
        pytest.fail("uv is not installed: pip install -r tests/requirements.txt")
    return found


# The template tests run the generated suites on both cores of the CI machine (pytest-xdist,
# installed into the test venvs only: generated projects do not depend on it; their suites
# pass run either way, and the README's and update tests run them as users do).
XDIST = "pytest-xdist==3.8.0"


def parallel(env: dict[str, str]) -> tuple[str, ...]:
    """pytest options to run a generated suite on two cores, unless it runs against a Redis
    or PostgreSQL server (some of its tests count that server's commands or change its
    tables: one at a time there), or the template's suite itself runs on several cores (a
    worker of its own is one process per core already)."""
    if {"REDIS_URL", "DATABASE_URL"} & env.keys() or "PYTEST_XDIST_WORKER" in os.environ:
        return ()
    return ("-n", "2")


def install(path: Path, answers: dict[str, object] | None = None) -> Project:
    """Create a virtual environment for the project and install it with its dev group
    (and pytest-xdist, see `parallel`)."""
    venv = path / ".venv"
    subprocess.run([uv(), "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    subprocess.run(
        [uv(), "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
         "-e", str(path), "--group", str(path / "pyproject.toml") + ":dev", XDIST],
        check=True,
        cwd=path,
    )  # fmt: skip
    return Project(path=path, venv=venv, answers=answers or {})


_projects: dict[tuple[tuple[str, object], ...], Project] = {}


def installed_project(tmp_path_factory: pytest.TempPathFactory, **answers: object) -> Project:
    """The project for these answers, rendered and installed once per test session."""
    key = tuple(sorted(answers.items()))
    if key not in _projects:
        path = render(tmp_path_factory.mktemp("project") / "app", **answers)
        _projects[key] = install(path, answers)
    return _projects[key]
