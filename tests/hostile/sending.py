"""How the tests send requests: raw ASGI calls (bytes no HTTP client would send), the test
client, and logging in through the fake provider."""

from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote, urlencode

from devserver.provider import FakeProvider
from fastapi.testclient import TestClient
from tests.helpers import log_in

from .rules import APP, Answer, Route


def fresh(client: TestClient) -> TestClient:
    client.cookies.clear()
    return client


def send(
    client: TestClient,
    route: Route,
    *,
    params: Sequence[tuple[str, str]] = (),
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> Answer:
    """A request as a browser or HTTP client would send it (query percent-encoded)."""
    encoded = [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    query_string = urlencode(list(params), quote_via=quote).encode("ascii")
    return asgi(
        client, route.method, route.target, query_string=query_string, headers=encoded, body=body
    )


def asgi(
    client: TestClient,
    method: str,
    path: str,
    *,
    query_string: bytes = b"",
    headers: Sequence[tuple[bytes, bytes]] = (),
    body: bytes = b"",
) -> Answer:
    """Send bytes no HTTP client would: the ASGI scope as a lenient server might pass it."""
    assert client.portal is not None
    app = client.app

    async def call() -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send_message(message: dict[str, Any]) -> None:
            messages.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query_string,
            "root_path": "",
            "headers": list(headers)
            if any(k == b"host" for k, _ in headers)
            else [(b"host", f"{APP.hostname}:{APP.port}".encode()), *headers],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        await app(scope, receive, send_message)  # type: ignore[arg-type]
        return messages

    messages = client.portal.call(call)
    start = next(m for m in messages if m["type"] == "http.response.start")
    body_bytes = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    headers_out = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start["headers"]]
    return Answer(start["status"], headers_out, body_bytes)


def logged_in_client(client: TestClient, provider: FakeProvider, username: str = "alice") -> None:
    answer = log_in(fresh(client), provider, username)
    assert answer.status_code == 303, answer.text


def jar_header(named: Iterable[tuple[str, str]]) -> str:
    return "; ".join(f"{name}={value}" for name, value in named)
