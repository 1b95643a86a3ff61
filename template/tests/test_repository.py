"""The working tree is clean of merge leftovers (e.g. after `copier update`)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIPPED = {".git", ".venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache"}
MARKER = re.compile(r"^(<{7}|={7}|>{7})( |$)", re.MULTILINE)


def project_files() -> list[Path]:
    return [
        path
        for path in ROOT.rglob("*")
        if path.is_file() and not SKIPPED.intersection(path.relative_to(ROOT).parts)
    ]


def test_no_conflict_markers_are_left() -> None:
    offenders = []
    for path in project_files():
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        if MARKER.search(text):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == [], "resolve the conflicts in these files"


def test_no_rejected_hunks_are_left() -> None:
    rejected = [str(p.relative_to(ROOT)) for p in project_files() if p.suffix == ".rej"]
    assert rejected == [], "apply or drop these .rej hunks, then delete the files"
