"""Access tokens refreshed against the real provider: rotation, one refresh at a time, revocation.

The provider rotates refresh tokens and revokes the whole grant when a spent one is used again, so
an app that refreshes twice with one token, or keeps a spent token, loses the session. Its test-only
routes set how each account's tokens are issued and count what happened (``AccountActivity``); every
test logs in a user of its own, so the tests share the provider and the token-route app.

Timing: the apps refresh a token due within ``LEEWAY`` seconds. An account's tokens last ``DUE_TTL``
(due at once: every use refreshes) or ``LASTING_TTL`` (fresh for 3-4 s, then due), so tests switch
the provider between the two instead of waiting for tokens to expire.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from app_flows import HTML, http_login, is_session_cookie
from components import (
    AppServer,
    OidcProvider,
    PostgresServer,
    RedisServer,
    authorize_url,
    free_port,
    pkce_pair,
    provider_login,
    register_app_client,
    wait_for,
)

from tooling.rendering import Project, installed_project

if TYPE_CHECKING:
    from app_flows import StartApp

JSON = {"Accept": "application/json"}
LEEWAY = 60  # ACCESS_TOKEN_LEEWAY of the apps (their default, set explicitly)
DUE_TTL = 30  # seconds: shorter than the leeway, so the app refreshes on every use
LASTING_TTL = LEEWAY + 4  # refreshed tokens stay fresh for 3 to 4 s (expires_at is whole seconds)
REFRESH_DELAY = 0.5  # seconds the provider holds back refresh answers, so requests overlap them
APP_SETTINGS = {"ACCESS_TOKEN_LEEWAY": str(LEEWAY)}
REQUEST_TIMEOUT = 15.0
EXPIRES_AT = re.compile(r'valid until <time datetime="([^"]+)">')


def new_user() -> str:
    """A login id of this test only: the provider's counters are per account."""
    return f"refresh-{secrets.token_hex(4)}"


def log_in(app: AppServer, user: str) -> httpx.Cookies:
    """Log ``user`` in to ``app`` with plain HTTP; returns the app's session cookies only."""
    cookies = httpx.Cookies()
    with httpx.Client(timeout=REQUEST_TIMEOUT) as client:
        http_login(client, app, user)
        for cookie in client.cookies.jar:
            if is_session_cookie(cookie.name) and cookie.value is not None:
                cookies.set(cookie.name, cookie.value, domain=cookie.domain, path=cookie.path)
    assert cookies, "no session cookie after the login"
    return cookies


def browser(cookies: httpx.Cookies) -> httpx.Client:
    """A client that keeps the session cookies up to date, like a browser (all ports alike)."""
    return httpx.Client(cookies=cookies, timeout=REQUEST_TIMEOUT)


def concurrently(
    urls: Sequence[str], cookies: httpx.Cookies, headers: dict[str, str]
) -> tuple[list[httpx.Response], httpx.Cookies]:
    """GET all ``urls`` at once, each on a connection of its own, with the same session cookies.

    Returns the responses in order, and the cookies as the responses left them. The event loop
    runs in a thread of its own: Playwright's sync API may hold one in this thread.
    """

    async def send_all() -> tuple[list[httpx.Response], httpx.Cookies]:
        limits = httpx.Limits(max_connections=len(urls), max_keepalive_connections=len(urls))
        async with httpx.AsyncClient(
            cookies=cookies, headers=headers, limits=limits, timeout=REQUEST_TIMEOUT
        ) as client:
            responses = await asyncio.gather(*(client.get(url) for url in urls))
            return list(responses), client.cookies

    with ThreadPoolExecutor(max_workers=1) as loop_thread:
        return loop_thread.submit(lambda: asyncio.run(send_all())).result()


def access_token(client: httpx.Client, app: AppServer) -> dict[str, Any]:
    """``GET /auth/access-token``: ``{"token", "expires_at", "scope"}``."""
    response = client.get(app.url("/auth/access-token"), headers=JSON)
    assert response.status_code == 200, response.text
    return dict(response.json())


