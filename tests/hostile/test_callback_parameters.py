"""Callbacks of a real login transaction with hostile `error`, `error_description`, `code` and
`iss` values."""

from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from tests.helpers import ISSUER, query

from .inputs import FEW, accepts, hostile_text
from .rules import BY_PATH, EVIL, Answer, check
from .sending import fresh


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
