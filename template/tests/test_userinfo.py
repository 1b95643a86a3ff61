"""Claims from UserInfo: providers that leave `profile`/`email` claims out of the ID token
(OIDC Core §5.4) still give the session its user's name and email."""

import logging
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from starlette.responses import JSONResponse

from app.auth.routes import MAX_USERINFO_CLAIM
from devserver.provider import FakeProvider
from tests.helpers import PROFILE, log_in


@pytest.fixture
def thin_id_tokens(provider: FakeProvider) -> FakeProvider:
    """A provider whose ID tokens carry no profile or email claims."""
    provider.id_token_claims = {"name": None, "email": None, "email_verified": None}
    return provider


def test_missing_claims_come_from_userinfo(
    client: TestClient, thin_id_tokens: FakeProvider
) -> None:
    assert log_in(client, thin_id_tokens).status_code == 303

    user = client.get(PROFILE).json()
    assert (user["name"], user["email"]) == ("Alice", "alice@example.com")
    assert thin_id_tokens.requests.count("userinfo") == 1


def test_a_complete_id_token_needs_no_userinfo(client: TestClient, provider: FakeProvider) -> None:
    assert log_in(client, provider).status_code == 303

    assert "userinfo" not in provider.requests


def test_the_id_token_wins_over_userinfo(client: TestClient, thin_id_tokens: FakeProvider) -> None:
    thin_id_tokens.id_token_claims["name"] = "Alice From The ID Token"

    assert log_in(client, thin_id_tokens).status_code == 303

    assert client.get(PROFILE).json()["name"] == "Alice From The ID Token"


def test_userinfo_about_another_user_is_not_used(
    client: TestClient, thin_id_tokens: FakeProvider
) -> None:
    thin_id_tokens.replies["userinfo"] = JSONResponse({"sub": "mallory", "email": "m@evil.example"})

    assert log_in(client, thin_id_tokens).status_code == 303

    user = client.get(PROFILE).json()
    assert user["sub"] == "alice" and "email" not in user


def test_a_failing_userinfo_does_not_fail_the_login(
    client: TestClient, thin_id_tokens: FakeProvider
) -> None:
    thin_id_tokens.replies["userinfo"] = JSONResponse({"error": "server_error"}, status_code=500)

    assert log_in(client, thin_id_tokens).status_code == 303
    assert client.get(PROFILE).json()["sub"] == "alice"


@pytest.mark.parametrize(("setting", "calls"), [("never", 0), ("always", 1)])
def test_the_setting_turns_it_off_or_always_on(
    client_for: Callable[..., TestClient], provider: FakeProvider, setting: str, calls: int
) -> None:
    client = client_for(auth_userinfo=setting)

    assert log_in(client, provider).status_code == 303

    assert provider.requests.count("userinfo") == calls


def test_a_huge_userinfo_claim_is_left_out_of_the_session(
    client: TestClient, thin_id_tokens: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    # A picture as a data: URL, or a provider's user-editable field: it made the session
    # too large to keep (a 500 at every login of that user).
    thin_id_tokens.users["alice"] = {"name": "Alice " + "x" * MAX_USERINFO_CLAIM}
    caplog.set_level(logging.WARNING, logger="app.auth")

    assert log_in(client, thin_id_tokens).status_code == 303

    user = client.get(PROFILE).json()
    assert "name" not in user and user["email"] == "alice@example.com"
    assert "auth.userinfo_claims_too_large: ['name']" in caplog.messages


def test_a_long_name_in_another_script_is_kept(
    client: TestClient, thin_id_tokens: FakeProvider
) -> None:
    name = "山田" * 500  # 1,000 characters: 6,000 as escaped JSON, within the bound as text
    thin_id_tokens.users["alice"] = {"name": name}

    assert log_in(client, thin_id_tokens).status_code == 303

    assert client.get(PROFILE).json()["name"] == name
