"""Back-channel logout (OpenID Connect Back-Channel Logout 1.0): the provider ends sessions."""

import time
from collections.abc import Callable
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient
from joserfc.jwk import RSAKey

from app.auth.errors import StoreUnavailable
from app.auth.tokens import MAX_TOKEN_LENGTH
from devserver.provider import LOGOUT_EVENT, FakeProvider
from tests.conftest import ELSEWHERE_WITHIN
from tests.helpers import (
    BACKCHANNEL_LOGOUT,
    LOGOUT,
    PROFILE,
    auth_of,
    claims_of,
    log_in,
    post_logout,
    replace_cookie,
    start_login,
    stored_session,
    token_of_length,
    unsigned_token,
)

ROUTE = BACKCHANNEL_LOGOUT
FORM = {"content-type": "application/x-www-form-urlencoded"}


def assert_refused(response: httpx2.Response, still_logged_in: TestClient) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    assert response.json()["error_description"]  # what was wrong, for the provider's logs
    assert still_logged_in.get(PROFILE).status_code == 200


def test_a_logout_for_the_user_ends_their_sessions(
    logged_in: TestClient, client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    bob = client_for()
    log_in(bob, provider, "bob")

    response = post_logout(logged_in, provider.logout_token(sub="alice"))

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert logged_in.get(PROFILE).status_code == 401
    assert bob.get(PROFILE).status_code == 200


def test_a_logout_for_a_provider_session_ends_only_that_session(
    logged_in: TestClient, client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    other_device = client_for()
    log_in(other_device, provider, "alice")
    session = stored_session(logged_in)
    assert session is not None and session.sid

    assert post_logout(logged_in, provider.logout_token(sid=session.sid)).status_code == 200

    assert logged_in.get(PROFILE).status_code == 401
    assert other_device.get(PROFILE).status_code == 200


def test_a_provider_session_ended_before_its_login_finished_stays_ended(
    client: TestClient, provider: FakeProvider
) -> None:
    back_to_app = provider.login(start_login(client).headers["location"], "alice")
    sid = provider.session_id(back_to_app)
    assert post_logout(client, provider.logout_token(sid=sid)).status_code == 200

    finished = client.get(back_to_app)  # the browser comes back after the logout

    assert finished.status_code == 401
    assert "ended" in finished.text
    assert client.get(PROFILE).status_code == 401


def test_sid_and_sub_together(logged_in: TestClient, provider: FakeProvider) -> None:
    session = stored_session(logged_in)
    assert session is not None

    token = provider.logout_token(sub="alice", sid=session.sid)
    assert post_logout(logged_in, token).status_code == 200
    assert logged_in.get(PROFILE).status_code == 401


def test_the_logout_reaches_every_app_instance(
    logged_in: TestClient, client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    other_instance = client_for()  # same store, another app object

    assert post_logout(other_instance, provider.logout_token(sub="alice")).status_code == 200
    assert logged_in.get(PROFILE).status_code == 401


def test_the_logout_holds_at_once_where_the_session_is_in_use(
    client: TestClient, client_for: Callable[..., TestClient], provider: FakeProvider
) -> None:
    """Also where the store keeps what it read in memory: its next request (SQL: its
    next request after the store's window)."""
    other_instance = client_for()
    for attempt in range(10):
        user = f"user-{attempt}"
        log_in(client, provider, user)
        for _ in range(5):  # the first read opens a Redis cache's connection
            assert client.get(PROFILE).status_code == 200
            time.sleep(0.02)

        assert post_logout(other_instance, provider.logout_token(sub=user)).status_code == 200
        time.sleep(ELSEWHERE_WITHIN)
        assert client.get(PROFILE).status_code == 401, f"attempt {attempt}"


def test_a_token_without_exp_is_bounded_by_its_age(
    logged_in: TestClient, provider: FakeProvider
) -> None:
    # Its replay record is kept as long as such a token would be accepted.
    assert post_logout(logged_in, provider.logout_token(sub="alice", exp=None)).status_code == 200
    assert logged_in.get(PROFILE).status_code == 401


def test_a_later_login_is_not_affected(logged_in: TestClient, provider: FakeProvider) -> None:
    assert post_logout(logged_in, provider.logout_token(sub="alice")).status_code == 200

    log_in(logged_in, provider, "alice")
    assert logged_in.get(PROFILE).status_code == 200


def test_a_replayed_token_is_refused(logged_in: TestClient, provider: FakeProvider) -> None:
    token = provider.logout_token(sub="alice")
    assert post_logout(logged_in, token).status_code == 200
    log_in(logged_in, provider, "alice")

    assert_refused(post_logout(logged_in, token), logged_in)


def test_a_logout_the_store_failed_holds_when_the_provider_sends_it_again(
    logged_in: TestClient, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store that times out may still carry the write out later (Redis runs the queued
    command): the provider's second delivery of the token must still end the session."""
    tokens = auth_of(logged_in).logout_tokens
    claim = tokens.claim

    async def times_out_once(jti: str, *, until: int) -> bool:
        monkeypatch.setattr(tokens, "claim", claim)
        await claim(jti, until=until)  # done, but the answer is lost
        raise StoreUnavailable()

    monkeypatch.setattr(tokens, "claim", times_out_once)
    token = provider.logout_token(sub="alice")

    assert post_logout(logged_in, token).status_code == 503
    post_logout(logged_in, token)  # the provider retries

    assert logged_in.get(PROFILE).status_code == 401


def test_a_replayed_token_is_refused_by_an_instance_started_later(
    logged_in: TestClient, provider: FakeProvider, client_for: Callable[..., TestClient]
) -> None:
    token = provider.logout_token(sub="alice")
    assert post_logout(logged_in, token).status_code == 200

    later = client_for()  # its first write purges expired records, and only those
    log_in(later, provider, "alice")
    assert_refused(post_logout(later, token), later)


def test_a_copied_cookie_is_dead_after_logout(logged_in: TestClient) -> None:
    copied = dict(logged_in.cookies.items())
    logged_in.get(LOGOUT)

    for name, value in copied.items():
        replace_cookie(logged_in, name, value)
    assert logged_in.get(PROFILE).status_code == 401


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iss": "https://other.test"}, "issuer"),
        ({"aud": "another-client"}, "audience"),
        ({"iat": None}, "no iat"),
        ({"iat": int(time.time()) + 3600}, "iat in the future"),
        ({"iat": int(time.time()) - 3600, "exp": None}, "too old"),
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"jti": None}, "no jti"),
        ({"jti": 42}, "jti not a string"),
        ({"events": None}, "no events"),
        ({"events": {"http://example.com/other": {}}}, "other event"),
        ({"events": {LOGOUT_EVENT: "yes"}}, "event not an object"),
        ({"events": [LOGOUT_EVENT]}, "events not an object"),
        ({"sub": None}, "neither sub nor sid"),
        ({"nonce": "n-0S6_WzA2Mj"}, "nonce present"),
        ({"sid": 12}, "sid not a string"),
    ],
)
def test_invalid_logout_tokens_are_refused(
    logged_in: TestClient, provider: FakeProvider, claims: dict[str, Any], reason: str
) -> None:
    token = provider.logout_token(**{"sub": "alice", **claims})

    assert_refused(post_logout(logged_in, token), logged_in)


