"""`copier update` keeps users' edits and brings in template changes (each test in its own
throwaway git repositories, with an isolated git configuration)."""

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tooling.rendering import REPO, Project, generated_files, render, snapshot_template, uv

V1, V2 = "v1.0.0", "v2.0.0"


@pytest.fixture(autouse=True)
def isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Test")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "test@example.com")


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


@dataclass(frozen=True)
class Template:
    """A throwaway copy of the template whose commits are tagged as releases."""

    path: Path

    def edit(self, name: str, old: str, new: str) -> None:
        edit(self.path / "template" / name, old, new)

    def release(self, tag: str) -> None:
        git(self.path, "add", "-A")
        git(self.path, "commit", "-qm", f"Release {tag}", "--allow-empty")
        git(self.path, "tag", tag)


@pytest.fixture
def template(tmp_path: Path) -> Iterator[Template]:
    releases = Template(snapshot_template(tmp_path / "template"))
    git(releases.path, "tag", V1)
    yield releases


def generate(template: Template, destination: Path, **answers: object) -> Path:
    """`copier copy` of v1, committed as the user's first commit."""
    project = render(destination, template=template.path, vcs_ref=V1, **answers)
    git(project, "init", "-q")
    commit(project, "Generated")
    return project


def commit(project: Path, message: str) -> None:
    git(project, "add", "-A")
    git(project, "commit", "-qm", message)


def update(project: Path, *options: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "copier", "update", "--defaults", "--trust", *options],
        cwd=project, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result


def unmerged(project: Path) -> list[str]:
    return git(project, "diff", "--name-only", "--diff-filter=U").split()


def assert_same_files(project: Path, fresh: Path) -> None:
    names = {str(p.relative_to(project)) for p in generated_files(project)} - {".git"}
    names = {name for name in names if not name.startswith(".git/")}
    assert names == {str(p.relative_to(fresh)) for p in generated_files(fresh)}
    # uv.lock is the project's after the first copy (copier.yml `_skip_if_exists`).
    for name in names - {".copier-answers.yml", "uv.lock"}:
        assert (project / name).read_bytes() == (fresh / name).read_bytes(), name


SECURITY_FIX = ("CLOCK_LEEWAY = 60", "CLOCK_LEEWAY = 30")


def release_v2(template: Template) -> None:
    """A typical template release: a fix inside the protocol code and a new file."""
    template.edit("app/auth/tokens.py", *SECURITY_FIX)
    (template.path / "template" / "SECURITY.md").write_text("Report issues privately.\n")
    template.release(V2)


def test_typical_user_edits_survive_a_template_fix(
    template: Template, tmp_path: Path, default_project: Project
) -> None:
    project = generate(template, tmp_path / "project")
    policy = project / "app/auth/policy.py"
    edit(policy, '    "org_id",\n', '    "org_id",\n    "org_name",\n')  # a claim kept
    edit(
        policy,
        "    return return_to\n",
        '    if "admin" in session.user.get("roles", []):\n        return "/admin"\n'
        "    return return_to\n",
    )  # where to go after login
    edit(policy, "    return True\n", '    return user.get("blocked") is not True\n')  # a rule
    edit(project / "app/templates/base.html", "color: #1f2328;", "color: #222;")  # restyle
    commit(project, "Our changes")
    release_v2(template)

    update(project, f"--vcs-ref={V2}")

    assert unmerged(project) == []
    policy_text = policy.read_text()
    assert '"org_name"' in policy_text and '"/admin"' in policy_text and '"blocked"' in policy_text
    assert "color: #222;" in (project / "app/templates/base.html").read_text()
    assert SECURITY_FIX[1] in (project / "app/auth/tokens.py").read_text()
    assert (project / "SECURITY.md").exists()
    tests = default_project.run(default_project.python, "-m", "pytest", "-q", "-p",
                                "no:cacheprovider", "-x", cwd=project)  # fmt: skip
    assert " passed" in tests.stdout


