"""What the app may answer to hostile input: the routes it has, and `check`, the rules every
answer follows (a 4xx or the documented success, no 5xx, no echoed markup, redirects only to
the app's own origin or the provider, cookies and headers built from nothing in the request)."""

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

from tests.helpers import APP_URL, ISSUER, query

APP = urlsplit(APP_URL)
AUTHORIZE = f"{ISSUER}/authorize?"
END_SESSION = f"{ISSUER}/logout?"
MARK = "h0st1le"  # in every markup payload, so an echo is easy to spot
EVIL = "evil-h0st1le.example"
SESSION_COOKIE = re.compile(r"app_session(\.\d+)?")
TX_COOKIE = re.compile(r"app_tx\.[A-Za-z0-9_-]{16,128}")
FLAG_COOKIES = ("app_logged_out", "app_silent_login")
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
    Route("GET", "/auth/logout", frozenset({200, 303})),  # 200: "Log out?" for other sites
    Route("GET", "/auth/profile", frozenset({401})),
    Route("POST", "/auth/backchannel-logout", frozenset({400, 415})),
    Route("GET", "/auth/frontchannel-logout", frozenset({200})),  # unknown iss/sid: ignored
    Route("GET", "/healthz", frozenset({200})),
    Route("GET", "/auth/access-token", frozenset({401})),  # with access_token_route only
    Route("GET", "/", frozenset({200})),
    Route("GET", "/profile", frozenset({303, 401})),
    Route("GET", "/api-example", frozenset({303, 401})),
]
BY_PATH = {route.path: route for route in KNOWN}
BASE_PATHS = set(BY_PATH) - {"/auth/access-token"}  # what every answer set generates


def generated_routes() -> list[Route]:
    """Every route of the app, in its OpenAPI schema or not (the browser-only auth routes are
    left out of it): routes added to the app (or by an answer) are fuzzed too, with the
    general rules (no 5xx, no echo, redirects only to the app or the provider) where this
    module does not know their answers. FastAPI's own API documentation pages are left
    out (they load scripts from a CDN; production apps do not serve them)."""
    from app.main import app  # built from the environment conftest.py set
    from fastapi.routing import iter_route_contexts  # routes of included routers too

    documentation = {app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    routes = []
    for route in iter_route_contexts(app.routes):
        if route.methods is None or route.path is None or route.path in documentation:
            continue
        for method in sorted(route.methods - {"HEAD"}):  # HEAD: GET without the body
            known = BY_PATH.get(route.path)
            if known is not None and known.method == method:
                routes.append(known)
            else:
                routes.append(
                    Route(method, route.path, frozenset(range(200, 500)), to_provider=True)
                )
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
        if name in FLAG_COOKIES:  # "you logged out", "silent login tried": no data in them
            assert line.split(";", 1)[0] in (f"{name}=1", f'{name}=""'), line[:200]
            continue
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
            assert MARK not in name, (tag, name)
            if name in ("href", "src", "action", "formaction") and value is not None:
                assert_same_origin(value.strip())
            if name in ("action", "formaction") and value is not None:
                # A form back to the app may carry the request's query (the "Log out?"
                # page POSTs it to the route, which checks it as the GET would).
                value = value.split("?", 1)[0]
            assert MARK not in (value or "") and EVIL not in (value or ""), (tag, name, value)
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
