"""What a login asks the provider for is what the ID token must show: an organization
(Auth0), a recent login (`max_age`), a stronger login (`acr_values`)."""

import time
from collections.abc import Callable

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.auth import require_acr, require_recent_login
from app.auth.authorization import MULTI_FACTOR
from app.auth.urls import AUTH_PREFIX, LOGIN_PATH
from devserver.provider import FakeProvider
from tests.helpers import (
    add_session_route,
    install_session,
    log_in,
    make_session,
    query,
    start_login,
    stored_session,
)

HTML = {"Accept": "text/html"}
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


def finish(
    client: TestClient, provider: FakeProvider, authorize_url: str, user: str = "alice"
) -> httpx2.Response:
    """Log in at the provider and follow its redirect back to the callback (as a browser)."""
    return client.get(provider.login(authorize_url, user), headers=HTML)


# -- organizations ------------------------------------------------------------------------


def test_an_app_wide_organization_is_asked_for_and_checked(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    client = client_for(auth0_organization="org_acme")
    authorize_url = start_login(client, organization="org_other").headers["location"]

    assert query(authorize_url)["organization"] == "org_acme"  # the setting wins
    assert finish(client, provider, authorize_url).status_code == 303
    assert stored_session(client).user["org_id"] == "org_acme"  # type: ignore[union-attr]


def test_a_login_into_another_organization_fails(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    client = client_for(auth0_organization="org_acme")
    provider.id_token_claims = {"org_id": "org_other", "org_name": "other"}

    page = finish(client, provider, start_login(client).headers["location"])

    assert page.status_code == 400 and "another organization" in page.text
    assert stored_session(client) is None


def test_an_organization_given_by_name_is_matched_without_case(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    client = client_for(auth0_organization="Acme")

    assert log_in(client, provider).status_code == 303
    assert stored_session(client).user["org_name"] == "acme"  # type: ignore[union-attr]


def test_a_login_may_name_its_organization(client: TestClient, provider: FakeProvider) -> None:
    authorize_url = start_login(client, organization="org_acme").headers["location"]
    provider.id_token_claims = {"org_id": None}  # the provider forgot it

    assert finish(client, provider, authorize_url).status_code == 400


def test_an_invitation_link_logs_into_its_organization(
    client: TestClient, provider: FakeProvider
) -> None:
    # Auth0's invitation email links to the app's login route with both parameters.
    response = start_login(client, invitation="inv_123", organization="org_acme")
    params = query(response.headers["location"])

    assert (params["invitation"], params["organization"]) == ("inv_123", "org_acme")
    assert finish(client, provider, response.headers["location"], "invitee").status_code == 303
    assert stored_session(client).user["org_id"] == "org_acme"  # type: ignore[union-attr]


# -- recent login (max_age) -----------------------------------------------------------------


def test_an_old_login_is_sent_to_log_in_again(app: FastAPI, client: TestClient) -> None:
    add_session_route(app, "/payouts", require_recent_login(300))
    install_session(client, make_session(auth_time=int(time.time()) - 3600))

    response = client.get("/payouts", headers=HTML)

    assert response.status_code == 303
    assert response.headers["location"] == f"{LOGIN_PATH}?max_age=300&returnTo=%2Fpayouts"


def test_a_recent_login_passes(app: FastAPI, client: TestClient) -> None:
    add_session_route(app, "/payouts", require_recent_login(300))
    install_session(client, make_session(auth_time=int(time.time()) - 60))

    assert client.get("/payouts").status_code == 200


def test_a_session_that_does_not_say_when_the_user_authenticated_logs_in_again(
    app: FastAPI, client: TestClient, provider: FakeProvider
) -> None:
    add_session_route(app, "/payouts", require_recent_login(300))
    # Providers may leave auth_time out unless max_age is asked for (Core §2); a login
    # now may have been a single sign-on where nobody entered credentials.
    provider.id_token_claims = {"auth_time": None}
    assert log_in(client, provider).status_code == 303

    response = client.get("/payouts", headers=HTML)

    assert response.status_code == 303
    assert query(response.headers["location"])["max_age"] == "300"


def test_ending_the_other_sessions_does_not_make_an_old_login_recent(
    app: FastAPI, client: TestClient
) -> None:
    """Cookie sessions are carried on as a new login by `end-others`: it keeps when and how
    the user authenticated (it made recent-login pages open without a new login)."""
    add_session_route(app, "/payouts", require_recent_login(300))
    an_hour_ago = int(time.time()) - 3600
    old = make_session(auth_time=an_hour_ago, acr=MULTI_FACTOR, amr=("pwd", "otp"))
    install_session(client, old)

    response = client.post(f"{AUTH_PREFIX}/sessions/end-others", headers=SAME_ORIGIN)

    assert response.status_code == 204
    session = stored_session(client)
    assert session is not None
    assert (session.auth_time, session.acr, session.amr) == (an_hour_ago, MULTI_FACTOR, old.amr)
    assert client.get("/payouts", headers=HTML).status_code == 303


def test_logging_in_again_records_when(
    app: FastAPI, client: TestClient, provider: FakeProvider
) -> None:
    add_session_route(app, "/payouts", require_recent_login(300))
    install_session(client, make_session(auth_time=int(time.time()) - 3600))
    login = client.get(client.get("/payouts", headers=HTML).headers["location"])
    assert query(login.headers["location"])["max_age"] == "300"

    assert client.get(provider.login(login.headers["location"])).headers["location"] == "/payouts"
    assert client.get("/payouts").status_code == 200
    session = stored_session(client)
    assert session is not None and abs(session.auth_time - time.time()) < 5  # type: ignore[operator]


@pytest.mark.parametrize("auth_time", [None, "yesterday", True])
def test_max_age_needs_an_auth_time(
    client: TestClient, provider: FakeProvider, auth_time: object
) -> None:
    provider.id_token_claims = {"auth_time": auth_time}

    page = finish(client, provider, start_login(client, max_age="300").headers["location"])

    assert page.status_code == 400 and "auth_time" in page.text
    assert stored_session(client) is None


def test_a_provider_that_did_not_ask_again_fails_the_login(
    client: TestClient, provider: FakeProvider
) -> None:
    provider.id_token_claims = {"auth_time": int(time.time()) - 3600}

    page = finish(client, provider, start_login(client, max_age="300").headers["location"])

    assert page.status_code == 400 and "log in again" in page.text


def test_max_age_that_is_not_a_number_is_not_sent(client: TestClient) -> None:
    params = query(start_login(client, max_age="soon").headers["location"])

    assert "max_age" not in params


# -- stronger login (acr) -----------------------------------------------------------------


def test_a_page_that_needs_a_second_factor(
    app: FastAPI, client: TestClient, provider: FakeProvider
) -> None:
    add_session_route(app, "/vault", require_acr(MULTI_FACTOR))
    assert log_in(client, provider).status_code == 303
    assert stored_session(client).acr is None  # type: ignore[union-attr]

    login = client.get(client.get("/vault", headers=HTML).headers["location"])
    assert query(login.headers["location"])["acr_values"] == MULTI_FACTOR
    assert client.get(provider.login(login.headers["location"])).status_code == 303

    assert client.get("/vault").status_code == 200
    session = stored_session(client)
    assert session is not None and session.acr == MULTI_FACTOR
    assert session.amr == ("pwd", "mfa")


def test_a_provider_that_did_not_give_the_asked_acr_fails_the_login(
    client: TestClient, provider: FakeProvider
) -> None:
    provider.id_token_claims = {"acr": "http://example.com/password-only"}

    page = finish(
        client, provider, start_login(client, acr_values=MULTI_FACTOR).headers["location"]
    )

    assert page.status_code == 400 and "acr" in page.text
    assert stored_session(client) is None


def test_a_session_records_how_the_user_logged_in(
    client: TestClient, provider: FakeProvider
) -> None:
    provider.id_token_claims = {"amr": ["pwd", "otp"], "acr": "urn:example:silver"}

    assert log_in(client, provider).status_code == 303

    session = stored_session(client)
    assert session is not None
    assert (session.acr, session.amr) == ("urn:example:silver", ("pwd", "otp"))
    assert session.auth_time is not None