def api_example_expiry(page: httpx.Response, user: str) -> int:
    """Check that ``/api-example`` shows ``user``'s UserInfo; returns its token's ``expires_at``."""
    assert page.status_code == 200, page.text[:1000]
    assert f'"sub": "{user}"' in page.text, page.text[:1000]
    found = EXPIRES_AT.search(page.text)
    assert found is not None, page.text[:1000]
    return int(datetime.fromisoformat(found.group(1)).timestamp())


def userinfo(provider: OidcProvider, token: str) -> httpx.Response:
    """The provider's UserInfo for ``token``."""
    headers = {"Authorization": f"Bearer {token}"}
    endpoint = provider.metadata()["userinfo_endpoint"]
    return httpx.get(endpoint, headers=headers, timeout=REQUEST_TIMEOUT)


def sleep_until_due(expires_at: int) -> None:
    """Wait until the apps consider a token expiring at ``expires_at`` due for a refresh."""
    time.sleep(max(0.0, expires_at - LEEWAY - time.time() + 0.05))


def assert_no_trouble(provider: OidcProvider, user: str) -> None:
    """No failed token request, no revoked grant: the user's one grant is alive."""
    activity = provider.account_activity(user)
    assert activity.token_errors == {}, activity
    assert activity.revoked_grants == {}, activity
    assert activity.live_grants == 1, activity


def assert_session_ended(response: httpx.Response) -> None:
    """401 ``session_ended`` (JSON), and the answer deletes the session cookie."""
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "session_ended"
    cleared = [c for c in response.headers.get_list("set-cookie") if c.startswith("app_session")]
    assert cleared, response.headers
    assert all("max-age=0" in cookie.lower() for cookie in cleared), cleared


# --- The provider under test --------------------------------------------------------------------


def test_the_provider_rotates_refresh_tokens_and_revokes_the_grant_on_reuse(
    oidc_provider: OidcProvider,
) -> None:
    """What the app tests rely on: rotation, reuse detection and the provider's counters."""
    redirect_uri = f"http://127.0.0.1:{free_port()}/auth/callback"  # never visited
    client = oidc_provider.register_client([redirect_uri])
    credentials = (client.client_id, client.client_secret)
    user = new_user()
    oidc_provider.configure_account(user, access_token_ttl=DUE_TTL)
    verifier, challenge = pkce_pair()
    with httpx.Client(timeout=REQUEST_TIMEOUT) as http:
        callback = provider_login(
            http, authorize_url(oidc_provider, client.client_id, redirect_uri, challenge), user
        )
    [code] = parse_qs(urlsplit(callback).query)["code"]

    def token_request(**form: str) -> httpx.Response:
        return httpx.post(oidc_provider.url("/token"), data=form, auth=credentials)

    login = token_request(
        grant_type="authorization_code",
        code=code,
        redirect_uri=redirect_uri,
        code_verifier=verifier,
    )
    assert login.status_code == 200, login.text
    assert login.json()["expires_in"] == DUE_TTL
    first = login.json()["refresh_token"]
    refreshed = token_request(grant_type="refresh_token", refresh_token=first)
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["refresh_token"] != first  # rotated
    assert oidc_provider.account_activity(user).token_grants == {
        "authorization_code": 1,
        "refresh_token": 1,
    }
    assert_no_trouble(oidc_provider, user)

    reused = token_request(grant_type="refresh_token", refresh_token=first)
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    newest = refreshed.json()["refresh_token"]
    later = token_request(grant_type="refresh_token", refresh_token=newest)
    assert later.status_code == 400  # the whole grant is gone, the newest token with it
    activity = oidc_provider.account_activity(user)
    assert activity.refreshes == 1
    assert activity.token_errors == {"refresh_token": {"invalid_grant": 2}}
    assert activity.revoked_grants == {"token": 1}
    assert activity.live_grants == 0


# --- One app, sessions in cookies ---------------------------------------------------------------


