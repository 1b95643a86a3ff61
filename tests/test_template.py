"""The template renders a clean, working project: linted, typed, tested, reproducible."""

import filecmp
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import yaml
from components import PostgresServer, RedisServer, free_port, wait_for

from tooling.rendering import REPO, Project, generated_files, parallel, render, uv

TEXT_SUFFIXES = {".py", ".toml", ".md", ".html", ".yml", ".yaml", ".example", ".txt", ""}
# Copier's Jinja syntax: `{{ name ...`, `{% if ...`, `{# ...` (Python dicts like `{}}` are fine).
JINJA_RESIDUE = re.compile(r"\{\{-?\s*[A-Za-z_]|\{%-?\s*[a-z]+\b|%\}|\{#")


def test_no_template_syntax_is_left_in_generated_files(store_project: Project) -> None:
    offenders = []
    for path in generated_files(store_project.path):
        if path.suffix not in TEXT_SUFFIXES or path.parent.name == "templates":
            continue  # the app's own Jinja2 page templates are meant to contain {{ }}
        if JINJA_RESIDUE.search(path.read_text()):
            offenders.append(str(path.relative_to(store_project.path)))
    assert offenders == []
    assert not [p for p in generated_files(store_project.path) if p.suffix == ".jinja"]


def test_generated_project_passes_ruff(store_project: Project) -> None:
    store_project.run(store_project.bin("ruff"), "check", ".")
    store_project.run(store_project.bin("ruff"), "format", "--check", ".")


def test_generated_project_passes_mypy_strict(store_project: Project) -> None:
    store_project.run(store_project.bin("mypy"))


def run_generated_tests(project: Project, **env: str) -> str:
    result = project.run(
        project.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *parallel(env), env=env
    )
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "skipped" not in summary and "failed" not in summary
    return summary


def test_generated_project_tests_pass(
    store_project: Project, redis_server: RedisServer, postgres_server: PostgresServer
) -> None:
    """Each store's answer set runs its suite in every configuration of the store; the
    answer sets that add routes run theirs in the store's default one (the routes work the
    same on any backend of their store, which its own answer set covers)."""
    store = store_project.answers.get("session_store", "cookie")
    every_configuration = set(store_project.answers) <= {"session_store"}
    if store == "redis":
        run_generated_tests(store_project, REDIS_URL=redis_server.url)
    elif store == "sql":
        run_generated_tests(store_project)  # SQLite, the default
        if every_configuration:
            run_generated_tests(store_project, DATABASE_URL=postgres_server.url)
    else:
        run_generated_tests(store_project)  # logout records in SQLite
        if every_configuration:
            run_generated_tests(store_project, REDIS_URL=redis_server.url)  # ... and in Redis


def test_the_lock_file_is_current(store_project: Project) -> None:
    result = store_project.run(uv(), "lock", "--check")
    assert result.returncode == 0


LINKING_FILES = {
    "none": set(),
    "connect": {"app/auth/linking.py", "devserver/linking.py", "tests/test_linking.py"},
    "connected_accounts": {
        "app/auth/connected_accounts.py",
        "app/auth/my_account.py",
        "devserver/connected_accounts.py",
        "tests/test_connected_accounts.py",
    },
}


def test_only_the_chosen_code_is_generated(store_project: Project) -> None:
    store = store_project.answers.get("session_store", "cookie")
    token_route = store_project.answers.get("access_token_route", False)
    assert (store_project.path / "app/auth/token_route.py").exists() == token_route
    linking = store_project.answers.get("account_linking", "none")
    for mode, files in LINKING_FILES.items():
        for name in files:
            assert (store_project.path / name).exists() == (mode == linking), name
    chosen = (store_project.path / "app/auth/variant.py").read_text()
    assert ("app.auth.linking import" in chosen) == (linking == "connect")
    assert ("app.auth.connected_accounts import" in chosen) == (linking == "connected_accounts")
    assert ("app.auth.token_route import" in chosen) == token_route
    stores = {path.stem for path in (store_project.path / "app/auth/stores").glob("*.py")}
    dependencies = (store_project.path / "pyproject.toml").read_text()

    shared = {"__init__", "base", "server", "redis_client", "redis_cache", "sql_cache"}
    logouts = {"logouts", "logouts_sqlite", "logouts_redis"}
    assert stores - shared - logouts == {store}
    assert ("redis_client" in stores) == (store != "sql")
    assert ("redis_cache" in stores) == (store != "sql")
    assert ("sql_cache" in stores) == (store == "sql")
    assert (logouts <= stores) == (store == "cookie")
    assert not (logouts & stores) or store == "cookie"
    assert ("server" in stores) == (store != "cookie")
    assert ("redis" in dependencies) == (store in ("cookie", "redis"))
    assert ("sqlalchemy" in dependencies) == (store == "sql")


