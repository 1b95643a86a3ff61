"""Every combination of answers renders a project that passes ruff and `mypy --strict`.

The answer sets of `variants.py` are also installed and run their own tests
(`test_template.py`); this covers the combinations in between (a store with an account
linking mode and the token route, say), which share one environment for speed.
"""

import itertools
import shutil
import subprocess
from pathlib import Path

from tooling.rendering import Project, render

STORES = ("cookie", "redis", "sql")
LINKING = ("none", "connect", "connected_accounts")


def test_every_answer_combination_passes_ruff_and_mypy(
    tmp_path: Path, checking_environment: Project
) -> None:
    failures = []
    project = tmp_path / "project"  # one path for all, so mypy's cache carries over
    combinations = itertools.product(STORES, LINKING, (False, True))
    for number, (store, linking, token_route) in enumerate(combinations):
        answers = {
            "session_store": store,
            "account_linking": linking,
            "access_token_route": token_route,
            "ci": ("github", "none")[number % 2],
        }
        shutil.rmtree(project, ignore_errors=True)
        render(project, **answers)
        for command in (
            ["ruff", "check", "--no-cache", "."],
            ["ruff", "format", "--no-cache", "--check", "."],
            ["mypy", "--cache-dir", str(tmp_path / "mypy-cache")],
        ):
            result = subprocess.run(
                [checking_environment.bin(command[0]), *command[1:]],
                cwd=project, capture_output=True, text=True,
            )  # fmt: skip
            if result.returncode != 0:
                failures.append(f"{' '.join(command)} with {answers}:\n{result.stdout}")
    assert failures == [], "\n".join(failures)
