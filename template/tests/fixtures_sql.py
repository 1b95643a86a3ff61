"""Test fixtures of the SQL store: DATABASE_URL, or a SQLite file of each test's own."""

import os
from pathlib import Path
from typing import Any

import pytest

from app.auth.stores.sql_cache import TRUST_WINDOW

STORE_SETTINGS: dict[str, Any] = {}  # filled per test by the `store` fixture
# Seconds until a change on one app instance holds on the others (their caches poll).
ELSEWHERE_WITHIN = TRUST_WINDOW


@pytest.fixture(autouse=True)
def store(tmp_path: Path) -> None:
    """DATABASE_URL when set (e.g. PostgreSQL), otherwise a fresh SQLite file per test."""
    STORE_SETTINGS["database_url"] = os.environ.get(
        "DATABASE_URL", f"sqlite:///{tmp_path / 'sessions.db'}"
    )


@pytest.fixture
def unreachable_store() -> dict[str, Any]:
    return {"database_url": "postgresql://nobody@127.0.0.1:9/none", "database_timeout": 0.5}
