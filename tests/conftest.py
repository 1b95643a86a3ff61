"""Session fixtures: the template rendered and installed, once per answer set per test session."""

from collections.abc import Iterator

import pytest
from rendering import Project, installed_project

DEFAULT_ANSWERS: dict[str, str] = {}


@pytest.fixture(scope="session")
def default_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    yield installed_project(tmp_path_factory, **DEFAULT_ANSWERS)
