"""Host and X-Forwarded-* headers: URLs and cookies come from APP_BASE_URL, never from the
request's headers, directly and behind uvicorn's proxy-headers middleware."""

from collections.abc import Iterator
from typing import Any

import pytest
from devserver.provider import FakeProvider
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from tests.helpers import APP_URL
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from .inputs import FEW, FORWARDING_HEADERS, ascii_value
from .rules import BY_PATH, EVIL, Answer, check, check_authorize_url, check_logout_url
from .sending import fresh, logged_in_client, send

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
        if logout.status_code == 200:  # "another site" sent it: the app asks, on its own URL
            assert 'action="/auth/logout?returnTo=' in logout.text
            assert EVIL not in logout.text
            same_site = {k: v for k, v in headers.items() if k not in ("origin", "referer")}
            logout = client.post("/auth/logout", params={"returnTo": returned}, headers=same_site)
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
