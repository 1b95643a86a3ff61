"""The OpenAPI schema (/docs) says which routes take which credentials, and leaves out the
routes only browsers follow."""

from fastapi.testclient import TestClient

from app.auth.urls import AUTH_PREFIX, CALLBACK_PATH, LOGIN_PATH

BROWSER_ONLY = (
    LOGIN_PATH,
    CALLBACK_PATH,
    f"{AUTH_PREFIX}/logout",
    f"{AUTH_PREFIX}/backchannel-logout",
)


def schema(client: TestClient) -> dict[str, dict[str, dict[str, object]]]:
    paths: dict[str, dict[str, dict[str, object]]] = client.get("/openapi.json").json()["paths"]
    return paths


def test_browser_only_routes_are_left_out(client: TestClient) -> None:
    paths = schema(client)

    assert [path for path in BROWSER_ONLY if path in paths] == []
    assert f"{AUTH_PREFIX}/profile" in paths


def test_session_routes_name_the_session_cookie(client: TestClient) -> None:
    paths = schema(client)
    security_schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]

    assert paths[f"{AUTH_PREFIX}/profile"]["get"]["security"] == [{"APIKeyCookie": []}]
    assert paths[f"{AUTH_PREFIX}/sessions"]["get"]["security"] == [{"APIKeyCookie": []}]
    assert security_schemes["APIKeyCookie"]["in"] == "cookie"


def test_api_routes_name_the_bearer_scheme(client: TestClient) -> None:
    operation = schema(client)["/api/orders"]["get"]
    security_schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]

    assert operation["security"] == [{"HTTPBearer": []}]
    assert security_schemes["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token for this app's API.",
    }
