"""Session fixtures: rendered projects (once per answer set) and the real data stores."""

from collections.abc import Iterator

import pytest
from components import PostgresServer, RedisServer
from rendering import Project, installed_project

DEFAULT_ANSWERS: dict[str, str] = {}
STORES = ("cookie", "redis", "sql")


@pytest.fixture(scope="session")
def default_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    yield installed_project(tmp_path_factory, **DEFAULT_ANSWERS)


@pytest.fixture(scope="session", params=STORES)
def store_project(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Project:
    """The project rendered for each `session_store` answer."""
    store = request.param
    answers = DEFAULT_ANSWERS if store == "cookie" else {**DEFAULT_ANSWERS, "session_store": store}
    return installed_project(tmp_path_factory, **answers)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server
