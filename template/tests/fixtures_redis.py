"""Test fixtures of the Redis store: REDIS_URL, under a key prefix of each test's own."""

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.redis_tools import redis_prefix

STORE_SETTINGS: dict[str, Any] = {}  # filled per test by the `store` fixture
ELSEWHERE_WITHIN = 0.0  # seconds until a change on one app instance holds on the others


@pytest.fixture(autouse=True)
def store() -> Iterator[None]:
    """Point the app at REDIS_URL, under a key prefix of this test's own."""
    url = os.environ.get("REDIS_URL")
    if not url:
        message = "Set REDIS_URL (e.g. redis://127.0.0.1:6379/15) to run the tests against Redis."
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with redis_prefix(url) as prefix:
        STORE_SETTINGS.update(redis_url=url, redis_key_prefix=prefix)
        yield


@pytest.fixture
def unreachable_store() -> dict[str, Any]:
    return {"redis_url": "redis://127.0.0.1:9/0", "redis_timeout": 0.5}
