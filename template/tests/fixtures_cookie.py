"""Test fixtures of the cookie store: logout records in a SQLite file, or in REDIS_URL."""

import asyncio
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from app.auth.stores.logouts_sqlite import SqliteLogoutRecords
from tests.redis_tools import redis_prefix

STORE_SETTINGS: dict[str, Any] = {}  # filled per test by the `store` fixture
ELSEWHERE_WITHIN = 0.0  # seconds until a change on one app instance holds on the others


@pytest.fixture(autouse=True)
def store(tmp_path: Path) -> Iterator[None]:
    """Logout records in a SQLite file of this test's own, or in REDIS_URL when it is set.

    The records are started long ago (sessions created before the records started count
    as ended), so that tests may install sessions created in the past.
    """
    STORE_SETTINGS.clear()
    path = STORE_SETTINGS["logout_records_path"] = str(tmp_path / "logout-records.db")
    url = os.environ.get("REDIS_URL")
    if not url:
        records = SqliteLogoutRecords(path)
        asyncio.run(records.open())
        asyncio.run(records.aclose())
        with closing(sqlite3.connect(path)) as db, db:
            db.execute("UPDATE logout_records SET ended_at = 0 WHERE kind = 'store'")
        yield
        return
    with redis_prefix(url) as prefix, Redis.from_url(url) as redis:
        redis.set(f"{prefix}logout:store:started", 0)
        STORE_SETTINGS.update(redis_url=url, redis_key_prefix=prefix)
        yield


@pytest.fixture
def unreachable_store(tmp_path: Path) -> dict[str, Any]:
    """Settings whose logout records cannot be reached (Redis) or opened (SQLite)."""
    if os.environ.get("REDIS_URL"):
        return {"redis_url": "redis://127.0.0.1:9/0", "redis_timeout": 0.5}
    return {"logout_records_path": str(tmp_path / "missing-directory" / "records.db")}
