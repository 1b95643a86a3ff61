"""Regenerate `template/uv.lock.jinja`: the lock file generated projects start with.

Run after changing the generated project's dependencies (`template/pyproject.toml.jinja`):

    python hooks/update_locks.py

Dependencies differ only between the SQL store and the others, so the template holds
two locks (resolved by `uv lock` for a project named PLACEHOLDER) and picks one by the
`session_store` answer; the project's own name is filled in at render time. The
template tests run `uv lock --check` on every rendered variant, so a stale lock fails.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLACEHOLDER = "zz-lock-placeholder-zz"
TARGET = REPO / "template" / "uv.lock.jinja"


def lock_for(store: str, scratch: Path) -> str:
    sys.path.insert(0, str(REPO))
    from tooling.rendering import render

    project = render(scratch / store, project_name="Lock", project_slug=PLACEHOLDER,
                     session_store=store)  # fmt: skip
    (project / "uv.lock").unlink(missing_ok=True)
    subprocess.run(["uv", "lock", "--quiet"], cwd=project, check=True)
    return (project / "uv.lock").read_text()


def as_template(lock: str) -> str:
    """The lock as Jinja text: verbatim, except the project's name."""
    parts = lock.split(f'"{PLACEHOLDER}"')
    return '"{{ project_slug }}"'.join("{% raw %}" + part + "{% endraw %}" for part in parts)


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        sql, other = lock_for("sql", Path(scratch)), lock_for("cookie", Path(scratch))
    TARGET.write_text(
        '{% if session_store == "sql" %}'
        + as_template(sql)
        + "{% else %}"
        + as_template(other)
        + "{% endif %}"
    )
    print(f"wrote {TARGET.relative_to(REPO)}")


if __name__ == "__main__":
    main()
