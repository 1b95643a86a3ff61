"""The mutation-testing command (tests/mutation/) works, and a fixed sample is all killed."""

import ast
import json
import subprocess
import sys
from pathlib import Path

from mutation.mutants import mutants_of

from tooling.rendering import REPO, Project

RUN = REPO / "tests" / "mutation" / "run.py"


def auth_modules(project: Project) -> dict[str, str]:
    return {
        str(path.relative_to(project.path)): path.read_text()
        for path in sorted((project.path / "app" / "auth").rglob("*.py"))
    }


def test_every_mutant_is_valid_python_that_differs(default_project: Project) -> None:
    total = 0
    for module, source in auth_modules(default_project).items():
        original = ast.dump(ast.parse(source))
        mutants = mutants_of(module, source)
        total += len(mutants)
        assert len({m.id for m in mutants}) == len(mutants), module
        for mutant in mutants:
            assert ast.dump(ast.parse(mutant.apply(source))) != original, mutant.describe()
    assert total > 1000


def test_mutant_ids_do_not_depend_on_line_numbers(default_project: Project) -> None:
    source = auth_modules(default_project)["app/auth/tokens.py"]
    moved = source.replace('"""\n\nimport', '"""\n\n# a comment\n# and another\n\nimport', 1)
    assert moved != source

    before = {m.id: m.line for m in mutants_of("app/auth/tokens.py", source)}
    after = {m.id: m.line for m in mutants_of("app/auth/tokens.py", moved)}
    assert before.keys() == after.keys()
    assert all(after[key] == line + 3 for key, line in before.items())


def test_docstrings_annotations_and_prose_are_left_alone() -> None:
    source = '''"""Module docstring."""
LIMIT: int = 3


def check(value: str | None) -> bool:
    """Function docstring."""
    if value is None:
        raise ValueError("The value is missing.")
    return value == "yes"
'''
    changes = {(m.kind, m.original, m.replacement) for m in mutants_of("m.py", source)}

    assert ("constant", "3", "4") in changes
    assert ("flip comparison", "value is None", "value is not None") in changes
    assert ("flip comparison", "value == 'yes'", "value != 'yes'") in changes
    assert ("constant", "'yes'", "'XXyesXX'") in changes
    assert ("drop raise", 'raise ValueError("The value is missing.")', "pass") in changes
    texts = " ".join(f"{original} {replacement}" for _, original, replacement in changes)
    assert "docstring" not in texts and "XXThe value" not in texts
    assert "str | None" not in texts


def test_a_fixed_sample_of_url_mutants_is_all_killed(
    default_project: Project, tmp_path: Path
) -> None:
    report = tmp_path / "report.md"
    subprocess.run(
        [sys.executable, str(RUN), "--project", str(default_project.path), "--modules",
         "urls.py", "--no-redis", "--sample", "6", "--seed", "14", "--jobs", "2",
         "--report", str(report)],
        check=True, capture_output=True, text=True, timeout=600,
    )  # fmt: skip

    results = json.loads(report.with_suffix(".json").read_text())["results"]
    assert len(results) == 6
    assert {r["outcome"] for r in results} <= {"killed", "timeout", "survived"}
    text = report.read_text()
    assert "## Survivors (0)" in text, text
