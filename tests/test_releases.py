"""`hooks/release_tags.py` makes the release tags from the CHANGELOG, in a clone that has none."""

import subprocess
import sys
from pathlib import Path

import pytest

from tooling.rendering import REPO

SCRIPT = REPO / "hooks" / "release_tags.py"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def release_tags(repo: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, SCRIPT, "--repo", str(repo), *options],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


@pytest.fixture
def clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Test")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "test@example.com")
    repo = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--no-tags", str(REPO), str(repo)], check=True)
    for tag in git(repo, "tag").split():
        git(repo, "tag", "-d", tag)
    return repo


def test_the_first_release_is_tagged_at_the_commit_that_named_it(clone: Path) -> None:
    result = release_tags(clone)

    assert result.returncode == 0, result.stdout + result.stderr
    tagged = git(clone, "rev-list", "-n", "1", "v0.1.0")
    shown = git(clone, "show", f"{tagged}:CHANGELOG.md")
    before = subprocess.run(  # the CHANGELOG before that commit, if there was one
        ["git", "show", f"{tagged}~1:CHANGELOG.md"], cwd=clone, capture_output=True, text=True
    ).stdout
    assert "\n## v0.1.0 " in shown and "\n## v0.1.0 " not in before


def test_a_new_release_heading_tags_its_commit_and_reruns_change_nothing(clone: Path) -> None:
    changelog = clone / "CHANGELOG.md"
    changelog.write_text(changelog.read_text().replace("## Unreleased", "## v9.8.7 (test)", 1))
    git(clone, "commit", "-qam", "Release v9.8.7")
    release = git(clone, "rev-parse", "HEAD")
    git(clone, "commit", "-q", "--allow-empty", "-m", "After the release")

    assert release_tags(clone, "--check").stdout.count("would tag") == 2
    assert git(clone, "tag") == ""
    assert release_tags(clone).returncode == 0
    assert git(clone, "rev-list", "-n", "1", "v9.8.7") == release
    again = release_tags(clone)
    assert again.returncode == 0 and "tagged" not in again.stdout

    git(clone, "tag", "-f", "v9.8.7", "HEAD")  # a tag moved by hand
    moved = release_tags(clone)
    assert moved.returncode == 1 and "v9.8.7: already tags" in moved.stdout
