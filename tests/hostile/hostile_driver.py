"""Hostile input against every route of a generated app (runs inside the generated project).

The template's `tests/test_hostile_input.py` copies this module into a scratch copy of a
rendered project, as `tests/test_hostile_driver.py`, and runs it with the project's own
interpreter: it uses the project's fixtures (`client`, `provider`, `client_for`, the
autouse `store`), so the app is built with `create_app(settings,
provider_transport=provider.transport)`, talks to the in-process fake provider and keeps
sessions in the project's own store. Most requests go straight to the ASGI app (bytes no
HTTP client would send, and fast enough for hypothesis); flows that need the browser's
cookie jar use the test client.

The rules for every answer: a 4xx or the documented success (303 for login and logout, 200
for the home page), never a 5xx (server errors are re-raised); HTML shows input only as
escaped text; every redirect stays on APP_BASE_URL's origin (or goes to the provider, for
login and logout); no cookie, header or URL is built from the request's Host or
X-Forwarded-* headers.
"""

import base64
import os
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urljoin, urlsplit

import pytest
from devserver.provider import FakeProvider
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.helpers import APP_URL, ISSUER, log_in, query
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI results do not flicker
    database=None,
    print_blob=False,
    # One app (and client) serves all examples of a test: that is the point.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FEW = settings(FUZZ, max_examples=max(10, EXAMPLES // 4))

APP = urlsplit(APP_URL)
AUTHORIZE = f"{ISSUER}/authorize?"
END_SESSION = f"{ISSUER}/logout?"
OTHER_SECRET = "Zq3vN8pXw2LrT6yB1mKc9HdJ4sFg7QaE"
MARK = "h0st1le"  # in every markup payload, so an echo is easy to spot
EVIL = "evil-h0st1le.example"
SESSION_COOKIE = re.compile(r"app_session(\.\d+)?")
TX_COOKIE = re.compile(r"app_tx\.[A-Za-z0-9_-]{16,128}")
CONTROL = re.compile(r"[\x00-\x20\x7f-\xff\\]")

# Markup that must never come back verbatim in an HTML page.
MARKUP = [
    f"<script>alert('{MARK}')</script>",
    f'"><img src=x onerror=alert("{MARK}")>',
    f"'><svg/onload=alert('{MARK}')>",
    f'" autofocus onfocus="alert(`{MARK}`)',
    f"</title><script>{MARK}</script>",
    f"<a href=javascript:{MARK}>x</a>",
    f"<!--{MARK}--><iframe src=//{EVIL}>",
    f"{{{{7*7}}}}<b>{MARK}</b>",
]
WEIRD = [
    "",
    " ",
    "%",
    "%zz",
    "%00",
    "%ff%fe",
    "%C0%AF",
    "\x00",
    "\r\nSet-Cookie: h0st1le=1",
    "\u202e\u2028\ufeff",
    "é€𝄞",
    "../../../etc/passwd",
    "${jndi:ldap://x}",
    "null",
    "[]",
    '{"a":1}',
    "a" * 600,
    "A" * 5000,
    "javascript:alert(1)",
    f"//{EVIL}",
    f"https://{EVIL}/",
]
PARAM_NAMES = [
    "returnTo",
    "returnto",
    "state",
    "code",
    "iss",
    "error",
    "error_description",
    "login_hint",
    "prompt",
    "screen_hint",
    "ui_locales",
    "organization",
    "invitation",
    "connection",
    "redirect_uri",
    "post_logout_redirect_uri",
    "client_id",
    "response_type",
    "logout_token",
    "__proto__",
]


# -- what the app may answer ------------------------------------------------------


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    anonymous: frozenset[int]  # what an anonymous request with junk may get
    to_provider: bool = False  # may redirect to the provider (routes this module does not know)

    @property
    def target(self) -> str:
        """The path to request (path parameters filled in)."""
        return re.sub(r"\{[^}]*\}", "x", self.path)


KNOWN = [
    Route("GET", "/auth/login", frozenset({303})),
    Route("GET", "/auth/callback", frozenset({400})),
    Route("GET", "/auth/logout", frozenset({303})),
    Route("GET", "/auth/profile", frozenset({401})),
    Route("POST", "/auth/backchannel-logout", frozenset({400, 415})),
    Route("GET", "/auth/access-token", frozenset({401})),  # with access_token_route only
    Route("GET", "/", frozenset({200})),
    Route("GET", "/profile", frozenset({303, 401})),
    Route("GET", "/api-example", frozenset({303, 401})),
]
BY_PATH = {route.path: route for route in KNOWN}
BASE_PATHS = set(BY_PATH) - {"/auth/access-token"}  # what every answer set generates


def generated_routes() -> list[Route]:
    """Every operation in the app's OpenAPI schema: routes added to the app (or by an
    answer) are fuzzed too, with the general rules (no 5xx, no echo, redirects only to
    the app or the provider) where this module does not know their answers.

    """
    from app.main import app  # built from the environment conftest.py set

    routes = []
    for path, operations in app.openapi()["paths"].items():
        for method in map(str.upper, operations):
            known = BY_PATH.get(path)
            if known is not None and known.method == method:
                routes.append(known)
            else:
                routes.append(Route(method, path, frozenset(range(200, 500)), to_provider=True))
    return routes


GENERATED = generated_routes()
BY_REQUEST = {(route.method, route.target): route for route in GENERATED}
# The routes the per-route tests go through; HOSTILE_ROUTES=extra: only those beyond what
# every answer set has (for answer sets that differ from another only by some routes).
ROUTES = [
    route
    for route in GENERATED
    if os.environ.get("HOSTILE_ROUTES") != "extra" or route.path not in BASE_PATHS
]


@pytest.fixture(params=ROUTES, ids=lambda route: f"{route.method} {route.path}")
def route(request: pytest.FixtureRequest) -> Route:
    return request.param  # type: ignore[no-any-return]