@pytest.mark.parametrize("mode", ["inline", "rej"])
def test_an_edit_on_the_same_lines_is_a_visible_conflict(
    template: Template, tmp_path: Path, mode: str, default_project: Project
) -> None:
    project = generate(template, tmp_path / "project")
    edit(project / "app/auth/tokens.py", "CLOCK_LEEWAY = 60", "CLOCK_LEEWAY = 120")
    commit(project, "Our leeway")
    release_v2(template)

    update(project, f"--vcs-ref={V2}", f"--conflict={mode}")

    tokens = (project / "app/auth/tokens.py").read_text()
    if mode == "inline":
        assert "<<<<<<< before updating" in tokens and ">>>>>>> after updating" in tokens
        assert unmerged(project) == ["app/auth/tokens.py"]
    else:
        assert (project / "app/auth/tokens.py.rej").exists()
    # The generated project's own checks refuse to let this be committed as is.
    hygiene = default_project.run(default_project.python, "-m", "pytest", "-q", "-p",
                                  "no:cacheprovider", "--noconftest", "tests/test_repository.py",
                                  cwd=project, check=False)  # fmt: skip
    assert hygiene.returncode == 1
    assert "1 failed, 1 passed" in hygiene.stdout


def test_a_deleted_file_stays_deleted(template: Template, tmp_path: Path) -> None:
    project = generate(template, tmp_path / "project")
    (project / "tests/test_return_to.py").unlink()
    commit(project, "We do not need this")
    release_v2(template)

    update(project, f"--vcs-ref={V2}")

    assert not (project / "tests/test_return_to.py").exists()
    assert unmerged(project) == []


def test_changing_an_answer_keeps_the_users_code(template: Template, tmp_path: Path) -> None:
    project = generate(template, tmp_path / "project")
    (project / "app/orders.py").write_text('"""Our orders."""\n')
    edit(project / "app/auth/policy.py", '    "org_id",\n', '    "org_id",\n    "org_name",\n')
    commit(project, "Our code")
    release_v2(template)

    update(project, f"--vcs-ref={V2}", "--data", "session_store=redis")

    assert (project / "app/orders.py").read_text() == '"""Our orders."""\n'
    assert '"org_name"' in (project / "app/auth/policy.py").read_text()
    stores = {p.name for p in (project / "app/auth/stores").glob("*.py")}
    assert stores == {
        "__init__.py", "base.py", "redis.py", "redis_cache.py", "redis_client.py", "server.py"
    }  # fmt: skip
    assert "session_store: redis" in (project / ".copier-answers.yml").read_text()
    assert unmerged(project) == []


def test_an_update_without_user_edits_equals_a_fresh_copy(
    template: Template, tmp_path: Path
) -> None:
    project = generate(template, tmp_path / "project", session_store="sql")
    release_v2(template)

    update(project, f"--vcs-ref={V2}")

    fresh = render(tmp_path / "fresh", template=template.path, vcs_ref=V2, session_store="sql")
    assert_same_files(project, fresh)
    assert f"_commit: {V2}" in (project / ".copier-answers.yml").read_text()


def latest_release(repo: Path = REPO) -> str:
    """The newest release: its tag or, in a clone without tags, the commit that added its
    heading to the CHANGELOG (what that release contains)."""
    tags = git(repo, "tag", "--list", "v*", "--sort=-v:refname").split()
    if tags:
        return tags[0]
    heading = re.search(r"^## (v\d+\.\d+\.\d+)", (repo / "CHANGELOG.md").read_text(), re.M)
    assert heading, "the CHANGELOG names no release"
    added = git(repo, "log", "--format=%H", "-S", heading.group(0), "--", "CHANGELOG.md").split()
    assert added, f"no commit added {heading.group(0)!r} (a shallow clone?)"
    return added[-1]


def template_history(destination: Path) -> Path:
    """A clone of this repository (its history, no tags) whose last commit is the working
    tree, uncommitted changes included."""
    git(REPO, "clone", "-q", "--no-tags", str(REPO), str(destination))
    for tag in git(destination, "tag").split():
        git(destination, "tag", "-d", tag)
    git(destination, "rm", "-rq", "--", ".")
    snapshot = snapshot_template(destination.with_name(f"{destination.name}-snapshot"))
    for path in snapshot.rglob("*"):
        if path.is_file() and ".git" not in path.relative_to(snapshot).parts:
            target = destination / path.relative_to(snapshot)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
            target.chmod(path.stat().st_mode)
    git(destination, "add", "-A")
    git(destination, "commit", "-qm", "The working tree", "--allow-empty")
    return destination


