"""The working tree is clean of merge leftovers (e.g. after `copier update`).

Only the project's own files are looked at: in a git repository, those git tracks or
would track (not ignored); otherwise every file outside virtual environments and caches.
"""

import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIPPED = {".git", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
MARKER = re.compile(r"^(<{7}|={7}|>{7})( |$)", re.MULTILINE)


def project_files() -> list[Path]:
    git = shutil.which("git")
    if git is not None and (ROOT / ".git").exists():
        listed = subprocess.run(
            [git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
        return [ROOT / name for name in listed.split("\0") if name and (ROOT / name).is_file()]
    venvs = {path.parent for path in ROOT.glob("*/pyvenv.cfg")}  # .venv/, venv/, env/, ...
    return [
        path
        for path in ROOT.rglob("*")
        if path.is_file()
        and not SKIPPED.intersection(path.relative_to(ROOT).parts)
        and not any(venv in path.parents for venv in venvs)
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
