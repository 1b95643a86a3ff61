"""Fuzzed requests: query strings, headers, bodies and cookies for every route, raw bytes no
HTTP client would send, unknown paths and odd methods."""

import base64
from urllib.parse import quote

from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from .inputs import (
    FEW,
    FUZZ,
    HEADER_NAMES,
    accepts,
    header_value,
    hostile_text,
    query_pairs,
    texts,
)
from .rules import BY_PATH, BY_REQUEST, EVIL, MARKUP, ROUTES, Route, check
from .sending import asgi, jar_header, send


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