def keep_both(path: Path) -> None:
    """Resolves `path`'s conflicts as the README says for appends made on v0.1.0: the
    template's lines, then yours."""
    block = re.compile(
        r"^<<<<<<< before updating\n(.*?)^=======\n(.*?)^>>>>>>> after updating\n", re.S | re.M
    )
    gap = "\n\n" if path.suffix == ".py" else ""
    path.write_text(block.sub(lambda m: m.group(2) + gap + m.group(1), path.read_text()))


def test_the_latest_release_updates_to_this_version(tmp_path: Path) -> None:
    project = render(tmp_path / "project", vcs_ref=latest_release())
    git(project, "init", "-q")
    commit(project, "Generated")

    update(project, "--vcs-ref=HEAD")

    assert unmerged(project) == []
    assert_same_files(project, render(tmp_path / "fresh"))


def test_files_renamed_since_the_latest_release_keep_the_users_edits(tmp_path: Path) -> None:
    # Each edit: the file's old name, its new name, the lines the user changed.
    edits = [
        ("app/auth/setup.py", "app/auth/install.py",
         "    app.state.auth = auth\n",
         "    app.state.team = 'payments'\n    app.state.auth = auth\n"),
        ("app/auth/components.py", "app/auth/core.py",
         "absolute=settings.session_absolute_duration,",
         "absolute=min(settings.session_absolute_duration, 8 * 3600),"),
    ]  # fmt: skip
    project = render(tmp_path / "project", vcs_ref=latest_release())
    git(project, "init", "-q")
    commit(project, "Generated")
    for old, _, before, after in edits:
        edit(project / old, before, after)
    commit(project, "Our edits")

    refused = subprocess.run(
        [sys.executable, "-m", "copier", "update", "--defaults", "--vcs-ref=HEAD"],
        cwd=project, capture_output=True, text=True,
    )  # fmt: skip
    assert refused.returncode != 0 and "--trust" in refused.stderr + refused.stdout
    git(project, "checkout", "-q", "--", ".")
    update(project, "--vcs-ref=HEAD")

    fresh = render(tmp_path / "fresh")
    for old, new, before, after in edits:
        edit(fresh / new, before, after)
        assert (project / new).read_text() == (fresh / new).read_text()
        assert not (project / old).exists()
    assert unmerged(project) == []


def test_a_rename_migration_carries_the_users_edits(template: Template, tmp_path: Path) -> None:
    project = generate(template, tmp_path / "project")
    edit(
        project / "app/templating.py",
        'templates.env.filters["when"] = when\n',
        'templates.env.filters["when"] = when\n'
        'templates.env.globals["support_email"] = "help@example.com"\n',
    )
    commit(project, "Our template global")
    # v2 renames app/templating.py to app/rendering.py (and changes it), with a migration.
    source = template.path / "template/app"
    git(template.path, "mv", "template/app/templating.py", "template/app/rendering.py")
    edit(
        source / "rendering.py", '"""The Jinja2 environment', '"""The Jinja2 environment (renamed)'
    )
    for path in (template.path / "template").rglob("*.py"):
        if "app.templating" in path.read_text():
            edit(path, "from app.templating import", "from app.rendering import")
    edit(
        template.path / "copier.yml",
        "\n_migrations:\n",
        "\n_migrations:\n"
        f"  - version: {V2}\n"
        "    when: \"{{ _stage == 'after' }}\"\n"
        '    command: ["{{ _copier_python }}",'
        ' "{{ _copier_conf.src_path }}/hooks/rename_file.py",'
        " app/templating.py, app/rendering.py]\n",
    )
    template.release(V2)

    update(project, f"--vcs-ref={V2}")

    renamed = (project / "app/rendering.py").read_text()
    assert '"support_email"' in renamed  # the user's edit
    assert "(renamed)" in renamed  # the template's change
    assert not (project / "app/templating.py").exists()
    assert "from app.rendering import" in (project / "app/pages.py").read_text()
    assert unmerged(project) == []