@dataclass
class Answer:
    """A response, from the test client or from a raw ASGI call."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    @classmethod
    def of(cls, response: Any) -> "Answer":
        return cls(response.status_code, list(response.headers.multi_items()), response.content)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name), None)

    def header_list(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def check(answer: Answer, route: Route, *, allowed: Iterable[int] | None = None) -> None:
    """The rules every answer to hostile input follows."""
    expected = set(allowed if allowed is not None else route.anonymous)
    assert answer.status < 500, answer.text[:500]
    assert answer.status in expected, (answer.status, answer.text[:500])
    content_type = answer.header("content-type") or ""
    if "html" in content_type:
        text = answer.text
        for payload in MARKUP:
            assert payload not in text, f"HTML echoes {payload!r}"
        check_markup(text)
    location = answer.header("location")
    if location is not None:
        assert not CONTROL.search(location), f"raw control or space in Location: {location!r}"
        if route.path == "/auth/login" and answer.status == 303:
            check_authorize_url(location)
        elif route.path == "/auth/logout":
            check_logout_url(location)
        elif not (route.to_provider and location.startswith(ISSUER.rstrip("/") + "/")):
            assert_same_origin(location)
    for line in answer.header_list("set-cookie"):
        name = line.split("=", 1)[0]
        assert SESSION_COOKIE.fullmatch(name) or TX_COOKIE.fullmatch(name), line[:200]
        assert "domain=" not in line.lower(), line[:200]
    for name, value in answer.headers:
        assert "\n" not in value and "\r" not in value, (name, value)
        if name.lower() not in ("location", "content-length"):
            assert MARK not in value and EVIL not in value, (name, value)


class Markup(HTMLParser):
    """What a browser would take as markup (tags, attributes, comments, script) in a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.comments: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def check_markup(text: str) -> None:
    """Input shows up in a page only as text: never as a tag, attribute, comment or script,
    and no link leads off the app's origin or to a script URL."""
    markup = Markup()
    markup.feed(text)
    markup.close()
    for tag, attrs in markup.tags:
        assert MARK not in tag, tag
        for name, value in attrs:
            assert MARK not in name and MARK not in (value or ""), (tag, name, value)
            assert EVIL not in (value or ""), (tag, name, value)
            if name in ("href", "src", "action", "formaction") and value is not None:
                assert_same_origin(value.strip())
    for data in markup.comments + markup.scripts:
        assert MARK not in data and EVIL not in data, data


def assert_same_origin(location: str) -> None:
    """Where a browser goes with this Location is on the app's own origin."""
    assert not CONTROL.search(location), location
    if not location.startswith(APP_URL + "/"):
        assert location.startswith("/") and not location.startswith("//"), location
    target = urlsplit(urljoin(APP_URL + "/deep/page", location))
    assert (target.scheme, target.netloc) == (APP.scheme, APP.netloc), location
    assert target.username is None and target.password is None, location


def check_authorize_url(location: str) -> dict[str, str]:
    assert location.startswith(AUTHORIZE), location
    params = query(location)
    assert params["redirect_uri"] == f"{APP_URL}/auth/callback", params
    assert params["client_id"] == "dev-client"
    for name in ("state", "nonce", "code_challenge"):
        assert re.fullmatch(r"[A-Za-z0-9_-]{32,128}", params[name]), (name, params[name])
    return params


def check_logout_url(location: str) -> str:
    """The provider's logout URL; returns its post_logout_redirect_uri (same-origin)."""
    assert location.startswith(END_SESSION), location
    values = parse_qs(urlsplit(location).query).get("post_logout_redirect_uri", [])
    assert len(values) == 1, location
    assert_app_url(values[0])
    return values[0]


def assert_app_url(url: str) -> None:
    """An absolute URL on the app's origin (where the provider sends users after logout)."""
    assert url.startswith(APP_URL + "/"), url  # the path comes right after the app's origin
    target = urlsplit(url)
    assert (target.scheme, target.netloc, target.username) == (APP.scheme, APP.netloc, None)
    assert not re.search(r"[\x00-\x1f\x7f\\]", url), url


# -- strategies ---------------------------------------------------------------------

texts = st.text(max_size=40)
hostile_text = st.one_of(
    st.sampled_from(MARKUP),
    st.sampled_from(WEIRD),
    texts,
    st.builds("".join, st.lists(st.sampled_from(MARKUP + WEIRD) | texts, max_size=4)),
)
param_names = st.sampled_from(PARAM_NAMES) | st.text(max_size=12)
query_pairs = st.lists(st.tuples(param_names, hostile_text), max_size=6)
ascii_value = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
header_value = st.sampled_from([m for m in MARKUP if "\n" not in m]) | ascii_value
HEADER_NAMES = [
    "accept",
    "accept-language",
    "authorization",
    "content-type",
    "forwarded",
    "host",
    "origin",
    "referer",
    "user-agent",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-proto",
    "x-original-url",
    "x-real-ip",
    "x-rewrite-url",
]
FORWARDING_HEADERS = [name for name in HEADER_NAMES if name == "host" or "forward" in name]
accepts = st.sampled_from(["text/html", "application/json", "*/*", "", "text/html;q=0"])


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


# -- fuzzing: queries, headers, bodies, cookies --------------------------------------


def percent_encoded(data: bytes) -> bytes:
    return b"".join(b"%%%02X" % byte for byte in data)


# Query strings as HTTP servers hand them to the app (ASGI: percent-encoded, printable
# ASCII): any bytes behind percent-escapes (NUL, CR/LF, bytes that are not UTF-8),
# broken escapes, separators and the routes' own parameter names.
raw_queries = st.lists(
    st.one_of(
        st.binary(max_size=24).map(lambda data: bytes(b for b in data if 0x21 <= b <= 0x7E)),
        st.binary(min_size=1, max_size=8).map(percent_encoded),
        st.sampled_from(
            [
                *(b"%", b"%z", b"%f", b"%%", b"%u0041", b"%C0%AF", b"%ED%A0%80"),
                *(b"&", b"=", b"+", b";", b"returnTo=", b"state=", b"code=", b"iss="),
                *(b"error=", b"error_description="),
            ]
        ),
    ),
    max_size=12,
).map(b"".join)


