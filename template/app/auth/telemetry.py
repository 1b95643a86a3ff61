"""OpenTelemetry traces and metrics of the auth layer, when `opentelemetry-api` is
installed (`pip install -e '.[otel]'` plus the SDK and exporter you choose); without
it, everything here does nothing and costs nothing.

Spans (one per call to the provider, never per request): `auth.discovery`, `auth.jwks`,
`auth.code_exchange`, `auth.refresh`, `auth.userinfo`, `auth.revoke`,
`auth.backchannel_logout`. Counters: `auth.logins`, `auth.refreshes`, `auth.logouts`
(`kind`: `rp`, `backchannel`, `frontchannel`), `auth.errors` (`code`).

Attributes name things (the provider's endpoint URLs, error codes, HTTP statuses);
they never hold tokens, codes, cookies or secrets. Template-owned.
"""

import functools
import importlib
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from app.auth.urls import AUTH_PREFIX

P = ParamSpec("P")
R = TypeVar("R")
SCOPE = "app.auth"


def _optional(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


_trace, _metrics = _optional("opentelemetry.trace"), _optional("opentelemetry.metrics")
# Proxies: they follow the providers the app sets up, even later than this import.
_tracer = _trace.get_tracer(SCOPE) if _trace is not None else None
_meter = _metrics.get_meter(SCOPE) if _metrics is not None else None
_counters: dict[str, Any] = {}


@contextmanager
def span(name: str, **attributes: str | int) -> Iterator[None]:
    """A span around a call to the provider; an auth error's code goes on the span."""
    if _tracer is None:
        yield
        return
    with _tracer.start_as_current_span(name, attributes=attributes) as current:
        try:
            yield
        except Exception as exc:
            code = getattr(exc, "code", None)
            if isinstance(code, str):
                current.set_attribute("auth.error", code)
            raise


def traced(name: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """`span(name)` around every call of an async function."""

    def decorate(function: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        if _tracer is None:
            return function

        @functools.wraps(function)
        async def run(*args: P.args, **kwargs: P.kwargs) -> R:
            with span(name):
                return await function(*args, **kwargs)

        return run

    return decorate


def carries_secrets(scope: MutableMapping[str, Any]) -> bool:
    """Requests FastAPI's own telemetry must leave out (`FastAPI(telemetry={"exclude":
    ...})`): its request spans record the query string, which holds the authorization
    code and state at the callbacks, and the provider session id at front-channel logout."""
    path = str(scope.get("path", ""))
    return f"{AUTH_PREFIX}/" in path and path.endswith(("/callback", "/frontchannel-logout"))


def count(name: str, **attributes: str) -> None:
    """Add one to the counter `name`."""
    if _meter is None:
        return
    counter = _counters.get(name)
    if counter is None:
        counter = _counters[name] = _meter.create_counter(name)
    counter.add(1, attributes)
