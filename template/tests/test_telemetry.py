"""OpenTelemetry: a span per call to the provider, counters of logins, refreshes, logouts and
errors, and never a token, code or secret in any attribute (app/auth/telemetry.py)."""

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.responses import JSONResponse

from app.auth.urls import CALLBACK_PATH
from devserver.provider import FakeProvider
from tests.helpers import LOGOUT, log_in, query, send_backchannel_logout, start_login

# Global providers can be set once per process: these collect for every test here.
SPANS = InMemorySpanExporter()
METRICS = InMemoryMetricReader()
_tracing = TracerProvider()
_tracing.add_span_processor(SimpleSpanProcessor(SPANS))
trace.set_tracer_provider(_tracing)
metrics.set_meter_provider(MeterProvider(metric_readers=[METRICS]))


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    SPANS.clear()
    yield SPANS


def counted() -> dict[tuple[str, tuple[tuple[str, Any], ...]], int]:
    """Counter values by name and attributes, since the start of this process."""
    values = {}
    data = METRICS.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    key = (metric.name, tuple(sorted((point.attributes or {}).items())))
                    values[key] = int(getattr(point, "value", 0))
    return values


def attribute_values(span: ReadableSpan) -> list[str]:
    found = [str(value) for value in (span.attributes or {}).values()]
    for event in span.events:
        found += [str(value) for value in (event.attributes or {}).values()]
    return found


def test_provider_calls_are_spans_and_no_span_holds_a_secret(
    client: TestClient, provider: FakeProvider, spans: InMemorySpanExporter
) -> None:
    provider.token_ttl = 30  # so /api-example refreshes, then calls UserInfo
    before = counted()
    authorize_url = start_login(client).headers["location"]
    callback = provider.login(authorize_url)
    client.get(callback)
    client.get("/api-example")
    send_backchannel_logout(client, provider, sub="alice")
    log_in(client, provider)
    client.get(LOGOUT)
    client.get(f"{CALLBACK_PATH}?state={'x' * 20}&code=stale")  # an error

    names = {span.name for span in spans.get_finished_spans()}
    expected = ["auth.discovery", "auth.jwks", "auth.code_exchange", "auth.refresh"]
    expected += ["auth.userinfo", "auth.revoke", "auth.backchannel_logout"]
    assert [name for name in expected if name not in names] == []

    secrets = [query(callback)["code"], query(authorize_url)["state"], provider.client_secret]
    secrets += [query(authorize_url)["nonce"]]
    secrets += [value for value in client.cookies.values() if len(value) > 8]  # not flags
    for issued in provider.issued:
        secrets += [value for name, value in issued.items() if name.endswith("_token")]
    values = [value for span in spans.get_finished_spans() for value in attribute_values(span)]
    assert [s for s in secrets if any(s in value for value in values)] == []

    after = counted()

    def grew(name: str, **attributes: str) -> int:
        key = (name, tuple(sorted(attributes.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert grew("auth.logins") == 2 and grew("auth.refreshes") == 1
    assert grew("auth.logouts", kind="backchannel") == 1 and grew("auth.logouts", kind="rp") == 1
    assert grew("auth.errors", code="login_expired") == 1


def test_a_failing_call_says_why_on_its_span(
    client: TestClient, provider: FakeProvider, spans: InMemorySpanExporter
) -> None:
    authorize_url = start_login(client).headers["location"]
    provider.replies["token"] = JSONResponse({"error": "server_error"}, status_code=400)
    client.get(provider.login(authorize_url))

    (exchange,) = [s for s in spans.get_finished_spans() if s.name == "auth.code_exchange"]
    assert exchange.attributes is not None
    assert exchange.attributes["auth.error"] == "bad_provider_response"
    assert not exchange.status.is_ok