@FEW
@given(raw=raw_queries)
def test_raw_query_bytes(client: TestClient, route: Route, raw: bytes) -> None:
    """NULs, bytes that are not UTF-8 and broken percent-escapes in the query string."""
    check(asgi(client, route.method, route.target, query_string=raw), route)
    html = [(b"accept", b"text/html")]
    check(asgi(client, route.method, route.target, query_string=raw, headers=html), route)


def test_raw_non_utf8_query_bytes(client: TestClient) -> None:
    """Out of the ASGI spec (query_string should be percent-encoded), but some servers
    pass what they were sent: still no 5xx."""
    for route in ROUTES:
        for raw in (b"state=\x80", b"returnTo=/\xff\xfe&code=\xc3\x28", b"\x00\xff"):
            check(asgi(client, route.method, route.target, query_string=raw), route)


@FEW
@given(
    headers=st.lists(
        st.tuples(
            st.sampled_from([name.encode() for name in HEADER_NAMES]),
            st.binary(max_size=80),
        ),
        max_size=5,
    )
)
def test_raw_header_bytes(
    client: TestClient, route: Route, headers: list[tuple[bytes, bytes]]
) -> None:
    """Header values with NUL, CR/LF and bytes that are not UTF-8."""
    check(asgi(client, route.method, route.target, headers=headers), route)


CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=utf-8",
    "APPLICATION/X-WWW-FORM-URLENCODED",
    "multipart/form-data; boundary=x",
    "application/json",
    "text/plain",
    "",
    "application/x-www-form-urlencoded; charset=\x00",
]
form_bodies = st.one_of(
    st.binary(max_size=400),
    st.builds(
        lambda pairs: "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs).encode(),
        st.lists(st.tuples(st.sampled_from(["logout_token", "x"]) | texts, hostile_text)),
    ),
    st.builds(
        lambda parts: b"logout_token=" + b".".join(parts),
        st.lists(st.binary(max_size=60).map(base64.urlsafe_b64encode), min_size=1, max_size=6),
    ),
    st.sampled_from(
        [
            b"logout_token=a&logout_token=b",
            b"logout_token=",
            b"logout_token=%ff%fe",
            b"logout_token=\xff\xfe",
            b"logout_token=a\x00b",
            b"&".join([b"a=b"] * 30),
            b"%",
            b"logout_token=" + b"A" * 70_000,
        ]
    ),
)


@FUZZ
@given(body=form_bodies, content_type=st.sampled_from(CONTENT_TYPES), accept=accepts)
def test_fuzzed_backchannel_logout_bodies(
    client: TestClient, body: bytes, content_type: str, accept: str
) -> None:
    route = BY_PATH["/auth/backchannel-logout"]
    headers = [(b"content-type", content_type.encode()), (b"accept", accept.encode())]
    answer = asgi(client, "POST", route.path, headers=headers, body=body)
    check(answer, route)
    assert answer.header("content-type") == "application/json"


def jwe_like(parts: list[bytes]) -> str:
    return ".".join(base64.urlsafe_b64encode(p).rstrip(b"=").decode() for p in parts)


cookie_values = st.one_of(
    st.text(
        st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=";,"),
        max_size=80,
    ),
    st.lists(st.binary(max_size=40), min_size=5, max_size=5).map(jwe_like),
    st.sampled_from(
        [
            "",
            "e30",  # {}
            jwe_like([b'{"alg":"none"}', b"", b"", b"{}", b""]),
            jwe_like(
                [b'{"alg":"dir","enc":"A256GCM","zip":"DEF"}', b"", b"x" * 12, b"x", b"y" * 16]
            ),
            jwe_like([b'{"alg":"dir","enc":"A128CBC-HS256","kid":"x"}', b"", b"", b"", b""]),
            "....",
            "a" * 43,
        ]
    ),
)
cookie_names = st.one_of(
    st.sampled_from(["app_session", "app_session.0", "app_session.1", "app_session.15"]),
    st.sampled_from(["app_session.16", "app_session.01", "app_session.-1", "app_tx."]),
    st.text(st.sampled_from("abcxyzABC0123456789_-"), min_size=16, max_size=20).map(
        lambda state: "app_tx." + state
    ),
)


@FUZZ
@given(
    pairs=query_pairs,
    headers=st.dictionaries(st.sampled_from(HEADER_NAMES), header_value, max_size=4),
    cookies=st.lists(st.tuples(cookie_names, cookie_values), max_size=5),
    state=st.none() | st.text(st.sampled_from("abcABC012_-"), min_size=16, max_size=20),
    accept=accepts,
)
def test_fuzzed_requests(
    client: TestClient,
    route: Route,
    pairs: list[tuple[str, str]],
    headers: dict[str, str],
    cookies: list[tuple[str, str]],
    state: str | None,
    accept: str,
) -> None:
    """Random and hostile query parameters, headers and session/transaction cookies."""
    if state:  # a callback for a login whose transaction cookie is junk
        pairs = [("state", state), ("code", "x"), *pairs]
        cookies = [*cookies, (f"app_tx.{state}", cookies[0][1] if cookies else "x")]
    headers = {**headers, "accept": accept, "cookie": jar_header(cookies)}
    check(send(client, route, params=pairs, headers=headers), route)


# -- oversized and duplicated input ---------------------------------------------------