def test_the_app_imports_with_only_environment_configuration(default_project: Project) -> None:
    env = {
        "AUTH0_DOMAIN": "tenant.us.auth0.com",
        "AUTH0_CLIENT_ID": "abc",
        "AUTH0_CLIENT_SECRET": "client-password-value",
        "APP_BASE_URL": "https://app.example.com",
        "SESSION_SECRET": "Vt7Qm2Lx9Rk4Pz8Wn3Hj6Bc1Fd5Gs0Ya",
    }
    code = 'from app.main import app; print(sorted(app.openapi()["paths"]))'
    result = default_project.run(default_project.python, "-W", "error", "-c", code, env=env)
    for path in ("/auth/profile", "/auth/sessions", "/profile", "/api/orders"):
        assert f"'{path}'" in result.stdout


def test_bad_configuration_stops_startup_with_every_problem(default_project: Project) -> None:
    env = {
        "AUTH0_DOMAIN": "http://tenant.example",
        "SESSION_SECRET": "short",
        "AUTH0_CLIENT_ID": "",
    }
    result = default_project.run(
        default_project.python, "-c", "import app.main", env=env, check=False
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    for name in (
        "AUTH0_DOMAIN",
        "AUTH0_CLIENT_ID",
        "AUTH0_CLIENT_SECRET",
        "APP_BASE_URL",
        "SESSION_SECRET",
    ):
        assert name in result.stderr
    assert "short" not in result.stderr.replace("shorter", "")


def test_rendering_twice_is_byte_identical(tmp_path: Path) -> None:
    first = render(tmp_path / "first")
    second = render(tmp_path / "second")

    comparison = filecmp.dircmp(first, second)
    assert not comparison.left_only and not comparison.right_only
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True).stdout
    for path in generated_files(first):
        ours, theirs = path.read_bytes(), (second / path.relative_to(first)).read_bytes()
        if path.name == ".copier-answers.yml" and dirty:
            # Copier records a throwaway commit for uncommitted template changes.
            ours, theirs = (re.sub(rb"_commit: .*", b"", text) for text in (ours, theirs))
        assert ours == theirs, path


def test_answers_file_records_answers_and_no_secrets(default_project: Project) -> None:
    answers = (default_project.path / ".copier-answers.yml").read_text()

    assert "project_name: My App" in answers
    assert "project_slug: my-app" in answers
    assert "secret" not in answers.lower()
    assert not (default_project.path / ".env").exists()
    assert ".env" in (default_project.path / ".gitignore").read_text().splitlines()


def test_answers_shape_the_project(tmp_path: Path) -> None:
    project = render(tmp_path / "p", project_name="Order Desk", description="Orders & returns")

    pyproject = (project / "pyproject.toml").read_text()
    assert 'name = "order-desk"' in pyproject
    assert "Orders & returns" in pyproject
    assert '"Order Desk"' in (project / "app" / "variant.py").read_text()
    assert (project / "README.md").read_text().startswith("# Order Desk\n")


