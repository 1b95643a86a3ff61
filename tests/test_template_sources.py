"""The template's sources read as a Python project: plain names, no Jinja in code, clean lint."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "template"
# The one module per package that the template writes from the answers.
SWITCH_MODULES = {"app/variant.py.jinja", "app/auth/variant.py.jinja", "devserver/variant.py.jinja"}


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