@pytest.mark.parametrize("size", [8193, 65_536])
def test_oversized_query_strings(client: TestClient, route: Route, size: int) -> None:
    for params in (
        [("returnTo", "/" + "a" * size)],
        [("state", "s" * size), ("code", "c")],
        [("login_hint", "h" * size), ("error_description", "<b>" * (size // 3))],
        [(f"p{i}", "v") for i in range(size // 4)],
        [("returnTo", "/"), ("x", "%41" * (size // 3))],
    ):
        check(send(client, route, params=params, headers={"accept": "text/html"}), route)
    huge = [("returnTo", "/" + "a" * 1_000_000)]
    check(send(client, route, params=huge, headers={"accept": "text/html"}), route)


def test_oversized_callback_is_refused_before_the_state_is_looked_up(
    client: TestClient,
) -> None:
    location = fresh(client).get("/auth/login").headers["location"]
    state = query(location)["state"]
    answer = client.get("/auth/callback", params={"state": state, "code": "c", "pad": "x" * 9000})
    check(Answer.of(answer), BY_PATH["/auth/callback"])
    assert "too large" in answer.text


@pytest.mark.parametrize("size", [8193, 20_000, 70_000])
def test_oversized_cookies(client: TestClient, route: Route, size: int) -> None:
    jars = [
        f"app_session={'A' * size}",
        "; ".join(f"app_session.{i}={'B' * 3900}" for i in range(size // 3900 + 1)),
        "; ".join(f"app_session.{i}={'C' * 3900}" for i in range(17)),
        "; ".join(f"app_tx.{secrets.token_urlsafe(32)}={'D' * 200}" for _ in range(size // 250)),
        "; ".join(f"junk{i}={'E' * 100}" for i in range(size // 100)),
    ]
    for jar in jars:
        headers = {"cookie": jar, "accept": "text/html"}
        check(send(fresh(client), route, headers=headers), route)


def test_junk_pending_logins_are_dropped(client: TestClient) -> None:
    route = BY_PATH["/auth/login"]
    junk = "; ".join(f"app_tx.{secrets.token_urlsafe(24)}=junk{i}" for i in range(200))
    answer = send(fresh(client), route, headers={"cookie": junk})
    check(answer, route, allowed={303})
    # Unreadable pending logins are dropped (deleted), the new one is set.
    deleted = [c for c in answer.header_list("set-cookie") if "Max-Age=0" in c]
    assert 200 - 8 <= len(deleted) <= 200  # the newest few may stay (MAX_PENDING)


def logged_in_client(client: TestClient, provider: FakeProvider, username: str = "alice") -> None:
    answer = log_in(fresh(client), provider, username)
    assert answer.status_code == 303, answer.text


@pytest.mark.parametrize(
    "params",
    [
        [("state", "a" * 43), ("state", "b" * 43), ("code", "c")],
        [("state", "{state}"), ("state", "{state}"), ("code", "c")],
        [("state", "{state}"), ("code", "c"), ("code", "d")],
        [("state", "{state}"), ("code", "c"), ("iss", ISSUER), ("iss", f"https://{EVIL}")],
        [("state", "{state}"), ("error", "x"), ("error", "y")],
        [("state", "{state}"), ("error_description", "a"), ("error_description", MARKUP[0])],
    ],
)
def test_duplicated_callback_parameters_are_refused(
    client: TestClient, provider: FakeProvider, params: list[tuple[str, str]]
) -> None:
    location = fresh(client).get("/auth/login").headers["location"]
    state = query(location)["state"]
    params = [(k, v.replace("{state}", state)) for k, v in params]
    answer = client.get("/auth/callback", params=params, headers={"accept": "text/html"})
    check(Answer.of(answer), BY_PATH["/auth/callback"])
    assert "repeats" in answer.text or "expired" in answer.text
    assert client.get("/auth/profile").status_code == 401


@pytest.mark.parametrize(
    "values",
    [
        ["/ok", f"//{EVIL}"],
        [f"//{EVIL}", "/ok"],
        [f"https://{EVIL}", f"/\\{EVIL}"],
        ["/ok", "/ok2"],
    ],
)
def test_duplicated_return_to_stays_same_origin(
    client: TestClient, provider: FakeProvider, values: list[str]
) -> None:
    start = fresh(client).get("/auth/login", params=[("returnTo", v) for v in values])
    check(Answer.of(start), BY_PATH["/auth/login"])
    final = client.get(provider.login(start.headers["location"]))
    assert final.status_code == 303
    assert_same_origin(final.headers["location"])
    assert final.headers["location"] in ("/", *values)

    logout = client.get("/auth/logout", params=[("returnTo", v) for v in values])
    check(Answer.of(logout), BY_PATH["/auth/logout"])


# -- callbacks with a real transaction -----------------------------------------------


@FEW
@given(
    error=hostile_text.filter(bool),
    description=st.none() | hostile_text,
    accept=accepts,
)
def test_provider_errors_are_shown_escaped(
    client: TestClient, error: str, description: str | None, accept: str
) -> None:
    """The provider's `error` and `error_description` reach the error page, escaped."""
    location = fresh(client).get("/auth/login").headers["location"]
    params = {"state": query(location)["state"], "iss": ISSUER, "error": error}
    if description is not None:
        params["error_description"] = description
    answer = client.get("/auth/callback", params=params, headers={"accept": accept})
    check(Answer.of(answer), BY_PATH["/auth/callback"])
    assert answer.status_code == 400


@FEW
@given(
    code=hostile_text,
    iss=st.none() | st.sampled_from([ISSUER, ISSUER + "/", f"https://{EVIL}"]) | hostile_text,
)
def test_hostile_codes_and_issuers(client: TestClient, code: str, iss: str | None) -> None:
    location = fresh(client).get("/auth/login").headers["location"]
    params = {"state": query(location)["state"], "code": code}
    if iss is not None:
        params["iss"] = iss
    answer = client.get("/auth/callback", params=params, headers={"accept": "text/html"})
    check(Answer.of(answer), BY_PATH["/auth/callback"])


# -- tampered, truncated, re-ordered and foreign cookies ------------------------------


def session_value(client: TestClient) -> str:
    return client.cookies["app_session"]


B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def flip(value: str, index: int) -> str:
    """`value` with one character changed in its high bits (so even the last character of
    a base64url part, whose low bits may be padding, really changes the bytes)."""
    position = B64URL.find(value[index])
    replacement = "A" if position >= 16 else "w"
    return value[:index] + replacement + value[index + 1 :]


def chunks(value: str, count: int) -> list[str]:
    size = -(-len(value) // count)
    return [value[i : i + size] for i in range(0, len(value), size)]


def mixed_jwe(ours: str, theirs: str) -> list[str]:
    """`ours` (a compact JWE) with each part that differs taken from `theirs` instead."""
    mine, other = ours.split("."), theirs.split(".")
    mixed = []
    for index, (a, b) in enumerate(zip(mine, other, strict=True)):
        if a != b:  # the protected header and the (empty) key of `dir` are the same
            mixed.append(".".join([*mine[:index], b, *mine[index + 1 :]]))
    return mixed


def jar_header(named: Iterable[tuple[str, str]]) -> str:
    return "; ".join(f"{name}={value}" for name, value in named)


def assert_anonymous(client: TestClient, cookie: str) -> None:
    """With this Cookie header the app sees no session, and says so without a 5xx."""
    for path, html, allowed in [
        ("/auth/profile", False, {401}),
        ("/profile", True, {303}),
        ("/", True, {200}),
        ("/auth/logout", True, {303}),
        ("/auth/login", True, {303}),
        ("/auth/callback", True, {400}),
    ]:
        headers = {"cookie": cookie, "accept": "text/html" if html else "application/json"}
        answer = send(client, BY_PATH[path], headers=headers)
        try:
            check(answer, BY_PATH[path], allowed=allowed)
            if path == "/":
                assert "alice" not in answer.text.lower() and "bob" not in answer.text.lower()
        except AssertionError as exc:
            raise AssertionError(f"GET {path} with Cookie: {cookie[:300]!r}: {exc}") from None


def is_cookie_store(client: TestClient) -> bool:
    sessions = client.app.state.auth.sessions  # type: ignore[attr-defined]
    return "cookie" in type(getattr(sessions, "store", sessions)).__name__.lower()


def tampered_session_cookies(alice: str, bob: str, cookie_store: bool) -> list[str]:
    """Cookie headers built from two genuine session cookies, none of them valid."""
    jars: list[list[tuple[str, str]]] = []
    for index in (0, 1, len(alice) // 2, len(alice) - 2, len(alice) - 1):
        jars.append([("app_session", flip(alice, index))])
    jars += [
        [("app_session", alice[:-1])],
        [("app_session", alice[1:])],
        [("app_session", alice[: len(alice) // 2])],
        [("app_session", alice + "A")],
        [("app_session", alice + alice)],
        [("app_session", alice.upper())],
        [("app_session", "." + alice)],
        [("app_session", alice.replace(".", "..", 1))],
    ]
    if cookie_store:
        a, b = chunks(alice, 4), chunks(bob, 4)
        numbered = lambda parts: [(f"app_session.{i}", p) for i, p in enumerate(parts)]  # noqa: E731
        jars += [
            numbered(a[:-1]),  # truncated: last chunk missing
            numbered(a[1:]),  # first chunk missing
            [(f"app_session.{i}", p) for i, p in enumerate(a) if i != 1],  # a gap
            numbered([a[1], a[0], *a[2:]]),  # re-ordered
            numbered(list(reversed(a))),
            numbered([a[0], b[1], *a[2:]]),  # a chunk of another session
            numbered([*a, "AAAA"]),  # one chunk too many
            numbered([a[0], a[1], flip(a[2], 3), a[3]]),  # a chunk tampered with
            [(f"app_session.0{i}", p) for i, p in enumerate(a)],  # leading zeros
            [(f"app_session.{i + 1}", p) for i, p in enumerate(a)],  # numbered from 1
            [("app_session", ".".join(alice.split(".")[::-1]))],
        ]
        jars += [[("app_session", mixed)] for mixed in mixed_jwe(alice, bob)]
    else:
        jars += [
            [("app_session.0", alice)],  # an id never comes in chunks
            [("app_session", alice[:20]), ("app_session.1", alice[20:])],
            [("app_session", secrets.token_urlsafe(32))],
        ]
    genuine = {f"app_session={alice}", f"app_session={bob}"}
    return [header for header in map(jar_header, jars) if header not in genuine]


def test_tampered_session_cookies_mean_no_session(
    client: TestClient, provider: FakeProvider
) -> None:
    logged_in_client(client, provider, "bob")
    bob = session_value(client)
    logged_in_client(client, provider, "alice")
    alice = session_value(client)
    assert (
        fresh(client).get("/auth/profile", headers={"cookie": f"app_session={alice}"}).json()["sub"]
        == "alice"
    )

    for cookie in tampered_session_cookies(alice, bob, is_cookie_store(client)):
        assert_anonymous(client, cookie)

    # Genuine cookies still work: nothing above ended them.
    for value, who in ((alice, "alice"), (bob, "bob")):
        answer = fresh(client).get("/auth/profile", headers={"cookie": f"app_session={value}"})
        assert answer.status_code == 200 and answer.json()["sub"] == who


def test_duplicate_session_cookies_never_mix_users(
    client: TestClient, provider: FakeProvider
) -> None:
    logged_in_client(client, provider, "bob")
    bob = session_value(client)
    logged_in_client(client, provider, "alice")
    alice = session_value(client)
    for cookie in (
        f"app_session={alice}; app_session={bob}",
        f"app_session={alice}; app_session=junk",
        f"app_session=junk; app_session={alice}",
        f"app_session.0={bob[:100]}; app_session.1={bob[100:]}; app_session={alice}",
    ):
        answer = fresh(client).get("/auth/profile", headers={"cookie": cookie})
        assert answer.status_code in (200, 401)
        if answer.status_code == 200:
            assert answer.json()["sub"] in ("alice", "bob")


def test_cookies_encrypted_with_another_secret(
    client: TestClient, provider: FakeProvider, client_for: Callable[..., TestClient]
) -> None:
    """Sessions and login transactions of an app with another SESSION_SECRET (same store)."""
    stranger = client_for(session_secret=OTHER_SECRET)
    logged_in_client(stranger, provider, "mallory")
    assert stranger.get("/auth/profile").status_code == 200
    value = session_value(stranger)
    assert_anonymous(client, f"app_session={value}")
    if is_cookie_store(client):
        named = [(f"app_session.{i}", p) for i, p in enumerate(chunks(value, 3))]
        assert_anonymous(client, jar_header(named))

    # A login started at the other app cannot be finished here.
    start = fresh(stranger).get("/auth/login")
    back = provider.login(start.headers["location"], "mallory")
    tx = [c for c in stranger.cookies.jar if c.name.startswith("app_tx.")]
    assert len(tx) == 1
    answer = fresh(client).get(
        back, headers={"cookie": f"{tx[0].name}={tx[0].value}", "accept": "text/html"}
    )
    check(Answer.of(answer), BY_PATH["/auth/callback"])
    assert fresh(client).get("/auth/profile").status_code == 401


def pending_login(client: TestClient) -> tuple[str, str, str]:
    """Start a login: (state, transaction cookie value, provider URL)."""
    location = fresh(client).get("/auth/login").headers["location"]
    state = query(location)["state"]
    return state, client.cookies[f"app_tx.{state}"], location


def test_tampered_transaction_cookies_are_refused(
    client: TestClient, provider: FakeProvider
) -> None:
    route = BY_PATH["/auth/callback"]
    other_state, other_value, _ = pending_login(client)
    state, value, location = pending_login(client)
    logged_in_client(client, provider)
    session = session_value(client)
    back = provider.login(location)  # the provider's genuine answer for `state`
    code = query(back)["code"]
    candidates = [
        (state, flip(value, len(value) // 2)),
        (state, flip(value, 0)),
        (state, flip(value, len(value) - 1)),
        (state, value[:-4]),
        (state, value[: len(value) // 2]),
        (state, value + value),
        (state, ".".join(value.split(".")[::-1])),
        (state, other_value),  # another login's transaction under this state's name
        (other_state, value),  # this transaction under another state's name
        (state, session),  # a session cookie (other purpose, other key) as a transaction
        (state, ""),
        (state, "A" * 9000),
    ]
    candidates += [(state, mixed) for mixed in mixed_jwe(value, other_value)]
    for name_state, cookie in candidates:
        params = {"state": state, "code": code, "iss": ISSUER}
        headers = {"cookie": f"app_tx.{name_state}={cookie}", "accept": "text/html"}
        answer = Answer.of(fresh(client).get("/auth/callback", params=params, headers=headers))
        check(answer, route)
        assert not [c for c in answer.header_list("set-cookie") if "Max-Age=0" not in c]

    # A transaction cookie cannot stand in for a session either.
    assert_anonymous(client, f"app_session={value}")
    # ... and the untouched transaction still completes its login.
    headers = {"cookie": f"app_tx.{state}={value}"}
    answer = fresh(client).get(back, headers=headers)
    assert answer.status_code == 303 and answer.headers["location"] == "/"


# -- open redirects -------------------------------------------------------------------

OPEN_REDIRECTS = [
    f"https://{EVIL}",
    f"http://{EVIL}/path",
    f"HTTPS://{EVIL}",
    f"https:{EVIL}",
    f"https:/{EVIL}",
    f"//{EVIL}",
    f"///{EVIL}",
    f"////{EVIL}",
    f"//{EVIL}/%2F..",
    f"/\\{EVIL}",
    f"\\\\{EVIL}",
    f"\\/{EVIL}",
    f"/\\/{EVIL}",
    f"/{EVIL}\\@127.0.0.1:8000",
    f"%2F%2F{EVIL}",
    f"/%2F{EVIL}",
    f"/%2f%2f{EVIL}",
    f"/%252F%252F{EVIL}",
    f"/%25252F%25252F{EVIL}",
    f"/%2525252F%2525252F{EVIL}",
    f"/%5C{EVIL}",
    f"/%5c%5c{EVIL}",
    f"/%255C{EVIL}",
    f"%5C%5C{EVIL}",
    f"/%09/{EVIL}",
    f"/%0a/{EVIL}",
    f"/%0d/{EVIL}",
    f"/%00/{EVIL}",
    f"/\t/{EVIL}",
    f"/\n/{EVIL}",
    f"/\r/{EVIL}",
    f"/\x00/{EVIL}",
    f" //{EVIL}",
    f"\t//{EVIL}",
    f"\x01//{EVIL}",
    f"/ /{EVIL}",
    f"/\x7f/{EVIL}",
    f"/\u3000/{EVIL}",
    f"\uff0f\uff0f{EVIL}",  # fullwidth solidus
    f"/%E3%80%80/{EVIL}",
    f"@{EVIL}",
    f"127.0.0.1:8000@{EVIL}",
    f"http://127.0.0.1:8000@{EVIL}/",
    f"http://127.0.0.1:8000%40{EVIL}/",
    f"//127.0.0.1:8000@{EVIL}",
    f"/@{EVIL}",
    f"/.{EVIL}",
    f"{EVIL}",
    f"{EVIL}/path",
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "java\tscript:alert(1)",
    "javascript%3Aalert(1)",
    "/javascript:alert(1)",
    " javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "/\r\nSet-Cookie: h0st1le=1",
    "/%0d%0aSet-Cookie:%20h0st1le=1",
    "/%E5%98%8A%E5%98%8DSet-Cookie:h0st1le=1",
    "/" + "a" * 3000,
    f"/?next=//{EVIL}",
    "/#//" + EVIL,
    "",
    "?",
    "#",
    ".",
    "..",
    f"./{EVIL}",
]
FRIENDLY = ["/", "/profile", "/orders?page=2&sort=desc", "/a/b#section", "/search?q=caf%C3%A9"]


def login_through_provider(client: TestClient, provider: FakeProvider, start: Any) -> Any:
    assert start.status_code == 303, start.text
    check(Answer.of(start), BY_PATH["/auth/login"])
    back = provider.login(start.headers["location"])
    final = client.get(back)
    assert final.status_code == 303, final.text
    check(Answer.of(final), BY_PATH["/auth/callback"], allowed={303})
    assert_same_origin(final.headers["location"])
    return final


def assert_login_returns_same_origin(client: TestClient, provider: FakeProvider, value: str) -> str:
    # As a parameter value (encoded once by the client) ...
    start = fresh(client).get("/auth/login", params={"returnTo": value})
    location = login_through_provider(client, provider, start).headers["location"]
    # ... and as written in the query string, however odd.
    raw = value.encode()
    answer = asgi(client, "GET", "/auth/login", query_string=b"returnTo=" + raw)
    check(answer, BY_PATH["/auth/login"])
    return location


def assert_logout_returns_same_origin(client: TestClient, value: str, *, html: bool) -> str:
    """Logout with this returnTo (with the client's session, if any); returns where the
    provider is asked to send the user back to."""
    headers = {"accept": "text/html"} if html else {}
    answer = Answer.of(client.get("/auth/logout", params={"returnTo": value}, headers=headers))
    check(answer, BY_PATH["/auth/logout"])
    back = check_logout_url(answer.header("location") or "")
    raw = value.encode()
    answer = asgi(client, "GET", "/auth/logout", query_string=b"returnTo=" + raw)
    check(answer, BY_PATH["/auth/logout"])
    return back


@pytest.mark.parametrize("value", OPEN_REDIRECTS)
def test_open_redirect_corpus_after_login(
    client: TestClient, provider: FakeProvider, value: str
) -> None:
    location = assert_login_returns_same_origin(client, provider, value)
    if EVIL in value and not value.startswith("/"):
        assert location == "/"


@pytest.mark.parametrize("value", OPEN_REDIRECTS)
def test_open_redirect_corpus_after_logout(client: TestClient, value: str) -> None:
    back = assert_logout_returns_same_origin(fresh(client), value, html=True)
    if EVIL in value and not value.startswith("/"):
        assert back == APP_URL + "/"


def test_open_redirect_corpus_after_logout_of_a_session(
    client: TestClient, provider: FakeProvider
) -> None:
    """Logged in, the logout URL also carries id_token_hint: returnTo follows the same rule."""
    for value in OPEN_REDIRECTS[::5]:
        logged_in_client(client, provider)
        answer = client.get("/auth/logout", params={"returnTo": value})
        check(Answer.of(answer), BY_PATH["/auth/logout"])  # post_logout_redirect_uri included
        assert "id_token_hint" in query(answer.headers["location"])
        assert client.get("/auth/profile").status_code == 401


@pytest.mark.parametrize("value", FRIENDLY)
def test_app_paths_are_kept_after_login_and_logout(
    client: TestClient, provider: FakeProvider, value: str
) -> None:
    """The guard is not so strict that it breaks ordinary return paths."""
    assert assert_login_returns_same_origin(client, provider, value) == value
    assert assert_logout_returns_same_origin(client, value, html=True) == APP_URL + value


REDIRECT_ATOMS = [
    "/",
    "//",
    "\\",
    "/\\",
    "%2F",
    "%2f",
    "%252F",
    "%25252F",
    "%5C",
    "%255C",
    "%09",
    "%0A",
    "%00",
    "\t",
    "\n",
    " ",
    "@",
    ":",
    "%3A",
    "?",
    "#",
    ".",
    "..",
    "https:",
    "http:",
    "javascript:",
    "data:",
    "127.0.0.1:8000",
    EVIL,
    "%40",
    "\uff0f",
    "\u3000",
    "a",
]
redirect_targets = st.lists(st.sampled_from(REDIRECT_ATOMS), min_size=1, max_size=8).map("".join)


@FEW
@given(value=redirect_targets)
def test_fuzzed_return_to_after_login(
    client: TestClient, provider: FakeProvider, value: str
) -> None:
    assert_login_returns_same_origin(client, provider, value)


@FUZZ
@given(value=redirect_targets | hostile_text)
def test_fuzzed_return_to_after_logout(client: TestClient, value: str) -> None:
    route = BY_PATH["/auth/logout"]
    answer = send(client, route, params=[("returnTo", value)])
    check(answer, route)
    check_logout_url(answer.header("location") or "")


def test_post_logout_redirect_without_an_end_session_endpoint(
    client: TestClient, provider: FakeProvider
) -> None:
    """A provider without RP-initiated logout: the app redirects to returnTo itself."""
    provider.metadata = {"end_session_endpoint": None}
    for value in OPEN_REDIRECTS:
        answer = fresh(client).get("/auth/logout", params={"returnTo": value})
        assert answer.status_code == 303
        assert_app_url(answer.headers["location"])
        assert not CONTROL.search(answer.headers["location"])
        if EVIL in value and not value.startswith("/"):
            assert answer.headers["location"] == APP_URL + "/", value
    answer = fresh(client).get("/auth/logout", params={"returnTo": "/profile"})
    assert answer.headers["location"] == APP_URL + "/profile"


# -- Host and X-Forwarded-* headers -------------------------------------------------

FORWARDING = [
    {"host": EVIL},
    {"host": f"{EVIL}:443"},
    {"host": f"127.0.0.1:8000@{EVIL}"},
    {"x-forwarded-host": EVIL},
    {"x-forwarded-host": EVIL, "x-forwarded-proto": "https", "x-forwarded-port": "443"},
    {"x-forwarded-server": EVIL, "x-forwarded-for": "203.0.113.9"},
    {"forwarded": f"for=203.0.113.9;host={EVIL};proto=https"},
    {"x-original-url": f"//{EVIL}/", "x-rewrite-url": f"//{EVIL}/"},
    {"x-forwarded-prefix": f"//{EVIL}"},
    {"x-forwarded-proto": "javascript"},
    {"origin": f"https://{EVIL}", "referer": f"https://{EVIL}/page"},
    {
        "host": EVIL,
        "x-forwarded-host": EVIL,
        "x-forwarded-proto": "https",
        "forwarded": f"host={EVIL};proto=https",
    },
]


@pytest.fixture(params=["direct", "uvicorn-proxy-headers"])
def deployed(request: pytest.FixtureRequest, app: FastAPI) -> Iterator[TestClient]:
    """The app as tests see it, and behind uvicorn's --proxy-headers --forwarded-allow-ips '*'
    (as the generated Dockerfile runs it), which trusts X-Forwarded-Proto and -For."""
    served: Any = app
    if request.param != "direct":
        served = ProxyHeadersMiddleware(app, trusted_hosts="*")
    with TestClient(served, base_url=APP_URL, follow_redirects=False) as client:
        yield client


@pytest.mark.parametrize("headers", FORWARDING, ids=lambda h: "+".join(h))
def test_urls_come_from_app_base_url_not_request_headers(
    deployed: TestClient, provider: FakeProvider, headers: dict[str, str]
) -> None:
    client = deployed
    for returned in ("/", "/profile"):
        start = client.get("/auth/login", params={"returnTo": returned}, headers=headers)
        check(Answer.of(start), BY_PATH["/auth/login"])
        params = check_authorize_url(start.headers["location"])
        assert params["redirect_uri"] == f"{APP_URL}/auth/callback"
        final = client.get(provider.login(start.headers["location"]), headers=headers)
        check(Answer.of(final), BY_PATH["/auth/callback"], allowed={303})
        assert final.headers["location"] == returned
        for line in final.headers.get_list("set-cookie"):
            assert "secure" not in line.lower(), line  # APP_BASE_URL is http://, whatever
            #                                           the X-Forwarded-Proto says
        profile = client.get("/auth/profile", headers=headers)
        assert profile.status_code == 200 and profile.json()["sub"] == "alice"
        logout = client.get("/auth/logout", params={"returnTo": returned}, headers=headers)
        check(Answer.of(logout), BY_PATH["/auth/logout"])
        assert check_logout_url(logout.headers["location"]) == APP_URL + returned
    page = client.get("/profile", headers={**headers, "accept": "text/html"})
    check(Answer.of(page), BY_PATH["/profile"], allowed={303})
    assert page.headers["location"] == "/auth/login?returnTo=%2Fprofile"
    error = client.get("/auth/callback", headers={**headers, "accept": "text/html"})
    check(Answer.of(error), BY_PATH["/auth/callback"])


def test_backchannel_logout_ignores_forwarding_headers(
    client: TestClient, provider: FakeProvider
) -> None:
    """A valid logout token works whatever the headers say; an invalid one never does."""
    logged_in_client(client, provider)
    headers = FORWARDING[-1]
    junk = client.post("/auth/backchannel-logout", data={"logout_token": "x.y.z"}, headers=headers)
    check(Answer.of(junk), BY_PATH["/auth/backchannel-logout"])
    token = provider.logout_token(sub="alice")
    answer = client.post("/auth/backchannel-logout", data={"logout_token": token}, headers=headers)
    assert answer.status_code == 200
    assert client.get("/auth/profile").status_code == 401
    replay = client.post("/auth/backchannel-logout", data={"logout_token": token}, headers=headers)
    check(Answer.of(replay), BY_PATH["/auth/backchannel-logout"])


FORWARDED_VALUES = [EVIL, f"{EVIL}:443", f"https://{EVIL}", f"for=1;host={EVIL}", f"//{EVIL}"]
forwarded_values = st.sampled_from([*FORWARDED_VALUES, "https", "[", "[::1"]) | ascii_value.map(
    lambda value: value + EVIL
)


@FEW
@given(
    headers=st.dictionaries(
        st.sampled_from(FORWARDING_HEADERS), forwarded_values, min_size=1, max_size=4
    )
)
def test_fuzzed_forwarding_headers_never_reach_urls(
    client: TestClient, headers: dict[str, str]
) -> None:
    """Location and Set-Cookie never carry a host the request named (see `check`)."""
    for route in (BY_PATH["/auth/login"], BY_PATH["/auth/logout"], BY_PATH["/profile"]):
        check(send(client, route, headers={**headers, "accept": "text/html"}), route)


def test_trailing_slash_redirects_ignore_the_host_header(client: TestClient) -> None:
    for path in ("/auth/login/", "/auth/callback/?code=c&state=s", "/auth/logout/", "/profile/"):
        answer = fresh(client).get(path, headers={"host": EVIL})
        assert answer.status_code < 500
        assert EVIL not in answer.headers.get("location", ""), (path, answer.headers)


path_segments = st.lists(
    st.sampled_from(["auth", "login", "callback", "logout", "profile", "backchannel-logout"])
    | st.sampled_from(["", ".", "..", "%2F", "%00", "\\", EVIL, "\x00", "é", MARKUP[0]])
    | st.text(max_size=8),
    max_size=5,
)


METHODS = ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"]


@FUZZ
@given(segments=path_segments, trailing=st.booleans(), method=st.sampled_from(METHODS))
def test_fuzzed_paths_and_methods(
    client: TestClient, segments: list[str], trailing: bool, method: str
) -> None:
    """Unknown paths, odd methods and trailing slashes: 4xx or a same-origin redirect."""
    path = "/" + "/".join(segments) + ("/" if trailing else "")
    answer = asgi(client, method, path, headers=[(b"accept", b"text/html")])
    route = BY_REQUEST.get((method, path))
    if route is not None:
        check(answer, route)
        return
    # Elsewhere: 404, 405, or the framework's 307 to the path without its trailing slash.
    check(answer, Route(method, path, frozenset({307, *range(400, 500)})))
