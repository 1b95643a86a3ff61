"""A newcomer who renames the auth routes or the cookies edits one line and breaks no test.

The generated tests import `AUTH_PREFIX`, `LOGIN_PATH`, `CALLBACK_PATH` (`app/auth/urls.py`),
`SESSION_COOKIE` (`app/auth/session_cookie.py`) and `COOKIE_PREFIX` (`app/auth/transactions.py`)
rather than spelling them. Here a copy of a rendered project gets other values for the route
prefix and both cookie names (and, on the server stores, its own session lifetimes), and its
own suite must still pass. The defaults themselves are spelled in the app and in the README,
which is checked against the app.
"""

import shutil
from collections.abc import Iterable
from pathlib import Path

import pytest
from components import RedisServer
from variants import DEFAULT_ANSWERS, VARIANTS

from tooling.rendering import Project, installed_project, parallel

# file -> (the line as generated, the line a newcomer writes instead)
RENAMES = {
    "app/auth/urls.py": ('DEFAULT_AUTH_PREFIX = "/auth"', 'DEFAULT_AUTH_PREFIX = "/account"'),
    "app/auth/session_cookie.py": ('SESSION_COOKIE = "app_session"', 'SESSION_COOKIE = "sid"'),
    "app/auth/transactions.py": ('COOKIE_PREFIX = "app_tx."', 'COOKIE_PREFIX = "login."'),
}
# Two of the variants test_template.py installs: the most routes on Redis, and the other
# linking mode on SQL. On the server stores the team also sets its own session lifetimes (see
# TEAM_SETTINGS), which the generated tests must read, not assume. The default answers (the
# cookie store) get the cookie renames with the route prefix moved by its setting instead.
ANSWER_SETS: dict[str, dict[str, object]] = {
    "most-features": VARIANTS["token-route-redis"],
    "connect-sql": VARIANTS["connect-sql"],
}
PREFIX_FILE = "app/auth/urls.py"


def names(project: Project, sources: Path, env: dict[str, str] | None = None) -> list[str]:
    """AUTH_PREFIX, CALLBACK_PATH, SESSION_COOKIE and COOKIE_PREFIX of the app in `sources`,
    run with the project's interpreter (the working directory comes first on its path)."""
    code = (
        "from app.auth import urls, session_cookie as s, transactions as t;"
        "print(urls.AUTH_PREFIX, urls.CALLBACK_PATH, s.SESSION_COOKIE, t.COOKIE_PREFIX)"
    )
    return project.run(project.python, "-c", code, cwd=sources, env=env).stdout.split()


def renamed_copy(project: Project, destination: Path, *, files: Iterable[str] = RENAMES) -> Path:
    """A copy of the project's sources (not its environment) with the names in `files`
    changed."""
    shutil.copytree(
        project.path, destination, ignore=shutil.ignore_patterns(".venv", "__pycache__", ".*_cache")
    )
    for name in files:
        generated, renamed = RENAMES[name]
        path = destination / name
        source = path.read_text()
        assert source.count(generated) == 1, f"{name} no longer says {generated}"
        path.write_text(source.replace(generated, renamed))
    return destination


@pytest.mark.parametrize("answers", list(ANSWER_SETS.values()), ids=list(ANSWER_SETS))
def test_generated_tests_pass_with_renamed_routes_and_cookies(
    answers: dict[str, object],
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
    redis_server: RedisServer,
) -> None:
    project = installed_project(tmp_path_factory, **DEFAULT_ANSWERS, **answers)
    copy = renamed_copy(project, tmp_path / "app")
    store = answers.get("session_store", "cookie")
    if store != "cookie":
        own_session_lifetimes(copy)

    assert names(project, copy) == ["/account", "/account/callback", "sid", "login."]
    env = {"REDIS_URL": redis_server.url} if store == "redis" else {}
    result = project.run(
        project.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *parallel(env), cwd=copy,
        env=env,
    )  # fmt: skip
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "skipped" not in summary and "failed" not in summary


def test_generated_tests_pass_with_the_auth_prefix_setting_and_renamed_cookies(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """`AUTH_PREFIX=/account` in the environment (or `.env`) moves the routes without an
    edit; the cookie store's cookies are renamed in the code."""
    project = installed_project(tmp_path_factory, **DEFAULT_ANSWERS)
    copy = renamed_copy(project, tmp_path / "app", files=set(RENAMES) - {PREFIX_FILE})
    env = {"AUTH_PREFIX": "/account"}

    assert names(project, copy, env) == ["/account", "/account/callback", "sid", "login."]
    result = project.run(
        project.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *parallel(env), cwd=copy,
        env=env,
    )  # fmt: skip
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "skipped" not in summary and "failed" not in summary


def test_the_readme_documents_the_default_route_prefix(default_project: Project) -> None:
    """The one place that spells the defaults besides the app: what to register at the
    provider, and the routes table."""
    prefix, callback, *_ = names(default_project, default_project.path)
    readme = (default_project.path / "README.md").read_text()
    assert f"`https://YOUR-APP{callback}`" in readme
    assert f"`https://YOUR-APP{prefix}/backchannel-logout`" in readme
    assert f"| `GET {prefix}/profile` |" in readme


TEAM_SETTINGS = '''class Settings(AuthSettings):
    """The app's settings. Template updates never change this class."""

    session_inactivity_duration: int = 8 * 3600  # our policy: a working day
    session_absolute_duration: int = 2 * 24 * 3600
'''


def own_session_lifetimes(project: Path) -> None:
    """The team's own lifetimes in app/config.py, where its settings live: the generated
    tests read the lifetimes from the settings, so the suite stays green."""
    config = project / "app/config.py"
    generated = TEAM_SETTINGS.split("\n\n", 1)[0] + "\n"  # the class as generated
    assert generated in config.read_text()
    config.write_text(config.read_text().replace(generated, TEAM_SETTINGS))
