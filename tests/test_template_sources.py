"""The template's sources read as a Python project: plain names, no Jinja in code, clean lint."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tooling.rendering import Project, render

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "template"
# The one module per package that the template writes from the answers.
SWITCH_MODULES = {"app/variant.py.jinja", "app/auth/variant.py.jinja", "devserver/variant.py.jinja"}


STORES = ("cookie", "redis", "sql")
# Every optional feature at once (the two account linking modes share /auth/connect, so
# the switch module mounts one; the other's modules are checked all the same).
ALL_FEATURES: dict[str, object] = {
    "account_linking": "connected_accounts",
    "access_token_route": True,
}


def template_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "template"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    return [REPO / name for name in listed if (REPO / name).is_file()]


def test_no_template_path_holds_jinja_conditions() -> None:
    assert [p for p in template_files() if "{%" in str(p.relative_to(TEMPLATE))] == []


def test_python_sources_hold_no_jinja_except_the_switch_modules() -> None:
    python = [p for p in template_files() if p.name.endswith((".py", ".py.jinja"))]
    rendered = {str(p.relative_to(TEMPLATE)) for p in python if p.name.endswith(".jinja")}
    with_tags = [p for p in python if p.suffix == ".py" and "{%" in p.read_text()]

    assert rendered == SWITCH_MODULES
    assert with_tags == []


def ruff() -> str:
    found = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(found).exists():
        pytest.fail("ruff is not installed: pip install -r tests/requirements.txt")
    return found


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_the_template_sources_pass_ruff_in_place(command: list[str]) -> None:
    result = subprocess.run(
        [ruff(), *command, "template"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def not_generated_with(store: str) -> set[str]:
    """The template's files a project with this session store does not get (`copier.yml`)."""
    excludes = (REPO / "copier.yml").read_text()
    found = re.findall(r"session_store (==|!=) '(\w+)' %\}([^{]+)\{%", excludes)
    return {path for op, chosen, path in found if (chosen == store) == (op == "==")}


def test_the_template_sources_pass_mypy_strict_in_place(
    tmp_path: Path, checking_environment: Project
) -> None:
    """mypy --strict over template/'s own files: all of them at once (every store's modules,
    every feature), with the switch modules written for each store in turn: each file is
    checked in at least one turn. Errors name the files under template/ (the paths are the
    same)."""
    tree = tmp_path / "template"
    for source in template_files():
        name = str(source.relative_to(TEMPLATE))
        if not name.endswith(".jinja") and name != "ruff.toml":
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, tree / name)
    failures = []
    for store in STORES:
        rendered = render(tmp_path / f"switch-{store}", session_store=store, **ALL_FEATURES)
        for switch in (*sorted(SWITCH_MODULES), "pyproject.toml.jinja"):
            name = switch.removesuffix(".jinja")
            shutil.copy2(rendered / name, tree / name)
        # The other stores' modules and tests read their settings from `Settings`, which
        # has this store's: each is checked in its own store's turn.
        others = sorted(not_generated_with(store))
        excluded = [arg for name in others for arg in ("--exclude", f"^{re.escape(name)}$")]
        result = subprocess.run(
            [checking_environment.bin("mypy"), "--strict",
             "--cache-dir", str(tmp_path / f"mypy-cache-{store}"),
             *excluded, "app", "devserver", "tests"],
            cwd=tree, capture_output=True, text=True,
        )  # fmt: skip
        if result.returncode != 0:
            failures.append(f"with session_store={store}:\n{result.stdout}{result.stderr}")
    assert failures == [], "\n".join(failures)
