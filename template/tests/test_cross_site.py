"""Routes that change state at a link (logout) act only on requests from this app's pages;
a link on another site gets a page that asks first. Requests carry the headers a browser
sends (`Sec-Fetch-Site`, `Origin`, `Referer`)."""

import pytest
from fastapi.testclient import TestClient

from devserver.provider import FakeProvider
from tests.helpers import APP_URL, ISSUER, LOGOUT, PROFILE

FROM_ANOTHER_SITE = [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain is another site's page too
    {"Origin": "https://evil.example"},
    {"Referer": "https://evil.example/page"},
]
FROM_THIS_APP = [
    {"Sec-Fetch-Site": "same-origin"},
    {"Sec-Fetch-Site": "none"},  # typed in the address bar, or a bookmark
    {"Referer": f"{APP_URL}/profile"},
    {},  # no browser page at all (curl, scripts)
]


@pytest.mark.parametrize("headers", FROM_ANOTHER_SITE)
def test_a_logout_link_on_another_site_asks_first(
    logged_in: TestClient, provider: FakeProvider, headers: dict[str, str]
) -> None:
    page = logged_in.get(LOGOUT, params={"returnTo": "/bye"}, headers=headers)

    assert page.status_code == 200 and "Log out?" in page.text
    assert f'action="{LOGOUT}?returnTo=%2Fbye"' in page.text
    assert page.headers["cache-control"] == "no-store"
    assert logged_in.get(PROFILE).status_code == 200  # still logged in
    assert "logout" not in provider.requests


@pytest.mark.parametrize("headers", FROM_THIS_APP)
def test_a_logout_from_this_app_logs_out(logged_in: TestClient, headers: dict[str, str]) -> None:
    response = logged_in.get(LOGOUT, headers=headers)

    assert response.status_code == 303 and response.headers["location"].startswith(ISSUER)
    assert logged_in.get(PROFILE).status_code == 401


def test_the_confirmation_button_logs_out(logged_in: TestClient) -> None:
    headers = {"Sec-Fetch-Site": "same-origin", "Origin": APP_URL}

    response = logged_in.post(f"{LOGOUT}?returnTo=%2Fbye", headers=headers)

    assert response.status_code == 303
    assert (
        "post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A8000%2Fbye"
        in response.headers["location"]
    )
    assert logged_in.get(PROFILE).status_code == 401


@pytest.mark.parametrize("headers", FROM_ANOTHER_SITE[:3])
def test_a_logout_form_on_another_site_is_refused(
    logged_in: TestClient, headers: dict[str, str]
) -> None:
    assert logged_in.post(LOGOUT, headers=headers).status_code == 403
    assert logged_in.get(PROFILE).status_code == 200
