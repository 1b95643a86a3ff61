"""Session fixtures: rendered projects (once per answer set) and the real data stores."""

from collections.abc import Iterator

import pytest
from components import PostgresServer, RedisServer
from rendering import Project, installed_project

DEFAULT_ANSWERS: dict[str, object] = {}
STORES = ("cookie", "redis", "sql")
# Answer sets rendered, linted, type-checked and tested: each store, plus the optional routes
# and each account linking mode.
VARIANTS = {
    "cookie": {},
    "redis": {"session_store": "redis"},
    "sql": {"session_store": "sql"},
    "token-route": {"access_token_route": True},
    "connect": {"account_linking": "connect"},
    "connected-accounts": {"account_linking": "connected_accounts"},
}


@pytest.fixture(scope="session")
def default_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    yield installed_project(tmp_path_factory, **DEFAULT_ANSWERS)


@pytest.fixture(scope="session", params=list(VARIANTS))
def store_project(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Project:
    """The project rendered for each `session_store` answer (and the optional routes)."""
    return installed_project(tmp_path_factory, **DEFAULT_ANSWERS, **VARIANTS[request.param])


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server
