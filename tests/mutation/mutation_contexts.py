"""pytest plugin (loaded with `-p mutation_contexts`): which test runs which line.

Coverage starts when pytest loads the plugin, before conftest imports the app, and records
each test's node id as the dynamic context of the lines it runs. `run.py` reads the data to
run, for a mutant, only the tests that reach its lines first.
"""

import os
from collections.abc import Iterator

import coverage
import pytest

_coverage = coverage.Coverage(
    data_file=os.environ["MUTATION_COVERAGE_FILE"],
    source=[os.environ["MUTATION_SOURCE"]],
    config_file=False,
)
_coverage.start()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    _coverage.switch_context(item.nodeid)
    yield
    _coverage.switch_context("")


def pytest_unconfigure() -> None:
    _coverage.stop()
    _coverage.save()
