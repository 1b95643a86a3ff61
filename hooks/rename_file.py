"""Copier migration: carry a user's edits of a generated file over to its new name.

Copier does not follow renames: updating across a release that renamed OLD to NEW
would delete the user's edited OLD and write NEW from the template. A release that
renames a file therefore runs, after the update,

    python hooks/rename_file.py OLD NEW

which merges three versions of the file into NEW, exactly like a `git merge`:

    base    OLD as the previous template version generated it (rendered again here)
    ours    OLD as the user last committed it
    theirs  NEW as the new template version generates it

Lines both sides changed get conflict markers. Migrations run code from the
template, so such an update needs `copier update --trust` (see README).
"""

import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from copier import run_copy


def committed(path: str) -> str | None:
    """The file as the user last committed it, or None if it was not committed."""
    shown = subprocess.run(["git", "show", f"HEAD:{path}"], capture_output=True, text=True)
    return shown.stdout if shown.returncode == 0 else None


def main(old: str, new: str) -> int:
    ours = committed(old)
    if ours is None or not Path(new).exists():
        return 0  # nothing of the user's to carry over
    answers = yaml.safe_load(committed(".copier-answers.yml") or "{}")
    with tempfile.TemporaryDirectory() as scratch:
        previous = Path(scratch, "previous")
        run_copy(
            answers["_src_path"],
            previous,
            vcs_ref=answers["_commit"],
            data={k: v for k, v in answers.items() if not k.startswith("_")},
            defaults=True,
            quiet=True,
        )
        base = previous / old
        files = {"ours": ours, "base": base.read_text() if base.exists() else "", "theirs": None}
        paths = {}
        for name, text in files.items():
            paths[name] = Path(scratch, name)
            paths[name].write_text(text if text is not None else Path(new).read_text())
        merge = subprocess.run(
            ["git", "merge-file", "-L", "your edits", "-L", "previous template",
             "-L", "new template", str(paths["ours"]), str(paths["base"]), str(paths["theirs"])],
        )  # fmt: skip
        Path(new).write_text(paths["ours"].read_text())
    Path(old).unlink(missing_ok=True)
    if merge.returncode > 0:
        print(f"{new}: {merge.returncode} conflict(s) to resolve (your edits of {old})")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