@pytest.mark.parametrize(
    "header",
    [{"typ": "JWT"}, {"typ": "logout+jwt"}, {"typ": "application/logout+jwt"}, {"typ": None}],
)
def test_token_types_accepted(
    logged_in: TestClient, provider: FakeProvider, header: dict[str, Any]
) -> None:
    token = provider.logout_token(sub="alice", header=header)

    assert post_logout(logged_in, token).status_code == 200


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(
            lambda p: p.logout_token(sub="alice", header={"typ": "at+jwt"}), id="wrong-typ"
        ),
        pytest.param(
            lambda p: unsigned_token(claims_of(p.logout_token(sub="alice"))), id="alg-none"
        ),
        pytest.param(lambda p: p.logout_token(sub="alice")[:-6] + "AAAAAA", id="bad-signature"),
        pytest.param(
            lambda p: p.logout_token(sub="alice", header={"kid": "unknown"}), id="unknown-kid"
        ),
        pytest.param(lambda p: "not.a.jwt", id="garbage"),
        pytest.param(lambda p: "x" * 20_000, id="oversized"),
    ],
)
def test_forged_tokens_are_refused(
    logged_in: TestClient, provider: FakeProvider, forge: Callable[[FakeProvider], str]
) -> None:
    assert_refused(post_logout(logged_in, forge(provider)), logged_in)


def test_tokens_up_to_the_size_limit_are_read(
    logged_in: TestClient, provider: FakeProvider
) -> None:
    def make(header_pad: str, claims_pad: str) -> str:
        return provider.logout_token(sub="alice", header={"cty": f"t{header_pad}"}, pad=claims_pad)

    assert_refused(post_logout(logged_in, token_of_length(MAX_TOKEN_LENGTH + 1, make)), logged_in)
    assert post_logout(logged_in, token_of_length(MAX_TOKEN_LENGTH, make)).status_code == 200


def test_a_token_signed_by_another_key_is_refused(
    logged_in: TestClient, provider: FakeProvider
) -> None:
    genuine = provider.keys
    provider.keys = [RSAKey.generate_key(2048, parameters={"kid": "dev-1"})]
    forged = provider.logout_token(sub="alice")
    provider.keys = genuine

    assert_refused(post_logout(logged_in, forged), logged_in)


def test_an_id_token_is_not_a_logout_token(logged_in: TestClient, provider: FakeProvider) -> None:
    id_token = provider.issued[-1]["id_token"]

    assert_refused(post_logout(logged_in, id_token), logged_in)


def test_rotated_provider_keys_are_fetched(logged_in: TestClient, provider: FakeProvider) -> None:
    provider.rotate_keys()

    assert post_logout(logged_in, provider.logout_token(sub="alice")).status_code == 200


@pytest.mark.parametrize(
    ("send", "status"),
    [
        (lambda c: c.get(ROUTE), 405),
        (lambda c: c.post(ROUTE, json={"logout_token": "x"}), 415),
        (lambda c: c.post(ROUTE, files={"logout_token": ("t", b"x")}), 415),
        (lambda c: c.post(ROUTE, content=b"", headers=FORM), 400),
        (lambda c: c.post(ROUTE, content=b"logout_token=a&logout_token=b", headers=FORM), 400),
        (lambda c: c.post(ROUTE, content=b"other=1", headers=FORM), 400),
        (lambda c: c.post(ROUTE, content=b"logout_token=\xff\xfe", headers=FORM), 400),
        (lambda c: c.post(ROUTE, content=b"logout_token=" + b"a" * 70_000, headers=FORM), 400),
        (lambda c: c.post(ROUTE, content=b"%%%&&&===", headers=FORM), 400),
    ],
)
def test_malformed_requests_get_4xx(
    logged_in: TestClient, send: Callable[[TestClient], httpx2.Response], status: int
) -> None:
    response = send(logged_in)

    assert response.status_code == status
    assert logged_in.get(PROFILE).status_code == 200