@pytest.fixture(scope="module")
def token_app(
    tmp_path_factory: pytest.TempPathFactory, oidc_provider: OidcProvider, app_workdir: Path
) -> Iterator[AppServer]:
    """The project rendered with ``access_token_route`` (cookie sessions), for this module."""
    project = installed_project(tmp_path_factory, access_token_route=True)
    with AppServer(project, oidc_provider, workdir=app_workdir, settings=APP_SETTINGS) as app:
        yield app


def test_an_expired_access_token_is_refreshed_without_a_new_login(
    token_app: AppServer, oidc_provider: OidcProvider
) -> None:
    user = new_user()
    oidc_provider.configure_account(user, access_token_ttl=1)
    with browser(log_in(token_app, user)) as client:
        time.sleep(1.1)  # the access token of the login has expired
        oidc_provider.configure_account(user, access_token_ttl=DUE_TTL)

        first = access_token(client, token_app)
        assert time.time() < first["expires_at"] <= time.time() + DUE_TTL + 1  # a new one
        assert oidc_provider.account_activity(user).refreshes == 1
        claims = userinfo(oidc_provider, first["token"])
        assert claims.status_code == 200, claims.text
        assert claims.json()["sub"] == user

        # Due again (shorter than the leeway): refreshed with the rotated refresh token. The
        # spent one would get invalid_grant and revoke the grant.
        second = access_token(client, token_app)
        assert second["token"] != first["token"]
        assert oidc_provider.account_activity(user).refreshes == 2

        page = client.get(token_app.url("/api-example"), headers=HTML)  # calls UserInfo
        api_example_expiry(page, user)
        profile = client.get(token_app.url("/auth/profile"), headers=JSON)
        assert profile.status_code == 200, profile.text
        assert profile.json()["sub"] == user

    activity = oidc_provider.account_activity(user)
    assert (activity.logins, activity.refreshes) == (1, 3)  # one login, nothing asked again
    assert_no_trouble(oidc_provider, user)


def test_concurrent_requests_of_a_cookie_session_share_one_refresh(
    token_app: AppServer, oidc_provider: OidcProvider
) -> None:
    user = new_user()
    oidc_provider.configure_account(user, access_token_ttl=DUE_TTL)
    cookies = log_in(token_app, user)
    oidc_provider.configure_account(user, access_token_ttl=LASTING_TTL, refresh_delay=REFRESH_DELAY)

    responses, cookies = concurrently([token_app.url("/auth/access-token")] * 20, cookies, JSON)

    assert [r.status_code for r in responses] == [200] * 20, [r.text for r in responses]
    tokens = {(r.json()["token"], r.json()["expires_at"]) for r in responses}
    assert len(tokens) == 1, tokens
    [(token, expires_at)] = tokens
    for response in responses:  # every answer carries the refreshed session
        assert any(c.startswith("app_session") for c in response.headers.get_list("set-cookie"))
    assert oidc_provider.account_activity(user).refreshes == 1
    assert_no_trouble(oidc_provider, user)

    # Later, the cookie of those answers refreshes with the rotated refresh token.
    oidc_provider.configure_account(user, refresh_delay=0)
    sleep_until_due(expires_at)
    with browser(cookies) as client:
        later = access_token(client, token_app)
    assert later["token"] != token
    assert oidc_provider.account_activity(user).refreshes == 2
    assert_no_trouble(oidc_provider, user)


def test_a_refused_refresh_ends_the_session(
    token_app: AppServer, oidc_provider: OidcProvider
) -> None:
    user = new_user()
    oidc_provider.configure_account(user, access_token_ttl=DUE_TTL)
    cookies = log_in(token_app, user)
    with browser(cookies) as client:
        access_token(client, token_app)  # refreshing works
        copied = httpx.Cookies(client.cookies)

        assert oidc_provider.revoke_grants(user) == 1
        refused = client.get(token_app.url("/auth/access-token"), headers=JSON)

        assert_session_ended(refused)
        assert client.get(token_app.url("/auth/profile"), headers=JSON).status_code == 401
    with browser(copied) as client:  # a copy of the cookie is no good either
        assert client.get(token_app.url("/auth/profile"), headers=JSON).status_code == 401
    activity = oidc_provider.account_activity(user)
    assert activity.token_errors == {"refresh_token": {"invalid_grant": 1}}
    assert activity.refreshes == 1


