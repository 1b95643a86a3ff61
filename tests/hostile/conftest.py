"""`route`: each route the per-route tests go through (see `rules.ROUTES`)."""

import pytest

from .rules import ROUTES, Route


@pytest.fixture(params=ROUTES, ids=lambda route: f"{route.method} {route.path}")
def route(request: pytest.FixtureRequest) -> Route:
    return request.param  # type: ignore[no-any-return]
