"""Per-route authorization: roles, permissions, claims and predicates in a route's signature."""

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.auth import (
    require,
    require_claims,
    require_permissions,
    require_roles,
)
from app.auth.urls import LOGIN_PATH
from devserver.provider import FakeProvider
from tests.helpers import PROFILE, add_session_route, install_session, log_in, make_session

HTML = {"Accept": "text/html"}
JSON = {"Accept": "application/json"}
SessionDependency = Callable[..., object]


def test_the_readme_example_user_with_a_role_may_open_an_admin_page(
    app: FastAPI, login_as: Callable[..., TestClient]
) -> None:
    add_session_route(app, "/admin", require_roles("admin"))

    client = login_as("bob", roles=["admin"])

    assert client.get("/admin").json() == {"sub": "bob"}
    assert client.get(PROFILE).json()["roles"] == ["admin"]


def test_a_user_without_the_role_gets_403_as_a_page_or_json(
    app: FastAPI, login_as: Callable[..., TestClient]
) -> None:
    add_session_route(app, "/admin", require_roles("admin"))

    client = login_as("carol", roles=["editor"])

    page = client.get("/admin", headers=HTML)
    assert page.status_code == 403 and "Access denied" in page.text
    assert client.get("/admin", headers=JSON).json()["error"] == "forbidden"


def test_every_named_role_is_needed(app: FastAPI, login_as: Callable[..., TestClient]) -> None:
    add_session_route(app, "/audit", require_roles("admin", "auditor"))

    assert login_as("bob", roles=["admin"]).get("/audit").status_code == 403
    assert login_as("dave", roles=["admin", "auditor"]).get("/audit").status_code == 200


def test_anonymous_browsers_log_in_first_and_other_clients_get_401(
    app: FastAPI, client: TestClient
) -> None:
    add_session_route(app, "/admin", require_roles("admin"))

    redirect = client.get("/admin?tab=users", headers=HTML)
    assert redirect.status_code == 303
    assert redirect.headers["location"] == f"{LOGIN_PATH}?returnTo=%2Fadmin%3Ftab%3Dusers"
    assert client.get("/admin", headers=JSON).status_code == 401


def test_roles_come_from_the_claim_the_settings_name(
    client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    claim = "https://app.example.com/roles"
    client = client_for(auth_roles_claim=claim)
    add_session_route(client.app, "/admin", require_roles("admin"))  # type: ignore[arg-type]
    provider.users["bob"] = {claim: ["admin"], "roles": ["ignored"]}

    assert log_in(client, provider, "bob").status_code == 303
    assert client.get("/admin").status_code == 200
    assert client.get(PROFILE).json()["roles"] == ["admin"]


def test_permissions(app: FastAPI, login_as: Callable[..., TestClient]) -> None:
    add_session_route(app, "/reports", require_permissions("read:reports"))

    assert login_as("bob", permissions=["read:reports"]).get("/reports").status_code == 200
    assert login_as("carol", permissions=["write:reports"]).get("/reports").status_code == 403


def test_roles_that_are_not_a_list_of_names_grant_nothing(
    app: FastAPI, login_as: Callable[..., TestClient]
) -> None:
    add_session_route(app, "/admin", require_roles("admin"))

    client = login_as("mallory", roles={"admin": True})

    assert client.get("/admin").status_code == 403
    assert "roles" not in client.get(PROFILE).json()


@pytest.mark.parametrize(("verified", "status"), [(True, 200), (False, 403), (None, 403)])
def test_claims_with_given_values(
    app: FastAPI, login_as: Callable[..., TestClient], verified: bool | None, status: int
) -> None:
    add_session_route(app, "/billing", require_claims(email_verified=True))

    client = login_as("bob", email_verified=verified)

    assert client.get("/billing").status_code == status


def test_any_predicate_of_the_session(app: FastAPI, client: TestClient) -> None:
    add_session_route(
        app, "/corp", require(lambda session: session.user["email"].endswith("@corp.example"))
    )

    install_session(client, make_session(user={"sub": "bob", "email": "bob@corp.example"}))
    assert client.get("/corp").status_code == 200
    install_session(client, make_session(user={"sub": "eve", "email": "eve@evil.example"}))
    assert client.get("/corp").status_code == 403