def test_logout_revokes_the_refresh_token(
    token_app: AppServer, oidc_provider: OidcProvider
) -> None:
    user = new_user()
    oidc_provider.configure_account(user, access_token_ttl=DUE_TTL)
    with browser(log_in(token_app, user)) as client:
        access_token(client, token_app)  # the session now holds a rotated refresh token

        logout = client.get(token_app.url("/auth/logout?returnTo=/"), headers=HTML)

    assert logout.status_code == 303, logout.text
    assert logout.headers["location"].startswith(oidc_provider.url("/session/end?"))

    def revoked() -> bool:  # after the answer, in the background
        return oidc_provider.account_activity(user).revoked_grants == {"revocation": 1}

    wait_for(revoked, 5, "the app to revoke the refresh token")
    activity = oidc_provider.account_activity(user)
    assert activity.live_grants == 0, activity
    assert activity.token_errors == {}, activity  # the app did not use it after the logout


# --- Two apps sharing a server-side store -------------------------------------------------------


@dataclass(frozen=True)
class SharedStore:
    kind: str
    project: Project
    settings: dict[str, str]

    @property
    def elsewhere_within(self) -> float:
        """Seconds until a session ended in one app process is ended in the others: the
        SQL store's caches poll its change log (sql_cache.py: TRUST_WINDOW, 0.5 s)."""
        return 0.5 if self.kind.startswith("sql") else 0.0


@pytest.fixture(params=["redis", "sql-postgres"])
def shared_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> SharedStore:
    """A store for two replicas: a key prefix of Redis, or a PostgreSQL database, of their own."""
    return server_store(request, tmp_path_factory, request.param)


def server_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, kind: str
) -> SharedStore:
    """`redis` (a key prefix of its own) or `sql-postgres` (a database of its own)."""
    project = installed_project(tmp_path_factory, session_store=kind.partition("-")[0])
    if kind == "redis":
        redis: RedisServer = request.getfixturevalue("redis_server")
        prefix = f"e2e-refresh-{secrets.token_hex(4)}:"
        return SharedStore(kind, project, {"REDIS_URL": redis.url, "REDIS_KEY_PREFIX": prefix})
    postgres: PostgresServer = request.getfixturevalue("postgres_server")
    database = f"e2e_refresh_{secrets.token_hex(4)}"
    postgres.psql(f'CREATE DATABASE "{database}"', database="postgres")
    url = f"postgresql://postgres@127.0.0.1:{postgres.port}/{database}"
    return SharedStore(kind, project, {"DATABASE_URL": url})


def start_replicas(
    start_app: StartApp, provider: OidcProvider, store: SharedStore
) -> tuple[AppServer, AppServer]:
    """Two apps with one provider client, one ``SESSION_SECRET`` and one store."""
    ports = [free_port(), free_port()]
    while ports[1] == ports[0]:
        ports[1] = free_port()
    client = register_app_client(provider, ports)
    secret = secrets.token_urlsafe(48)

    settings = {**store.settings, **APP_SETTINGS}

    def start(port: int) -> AppServer:
        return start_app(
            provider,
            store.project,
            settings=settings,
            client=client,
            session_secret=secret,
            port=port,
        )

    with ThreadPoolExecutor(max_workers=2) as starting:  # both at once; start_app stops them
        app_a, app_b = starting.map(start, ports)
    return app_a, app_b


