"""Create the `vX.Y.Z` release tags from the CHANGELOG (maintainers; and anyone whose clone has
no tags, since tags do not travel with every copy of a repository):

    python3 hooks/release_tags.py            # tag every release the CHANGELOG names
    python3 hooks/release_tags.py --check    # only say what would be tagged

A release is the commit that put its heading (`## v0.2.0 ...`) into CHANGELOG.md: releasing is
renaming `## Unreleased` to `## vX.Y.Z (...)` in a commit of its own (see CONTRIBUTING.md). Tags
that exist already are left alone when they point at that commit; one that points elsewhere is
an error, never moved.
"""

import argparse
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEADING = re.compile(r"^## (v\d+\.\d+\.\d+)\b.*$", re.MULTILINE)


def git(*args: str, repo: Path = REPO) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def releases(repo: Path = REPO) -> dict[str, str]:
    """Release tag -> the commit that added its CHANGELOG heading, oldest release first."""
    found: dict[str, str] = {}
    for heading in reversed(list(HEADING.finditer((repo / "CHANGELOG.md").read_text()))):
        # Commits that changed how often the heading occurs: the oldest one added it.
        line = heading.group(0)
        commits = git("log", "--format=%H", "-S", line, "--", "CHANGELOG.md", repo=repo).split()
        if not commits:
            raise SystemExit(f"no commit adds {line!r} (a shallow clone? fetch the history)")
        found[heading.group(1)] = commits[-1]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only say what would be tagged")
    parser.add_argument("--repo", type=Path, default=REPO, help=argparse.SUPPRESS)
    args = parser.parse_args()
    problems = 0
    for tag, commit in releases(args.repo).items():
        existing = git("tag", "--list", tag, repo=args.repo)
        if existing:
            tagged = git("rev-list", "-n", "1", tag, repo=args.repo)
            if tagged != commit:
                print(f"{tag}: already tags {tagged[:12]}, the CHANGELOG says {commit[:12]}")
                problems += 1
            continue
        if args.check:
            print(f"{tag}: would tag {commit[:12]}")
            continue
        git("tag", tag, commit, repo=args.repo)
        print(f"{tag}: tagged {commit[:12]}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