ORDERS_ROUTER = '''"""Our orders pages."""

from fastapi import APIRouter

router = APIRouter(prefix="/orders")


@router.get("/count")
async def count() -> dict[str, int]:
    return {"orders": 3}
'''
OUR_PAGE = """

@router.get("/team")
async def team() -> dict[str, str]:
    return {"team": "payments"}
"""


def uv_run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [uv(), *args], cwd=project, capture_output=True, text=True, check=False, timeout=600,
        env={k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_a_teams_project_updates_installs_locked_and_passes_its_tests(
    template: Template, tmp_path: Path
) -> None:
    """A team's life on a release that has places of the team's own: its own router, page,
    setting and `uv add`ed dependency; then a template release that bumps a dependency and
    adds a setting. (From an untagged base: the real-release test below.)"""
    project = render(tmp_path / "project", template=template.path, vcs_ref=V1)
    git(project, "init", "-q")
    commit(project, "Generated")
    (project / "app/routers/orders.py").write_text(ORDERS_ROUTER)
    with (project / "app/pages.py").open("a") as pages:
        pages.write(OUR_PAGE)
    with (project / ".env.example").open("a") as example:
        example.write("ORDERS_API_URL=https://orders.example.com\n")
    uv_run(project, "add", "--no-sync", "six>=1.16")
    commit(project, "Our orders, our page, our setting, our dependency")
    # The release: a dependency's minimum goes up, a new setting, a protocol fix.
    template.edit("pyproject.toml.jinja", '"httpx>=0.28"', '"httpx>=0.28.1"')
    template.edit(
        ".env.example.jinja",
        "# SESSION_ABSOLUTE_DURATION=604800\n",
        "# SESSION_ABSOLUTE_DURATION=604800\n# SESSION_REMEMBER_ME=false\n",
    )
    template.edit("app/auth/tokens.py", *SECURITY_FIX)
    template.release(V2)

    update(project, f"--vcs-ref={V2}")

    assert unmerged(project) == []
    assert SECURITY_FIX[1] in (project / "app/auth/tokens.py").read_text()
    assert (project / "app/routers/orders.py").read_text() == ORDERS_ROUTER
    assert (project / "app/pages.py").read_text().endswith(OUR_PAGE)
    example = (project / ".env.example").read_text()
    assert "# SESSION_REMEMBER_ME=false" in example and "ORDERS_API_URL=" in example
    pyproject = (project / "pyproject.toml").read_text()
    assert '"httpx>=0.28.1"' in pyproject and '"six>=1.16"' in pyproject
    assert "<<<<<<<" not in (project / "uv.lock").read_text()
    # What the after-update message says to run.
    uv_run(project, "lock")
    uv_run(project, "sync", "--locked")
    tests = uv_run(project, "run", "--locked", "pytest", "-q", "-p", "no:cacheprovider")
    assert " passed" in tests.stdout and "failed" not in tests.stdout
    served = uv_run(project, "run", "--locked", "python", "-c", PROBE)
    assert served.stdout.split() == ["3", "payments"]


PROBE = """
import os
from fastapi.testclient import TestClient
os.environ.update(AUTH0_DOMAIN="https://provider.test", AUTH0_CLIENT_ID="c",
    AUTH0_CLIENT_SECRET="s", APP_BASE_URL="http://127.0.0.1:8000",
    SESSION_SECRET="Vt7Qm2Lx9Rk4Pz8Wn3Hj6Bc1Fd5Gs0Ya-probe", AUTH_STARTUP_CHECK="false")
from app.main import app
client = TestClient(app)
print(client.get("/orders/count").json()["orders"], client.get("/team").json()["team"])
"""


def test_turning_an_option_off_says_first_that_its_files_go(
    template: Template, tmp_path: Path
) -> None:
    project = generate(template, tmp_path / "project", access_token_route=True)
    route = project / "app/auth/token_route.py"
    route.write_text(route.read_text() + "\n# our audit hook\n")
    commit(project, "Our edit of the token route")

    result = update(project, f"--vcs-ref={V1}", "--data", "access_token_route=false")

    said = " ".join((result.stdout + result.stderr).split())
    assert "deletes the files that option generated, edited or not" in said
    assert not route.exists()
    assert "app/auth/token_route.py" in git(project, "status", "--porcelain")  # git keeps it
    git(project, "checkout", "--", "app/auth/token_route.py")
    assert "# our audit hook" in route.read_text()


TEAM_TEST = """from fastapi.testclient import TestClient

from app.main import create_app
from devserver.provider import FakeProvider
from tests.conftest import make_settings


def test_our_team_page(provider: FakeProvider) -> None:
    app = create_app(make_settings(provider), provider_transport=provider.transport)
    with TestClient(app) as client:
        assert client.get("/team").json() == {"team": "payments"}
"""


def team_project_from(template: Path, base: str, destination: Path) -> Path:
    """A project made from `base`, with a team's appended route, setting and test and a
    `uv add`, updated to this version of `template`."""
    project = render(destination, template=template, vcs_ref=base)
    git(project, "init", "-q")
    commit(project, "Generated")
    with (project / "app/pages.py").open("a") as pages:
        pages.write(OUR_PAGE)
    with (project / ".env.example").open("a") as example:
        example.write("ORDERS_API_URL=https://orders.example.com\n")
    (project / "tests/test_team.py").write_text(TEAM_TEST)
    uv_run(project, "add", "--no-sync", "six>=1.16")
    commit(project, "Our page, our setting, our test, our dependency")

    update(project, "--vcs-ref=HEAD")
    return project


def test_a_team_on_the_latest_release_updates_to_this_version(tmp_path: Path) -> None:
    """The real thing: from the newest release, tagged by `hooks/release_tags.py` or the
    bare commit of a clone without tags, to this version by the README's steps."""
    history = template_history(tmp_path / "template")
    untagged = latest_release(history)
    tags = subprocess.run(
        [sys.executable, REPO / "hooks/release_tags.py", "--repo", history],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "v0.1.0: tagged" in tags.stdout
    tagged = latest_release(history)
    assert tagged.startswith("v") and git(history, "rev-parse", tagged).strip() == untagged

    project = team_project_from(history, tagged, tmp_path / "tagged")
    from_commit = team_project_from(history, untagged, tmp_path / "untagged")

    # v0.1.0 had no place of the user's own: appends at the end of these two files meet
    # the template's once (README, "Updating your app"); keeping both sides resolves them.
    for updated in (project, from_commit):
        assert sorted(unmerged(updated)) == [".env.example", "app/pages.py"]
        for name in unmerged(updated):
            keep_both(updated / name)
        git(updated, "add", "-A")
    for name in generated_files(project):
        relative = name.relative_to(project)
        if relative.parts[0] != ".git" and relative.name != ".copier-answers.yml":
            assert name.read_bytes() == (from_commit / relative).read_bytes(), relative
    for name in ("app/pages.py", ".env.example"):
        assert not re.search("^(<<<<<<<|=======|>>>>>>>)", (project / name).read_text(), re.M)
    example = (project / ".env.example").read_text()
    assert example.index("# ---- Your settings") < example.index("ORDERS_API_URL=")
    assert (project / "app/pages.py").read_text().endswith(OUR_PAGE)
    assert (project / "tests/test_team.py").read_text() == TEAM_TEST
    assert '"six>=1.16"' in (project / "pyproject.toml").read_text()
    assert (project / "app/auth/core.py").exists()  # the rename migrations ran
    assert not (project / "app/auth/components.py").exists()
    uv_run(project, "lock")
    uv_run(project, "sync", "--locked")
    tests = uv_run(project, "run", "--locked", "pytest", "-q", "-p", "no:cacheprovider")
    assert " passed" in tests.stdout and "failed" not in tests.stdout
    team = ["pytest", "-q", "-p", "no:cacheprovider", "tests/test_team.py"]
    assert "1 passed" in uv_run(project, "run", "--locked", *team).stdout