def test_fifty_concurrent_requests_on_two_replicas_share_one_refresh(
    shared_store: SharedStore, oidc_provider: OidcProvider, start_app: StartApp
) -> None:
    """The acceptance test: one session, its token due, 50 requests split between two processes."""
    app_a, app_b = start_replicas(start_app, oidc_provider, shared_store)
    user = new_user()
    oidc_provider.configure_account(user, access_token_ttl=DUE_TTL)
    cookies = log_in(app_a, user)
    oidc_provider.configure_account(user, access_token_ttl=LASTING_TTL, refresh_delay=REFRESH_DELAY)

    urls = [app.url("/api-example") for _ in range(25) for app in (app_a, app_b)]
    pages, _ = concurrently(urls, cookies, HTML)

    expiries = {api_example_expiry(page, user) for page in pages}  # all 50 called UserInfo
    assert len(expiries) == 1, expiries  # with the same, refreshed token
    assert oidc_provider.account_activity(user).refreshes == 1
    assert_no_trouble(oidc_provider, user)

    # Later, each replica refreshes with the refresh token the other one stored.
    oidc_provider.configure_account(user, access_token_ttl=DUE_TTL, refresh_delay=0)
    sleep_until_due(expiries.pop())
    with browser(cookies) as client:
        api_example_expiry(client.get(app_b.url("/api-example"), headers=HTML), user)
        assert oidc_provider.account_activity(user).refreshes == 2
        api_example_expiry(client.get(app_a.url("/api-example"), headers=HTML), user)
        assert oidc_provider.account_activity(user).refreshes == 3
        assert_no_trouble(oidc_provider, user)

        # The provider refuses: the session ends on both replicas.
        assert oidc_provider.revoke_grants(user) == 1
        assert_session_ended(client.get(app_a.url("/api-example"), headers=JSON))
        time.sleep(shared_store.elsewhere_within)
        assert client.get(app_b.url("/auth/profile"), headers=JSON).status_code == 401


# --- Several workers of one app (`uvicorn --workers 4`) -----------------------------------------

WORKERS = 4


@pytest.fixture(params=["cookie", "redis", "sql-sqlite", "sql-postgres"])
def worker_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> SharedStore:
    """Each store as a production command with several workers would use it: the cookie
    store's logout records in a file of the machine, SQLite in a file, Redis, PostgreSQL."""
    kind: str = request.param
    if kind in ("redis", "sql-postgres"):
        return server_store(request, tmp_path_factory, kind)
    project = installed_project(tmp_path_factory, session_store=kind.partition("-")[0])
    if kind == "cookie":
        return SharedStore(kind, project, {"LOGOUT_RECORDS_PATH": str(tmp_path / "logouts.db")})
    return SharedStore(kind, project, {"DATABASE_URL": f"sqlite:///{tmp_path}/sessions.db"})


def cpu_ticks(pid: int) -> int:
    """User + system CPU time of process ``pid`` so far, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def test_four_workers_share_one_refresh_and_every_worker_sees_a_logout(
    worker_store: SharedStore, oidc_provider: OidcProvider, start_app: StartApp
) -> None:
    """The README's production command (`uvicorn --workers 4`), every store: 50 concurrent
    requests of one session, spread over the workers, refresh its token once; a back-channel
    logout that one worker receives ends the session in all of them (SQL: within 0.5 s)."""
    app = start_app(
        oidc_provider,
        worker_store.project,
        settings={**worker_store.settings, **APP_SETTINGS},
        workers=WORKERS,
    )
    workers = app.worker_pids()
    assert len(workers) == WORKERS, workers
    user = new_user()
    oidc_provider.configure_account(user, access_token_ttl=DUE_TTL)
    cookies = log_in(app, user)
    oidc_provider.configure_account(user, access_token_ttl=LASTING_TTL, refresh_delay=REFRESH_DELAY)
    before = {pid: cpu_ticks(pid) for pid in workers}

    pages, _ = concurrently([app.url("/api-example")] * 50, cookies, HTML)

    busy = [pid for pid in workers if cpu_ticks(pid) > before[pid]]
    assert len(busy) >= 2, "the requests all went to one worker"
    expiries = {api_example_expiry(page, user) for page in pages}
    assert len(expiries) == 1, expiries  # every worker used the one refreshed token
    assert oidc_provider.account_activity(user).refreshes == 1
    assert_no_trouble(oidc_provider, user)

    result = oidc_provider.logout(user, client_id=app.client.client_id)

    assert [entry["ok"] for entry in result["backchannel"]] == [True], result
    time.sleep(worker_store.elsewhere_within)
    answers, _ = concurrently([app.url("/auth/profile")] * 40, cookies, JSON)
    assert {answer.status_code for answer in answers} == {401}
