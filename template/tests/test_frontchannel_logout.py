"""OpenID Connect Front-Channel Logout 1.0: the provider's logout page frames the app's
`/auth/frontchannel-logout?iss=...&sid=...`, which ends that provider session here."""

from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from app.auth.urls import AUTH_PREFIX
from devserver.provider import FakeProvider
from tests.helpers import APP_URL, ISSUER, LOGOUT, PROFILE, log_in, stored_session

FRONTCHANNEL = f"{AUTH_PREFIX}/frontchannel-logout"


@pytest.fixture
def frontchannel(provider: FakeProvider) -> FakeProvider:
    provider.frontchannel_logout_uri = APP_URL + FRONTCHANNEL
    return provider


def sid_of(client: TestClient) -> str:
    session = stored_session(client)
    assert session is not None and session.sid
    return session.sid


def test_the_provider_ends_a_provider_session_here(
    logged_in: TestClient, frontchannel: FakeProvider
) -> None:
    page = logged_in.get(frontchannel.frontchannel_logout_url(sid_of(logged_in)))

    assert page.status_code == 200
    assert page.headers["content-security-policy"] == f"frame-ancestors {ISSUER}"
    assert "no-store" in page.headers["cache-control"]
    assert logged_in.get(PROFILE).status_code == 401


def test_it_works_without_the_browsers_cookies(
    logged_in: TestClient, frontchannel: FakeProvider
) -> None:
    # An iframe of another site gets no SameSite=Lax cookies: the sid is what counts.
    url = frontchannel.frontchannel_logout_url(sid_of(logged_in))
    cookies = dict(logged_in.cookies)
    logged_in.cookies.clear()

    assert logged_in.get(url).status_code == 200
    logged_in.cookies.update(cookies)
    assert logged_in.get(PROFILE).status_code == 401


@pytest.mark.parametrize(
    "params",
    [
        {"iss": "https://evil.example", "sid": "SID"},  # another issuer
        {"sid": "SID"},  # no issuer
        {"iss": ISSUER},  # no provider session
        {},
        {"iss": ISSUER, "sid": "another-provider-session"},
    ],
)
def test_requests_that_are_not_the_providers_end_nothing(
    logged_in: TestClient, params: dict[str, str]
) -> None:
    sid = sid_of(logged_in)
    query = {name: (sid if value == "SID" else value) for name, value in params.items()}

    page = logged_in.get(f"{FRONTCHANNEL}?{urlencode(query)}")

    assert page.status_code == 200
    assert logged_in.get(PROFILE).status_code == 200


def test_the_development_provider_frames_it_at_logout(
    client: TestClient, frontchannel: FakeProvider
) -> None:
    assert log_in(client, frontchannel).status_code == 303
    sid = sid_of(client)
    to_provider = client.get(LOGOUT).headers["location"]
    provider_client = TestClient(frontchannel.app, base_url=ISSUER)

    page = provider_client.get(to_provider)

    assert (
        f'<iframe src="{frontchannel.frontchannel_logout_url(sid).replace("&", "&amp;")}"'
        in page.text
    )
