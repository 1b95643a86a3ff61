"""The README's first screen, run as a new user would: its two commands, word for word.

"Try it" runs in a fresh clone with a fresh HOME and, where the machine has it, Debian's own
`/usr/bin/python3` (which refuses `pip install` outside a venv, PEP 668). It must scaffold the
app, serve it with a working login at the development provider, leave a project that
`copier update` can find its template from, and whose own tests pass after the documented
install. "Test it" is what `.ci/run` runs.
"""

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import yaml

from tooling.rendering import REPO, snapshot_template

APP = "http://127.0.0.1:8000"
STARTUP_TIMEOUT = 600  # seconds: pip downloads copier and the app's dependencies first
# The environment a new user's shell would not have: the app's settings from this one.
DROPPED = ("AUTH0_", "AUTH_", "APP_", "SESSION_", "REDIS_", "DATABASE_", "VIRTUAL_ENV", "PYTHON")


def readme_command(title: str) -> str:
    """The one-line shell command in the code block after the README's `**title**`."""
    readme = (REPO / "README.md").read_text()
    first_screen = readme.split("\n---\n", 1)[0]
    found = re.search(rf"\*\*{re.escape(title)}\*\*.*?```sh\n(.+?)\n```", first_screen, re.S)
    assert found, f"the README's first screen has no {title!r} command"
    command = found.group(1)
    assert "\n" not in command, f"{title!r} must be one command"
    return command


def system_python_path() -> str:
    """PATH for the new user: Debian's python3 when it is the one a fresh machine has."""
    system = Path("/usr/bin/python3")
    if system.exists():
        version = subprocess.run(
            [system, "-c", "import sys; print(sys.version_info >= (3, 11))"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        if version.strip() == "True":
            return "/usr/bin:/bin"
    return f"{Path(sys.executable).parent}:/usr/bin:/bin"


def test_the_test_command_is_what_ci_runs() -> None:
    command = readme_command("Test it")

    assert command in (REPO / ".ci" / "run").read_text().splitlines()
    assert command.startswith("python3 -m venv .venv && ")  # never the caller's environment


@pytest.fixture
def try_it(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, Path]]:
    clone = snapshot_template(tmp_path / "clone")
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(DROPPED)}
    env.update(HOME=str(home), PATH=system_python_path())
    log = tmp_path / "try-it.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["bash", "-c", readme_command("Try it")],
            cwd=clone, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        yield process, tmp_path / "my-app", log
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_for_app(process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"'Try it' stopped ({process.returncode}):\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{APP}/", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(f"the app did not answer at {APP}:\n{log.read_text()[-4000:]}")


def log_in(username: str) -> dict[str, object]:
    """Log in at the development provider's form, as a browser would; the session's user."""
    with httpx.Client() as browser:
        authorize = browser.get(f"{APP}/auth/login").headers["location"]
        form = browser.get(authorize)
        assert form.status_code == 200 and 'name="username"' in form.text
        parts = urlsplit(authorize)
        signed_in = browser.post(
            f"{parts.scheme}://{parts.netloc}{parts.path}",
            data={**dict(parse_qsl(parts.query)), "username": username},
        )
        callback = browser.get(signed_in.headers["location"])
        assert callback.status_code == 303, callback.text
        profile = browser.get(f"{APP}/auth/profile")
        assert profile.status_code == 200, profile.text
        user: dict[str, object] = profile.json()
        return user


def test_try_it_serves_the_app_with_a_working_login(
    try_it: tuple[subprocess.Popen[bytes], Path, Path],
) -> None:
    process, project, log = try_it
    wait_for_app(process, log)

    assert log_in("newcomer")["sub"] == "newcomer"
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert Path(answers["_src_path"]).is_absolute()  # so `copier update` can find it later
    venv = project / ".venv" / "bin"
    check = subprocess.run(
        [venv / "copier", "check-update"], cwd=project, capture_output=True, text=True, check=False
    )
    assert "Traceback" not in check.stderr, check.stderr
    # The project's README "Test" commands, word for word, in the venv "Try it" made (the
    # one its "Run it locally" makes): the documented install is enough for its checks.
    commands = generated_readme_commands(project, "Test")
    assert "pytest" in commands, commands
    for command in commands:
        done = subprocess.run(
            ["bash", "-c", f". .venv/bin/activate && {command}"],
            cwd=project, capture_output=True, text=True, check=False, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, f"{command}\n{done.stdout[-4000:]}{done.stderr[-2000:]}"


def generated_readme_commands(project: Path, section: str) -> list[str]:
    """The shell lines of the first code block under `## section` of a project's README."""
    readme = (project / "README.md").read_text()
    found = re.search(rf"^## {re.escape(section)}\n.*?```sh\n(.+?)\n```", readme, re.S | re.M)
    assert found, f"the generated README has no {section!r} commands"
    lines = [line.split("  #")[0].strip() for line in found.group(1).splitlines()]
    return [line for line in lines if line]


def test_try_it_stops_before_generating_anything_on_an_old_python(tmp_path: Path) -> None:
    """A python3 that says it is 3.10 (its `sys.version_info` patched at start-up)."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text("import sys\nsys.version_info = (3, 10, 12)\n")
    real = Path("/usr/bin/python3") if "/usr/bin" in system_python_path() else Path(sys.executable)
    (shim / "python3").write_text(f'#!/bin/sh\nPYTHONPATH={shim} exec {real} "$@"\n')
    (shim / "python3").chmod(0o755)
    clone = tmp_path / "clone"
    clone.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(DROPPED)}
    env.update(HOME=str(tmp_path), PATH=f"{shim}:/usr/bin:/bin")

    result = subprocess.run(
        ["bash", "-c", readme_command("Try it")],
        cwd=clone, env=env, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip

    assert result.returncode != 0
    assert "Python 3.11 or newer is needed" in result.stderr
    assert not (tmp_path / "my-app").exists()