@pytest.mark.parametrize(
    ("answers", "complaint"),
    [
        ({"project_slug": "My App"}, "lowercase"),
        ({"project_slug": "-app"}, "lowercase"),
        ({"project_name": "   "}, "name"),
        ({"description": 'say "hi"'}, "quotes"),
    ],
)
def test_bad_answers_are_refused_with_a_message(
    tmp_path: Path, answers: dict[str, str], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        render(tmp_path / "p", **answers)


@pytest.mark.parametrize(
    ("store", "services"), [("cookie", set()), ("redis", {"redis"}), ("sql", {"postgres"})]
)
def test_the_ci_workflow_checks_everything_with_the_stores_service(
    tmp_path: Path, store: str, services: set[str]
) -> None:
    project = render(tmp_path / "project", session_store=store)
    workflow = yaml.safe_load((project / ".github/workflows/ci.yml").read_text())

    job = workflow["jobs"]["test"]
    assert set(job.get("services", {})) == services
    actions = [step["uses"] for step in job["steps"] if "uses" in step]
    assert actions and all(re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", a) for a in actions)
    commands = " | ".join(step.get("run", "") for step in job["steps"])
    for check in ("ruff check", "ruff format --check", "mypy", "pytest"):
        assert check in commands


def test_no_ci_answer_means_no_workflow(tmp_path: Path) -> None:
    project = render(tmp_path / "project", ci="none")

    assert not (project / ".github").exists()


def dockerfile_instructions(project: Project) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments left out."""
    text = (project.path / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = "\n".join(lines).replace("\\\n", " ")
    return [instruction.strip() for instruction in joined.splitlines() if instruction.strip()]


def test_the_dockerfile_passes_hadolint(default_project: Project) -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        message = "hadolint is missing: pip install -r tests/requirements.txt"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    default_project.run(hadolint, "Dockerfile")
    dockerfile = (default_project.path / "Dockerfile").read_text()
    assert "\nUSER 10001\n" in dockerfile  # not root
    assert (
        "SECRET" not in dockerfile
        and ".env" in (default_project.path / ".dockerignore").read_text()
    )


def test_the_production_image_trusts_no_forwarded_headers_and_has_no_dev_provider(
    default_project: Project,
) -> None:
    pyproject = (default_project.path / "pyproject.toml").read_text()
    instructions = dockerfile_instructions(default_project)

    assert not [line for line in instructions if "forwarded-allow-ips" in line or '"*"' in line]
    assert "ENV FORWARDED_ALLOW_IPS=127.0.0.1" in instructions
    assert not [line for line in instructions if "devserver" in line]
    assert re.search(r'^packages = \["app"\]', pyproject, re.M)  # the wheel holds app/ only


@pytest.mark.parametrize("git", [False, True], ids=["plain-folder", "git-repository"])
def test_the_leftover_check_looks_at_the_projects_own_files_only(
    default_project: Project, tmp_path: Path, git: bool
) -> None:
    """A `venv/` made by the user (with files that look like conflicts) is not theirs to fix;
    a conflict marker in the app is. In a git repository, `.gitignore` says what is theirs."""
    copy = tmp_path / "app"
    shutil.copytree(default_project.path, copy, ignore=shutil.ignore_patterns(".venv"))
    if git:
        subprocess.run(["git", "init", "-q", str(copy)], check=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", copy / "venv"], check=True)
    (copy / "venv" / "lib" / "vendored.py").write_text("<<<<<<< theirs\n")
    check = [default_project.python, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    test = "tests/test_repository.py"

    assert default_project.run(*check, test, cwd=copy, check=False).returncode == 0
    (copy / "app" / "leftover.py").write_text("<<<<<<< HEAD\n")
    assert default_project.run(*check, test, cwd=copy, check=False).returncode == 1


APP_SETTINGS = {
    "AUTH0_DOMAIN": "https://provider.test",
    "AUTH0_CLIENT_ID": "client",
    "AUTH0_CLIENT_SECRET": "secret",
    "SESSION_SECRET": "Vt7Qm2Lx9Rk4Pz8Wn3Hj6Bc1Fd5Gs0Ya-served",
    "AUTH_STARTUP_CHECK": "false",
}


@contextmanager
def serving(command: list[str | Path], *, cwd: Path, port: int) -> Iterator[None]:
    """Run `command` (a server on `port`) until its home page answers; stop it (and any
    process it started, like a reloader's worker) afterwards."""
    env = {**os.environ, **APP_SETTINGS, "APP_BASE_URL": f"http://127.0.0.1:{port}"}
    server = subprocess.Popen(
        [str(arg) for arg in command], cwd=cwd, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:

        def answers() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(answers, 60, f"{Path(command[0]).name} to serve the app")
        yield
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)


@pytest.mark.parametrize("mode", ["run", "dev"])
def test_fastapi_run_and_dev_find_the_app(default_project: Project, mode: str) -> None:
    """`fastapi run` / `fastapi dev` start the app from `[tool.fastapi]` in pyproject.toml."""
    port = free_port()
    command = [default_project.bin("fastapi"), mode, "--host", "127.0.0.1", "--port", str(port)]
    with serving(command, cwd=default_project.path, port=port):
        pass


PROMPT_WIDTH = 76  # 80 columns less copier's prompt marker


def test_copier_prompts_fit_80_columns() -> None:
    questions = {
        name: question
        for name, question in yaml.safe_load((REPO / "copier.yml").read_text()).items()
        if not name.startswith("_")
    }
    too_wide = [
        line
        for question in questions.values()
        for line in [*str(question.get("help", "")).splitlines(), *question.get("choices", {})]
        if len(line) > PROMPT_WIDTH
    ]
    assert too_wide == []


@pytest.mark.parametrize(
    ("name", "slug"),
    [("Café Crème", "cafe-creme"), ("Straße & Søn", "strasse-son"), ("2048 Orders", "orders")],
)
def test_the_default_slug_is_plain_ascii(tmp_path: Path, name: str, slug: str) -> None:
    project = render(tmp_path / "p", project_name=name)

    assert f'name = "{slug}"' in (project / "pyproject.toml").read_text()


def test_one_uv_version_for_the_image_the_ci_workflow_and_these_tests(
    default_project: Project,
) -> None:
    dockerfile = (default_project.path / "Dockerfile").read_text()
    workflow = (default_project.path / ".github/workflows/ci.yml").read_text()
    ours = re.search(r"^uv==(\S+)", (REPO / "tests/requirements.txt").read_text(), re.M)

    assert ours is not None
    assert f"ghcr.io/astral-sh/uv:{ours[1]} " in dockerfile
    assert f'version: "{ours[1]}"' in workflow


def test_the_image_installs_from_the_lock_and_its_health_check_passes(
    default_project: Project, tmp_path: Path
) -> None:
    """What `docker build` runs (its `uv sync` steps, word for word), on a copy of the
    project: the locked versions without the dev tools; then the image's command serves the
    app and its HEALTHCHECK command passes (without a provider to ask)."""
    instructions = dockerfile_instructions(default_project)
    syncs = [shlex.split(i)[1:] for i in instructions if i.startswith("RUN uv sync ")]
    assert syncs and all({"--locked", "--no-dev"} <= set(step) for step in syncs), syncs
    source = tmp_path / "src"
    shutil.copytree(default_project.path, source, ignore=shutil.ignore_patterns(".venv"))
    venv = tmp_path / "venv"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)}
    for step in syncs:
        subprocess.run(
            [uv(), *step[1:], "-q", "--python", sys.executable], cwd=source, env=env, check=True
        )

    assert (venv / "bin" / "uvicorn").exists()
    assert not [tool for tool in ("pytest", "mypy", "ruff") if (venv / "bin" / tool).exists()]
    (health,) = [i for i in instructions if i.startswith("HEALTHCHECK ")]
    check = json.loads(health.split(" CMD ", 1)[1])
    assert "/healthz" in check[-1]
    (command,) = [json.loads(i.removeprefix("CMD ")) for i in instructions if i.startswith("CMD ")]
    port = free_port()
    served = [venv / "bin" / command[0], *command[1:]]
    served[served.index("--port") + 1] = str(port)
    served[served.index("--host") + 1] = "127.0.0.1"
    with serving(served, cwd=tmp_path, port=port):
        probe = [venv / "bin" / check[0], *check[1:-1], check[-1].replace(":8000/", f":{port}/")]
        assert f":{port}/healthz" in str(probe[-1]), "the check no longer asks port 8000"
        result = subprocess.run(probe, capture_output=True, text=True, timeout=10, check=False)
        assert result.returncode == 0, result.stderr


def test_pre_commit_hooks_run_without_an_activated_venv(
    default_project: Project, tmp_path: Path
) -> None:
    """`git commit` from an editor or a plain shell: the hooks find the project's .venv."""
    project = tmp_path / "project"
    shutil.copytree(default_project.path, project, symlinks=True)
    git = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "Generated"]):
        subprocess.run([*git, *command], cwd=project, check=True)
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env.update(PATH="/usr/bin:/bin", HOME=str(tmp_path), PRE_COMMIT_HOME=str(tmp_path / "cache"))

    result = subprocess.run(
        [project / ".venv" / "bin" / "pre-commit", "run", "--all-files"],
        cwd=project, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert "ruff check" in result.stdout and "mypy" in result.stdout


@pytest.mark.parametrize("store", ["cookie", "redis", "sql"])
def test_the_generated_readme_says_why_each_dependency_is_there(tmp_path: Path, store: str) -> None:
    project = render(tmp_path / "p", session_store=store)
    declared = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    extras = declared["optional-dependencies"].values()
    listed = [*declared["dependencies"], *(need for extra in extras for need in extra)]
    names = [re.split(r"[\[<>=!~ ]", requirement, maxsplit=1)[0] for requirement in listed]
    readme = (project / "README.md").read_text()
    section = readme.split("## Dependencies", 1)[1].split("\n## ", 1)[0]

    assert [name for name in names if f"`{name}" not in section] == []
