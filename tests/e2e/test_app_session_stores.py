"""Server-side session stores (Redis, PostgreSQL, SQLite) with real app processes.

Two apps sharing a client, a ``SESSION_SECRET`` and a store act as replicas: a session made on one
is usable on the other, and a logout or back-channel logout on either ends it on both. A store that
is down or hangs gets 503 answers within its timeout, never 500 or a logout, and the apps recover by
themselves when it is back.

Cookies ignore ports, so one httpx client would send app A's cookie to app B unasked: requests that
matter here send the session cookie explicitly, from a client without cookies of its own.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
import pytest
from app_flows import HTML, cookie_attributes, http_login, is_session_cookie, sign_in
from components import (
    AppServer,
    OidcProvider,
    PostgresServer,
    RedisServer,
    TlsRedisServer,
    free_port,
    register_app_client,
)
from playwright.sync_api import expect

from tooling.rendering import Project, installed_project

if TYPE_CHECKING:
    from pathlib import Path

    from app_flows import StartApp
    from playwright.sync_api import BrowserContext, Page

JSON = {"Accept": "application/json"}
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")
UNAVAILABLE = "Sessions are unavailable"
STORE_TIMEOUT = "1"  # seconds: REDIS_TIMEOUT / DATABASE_TIMEOUT of the outage tests
ANSWER_WITHIN = 3.0  # seconds for any answer while the store is down or hangs
# Seconds a store may go on serving a session from memory after its server hangs or stops:
# the Redis store's cache trusts Redis for TRUST_WINDOW (0.5 s) after sending a ping answered
# since, the SQL store's its change log for TRUST_WINDOW (0.5 s) after a poll that succeeded.
CACHE_TRUST = 1.0
# Seconds until a logout on one app holds on the other: Redis announces the change before
# it confirms it; the SQL stores' caches poll the change log (sql_cache.py: TRUST_WINDOW).
ELSEWHERE_WITHIN = {"redis": 0.0, "sql-postgres": 0.5, "sql-sqlite": 0.5}
RECOVER_WITHIN = 2.0  # seconds after the store is back


@dataclass(frozen=True)
class Store:
    """Where the apps of a test keep sessions: the project rendered for it and its settings."""

    kind: str  # "redis", "sql-postgres" or "sql-sqlite"
    project: Project
    settings: dict[str, str]
    redis: RedisServer | None = None


def project_for(tmp_path_factory: pytest.TempPathFactory, kind: str) -> Project:
    return installed_project(tmp_path_factory, session_store=kind.partition("-")[0])


def session_cookie(client: httpx.Client) -> dict[str, str]:
    """The ``Cookie`` header of ``client``'s app session: an opaque id, nothing else."""
    [(name, value)] = [(c.name, c.value) for c in client.cookies.jar if is_session_cookie(c.name)]
    assert name == "app_session"
    assert value is not None and SESSION_ID.fullmatch(value), value
    return {"Cookie": f"{name}={value}"}


def get(
    app: AppServer,
    path: str,
    cookie: dict[str, str],
    accept: dict[str, str] = JSON,
    timeout: float = 10,
) -> httpx.Response:
    """``GET path`` on ``app`` with exactly ``cookie``, from a client without cookies."""
    return httpx.get(app.url(path), headers={**accept, **cookie}, timeout=timeout)


def profile(app: AppServer, cookie: dict[str, str]) -> httpx.Response:
    """``/auth/profile``: the session's user as JSON, or 401."""
    return get(app, "/auth/profile", cookie)


def log_in(app: AppServer, username: str = "alice") -> dict[str, str]:
    """Log ``username`` in to ``app`` with plain HTTP; returns the session's ``Cookie`` header."""
    with httpx.Client(timeout=10) as client:
        http_login(client, app, username)
        return session_cookie(client)


# --- Two apps sharing one store -------------------------------------------------------------------


@pytest.fixture(scope="module", params=["redis", "sql-postgres", "sql-sqlite"])
def shared_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Store:
    """A store for the replicas of this module: its own key prefix, database or SQLite file."""
    kind: str = request.param
    project = project_for(tmp_path_factory, kind)
    if kind == "redis":
        redis: RedisServer = request.getfixturevalue("redis_server")
        prefix = f"e2e-{secrets.token_hex(4)}:"
        return Store(kind, project, {"REDIS_URL": redis.url, "REDIS_KEY_PREFIX": prefix}, redis)
    if kind == "sql-postgres":
        postgres: PostgresServer = request.getfixturevalue("postgres_server")
        database = f"e2e_{secrets.token_hex(4)}"
        postgres.psql(f'CREATE DATABASE "{database}"', database="postgres")
        url = f"postgresql://postgres@127.0.0.1:{postgres.port}/{database}"  # plain libpq form
        return Store(kind, project, {"DATABASE_URL": url})
    sqlite = tmp_path_factory.mktemp("sqlite-store") / "sessions.db"
    return Store(kind, project, {"DATABASE_URL": f"sqlite:///{sqlite}"})


@pytest.fixture(scope="module")
def replicas(
    shared_store: Store, oidc_provider: OidcProvider, app_workdir: Path
) -> Iterator[tuple[AppServer, AppServer]]:
    """Two apps on one store with one provider client (both callbacks) and one secret."""
    ports = [free_port(), free_port()]
    while ports[1] == ports[0]:
        ports[1] = free_port()
    client = register_app_client(oidc_provider, ports)
    secret = secrets.token_urlsafe(48)
    with ExitStack() as stack:
        app_a, app_b = [
            stack.enter_context(
                AppServer(
                    shared_store.project,
                    oidc_provider,
                    workdir=app_workdir,
                    settings=shared_store.settings,
                    port=port,
                    client=client,
                    session_secret=secret,
                )
            )
            for port in ports
        ]
        yield app_a, app_b


def test_a_session_made_on_one_app_is_used_and_ended_on_another(
    replicas: tuple[AppServer, AppServer],
) -> None:
    app_a, app_b = replicas
    cookie = log_in(app_a)

    on_a, on_b = profile(app_a, cookie), profile(app_b, cookie)
    assert on_a.status_code == 200, on_a.text
    assert on_b.status_code == 200, on_b.text
    assert on_a.json()["sub"] == on_b.json()["sub"] == "alice"

    logout = get(app_b, "/auth/logout?returnTo=/", cookie, HTML)
    assert logout.status_code == 303
    assert logout.headers["location"].startswith(f"{app_b.provider.issuer}/session/end?")
    set_cookies = [cookie_attributes(c) for c in logout.headers.get_list("set-cookie")]
    [(name, attributes)] = [(name, a) for name, a in set_cookies if is_session_cookie(name)]
    assert (name, attributes["max-age"]) == ("app_session", "0")

    assert profile(app_a, cookie).status_code == 401  # the record is gone, not only the cookie
    assert profile(app_b, cookie).status_code == 401
    home = get(app_a, "/", cookie, HTML)
    assert home.status_code == 200
    assert "Welcome, Alice" not in home.text


def served(app: AppServer, cookie: dict[str, str], store: Store) -> None:
    """``/auth/profile`` answers 200 on ``app`` and, with Redis, from the app's memory: until
    then, requests go on (the first read opens the cache's connection, later ones fill it)."""
    deadline = time.monotonic() + 5
    while True:
        before = store.redis.get_commands() if store.redis else 0
        assert profile(app, cookie).status_code == 200
        if store.redis is None or store.redis.get_commands() == before:
            return
        assert time.monotonic() < deadline, "the Redis store never serves from memory"


def test_a_logout_on_one_app_holds_on_the_other_every_time(
    replicas: tuple[AppServer, AppServer], shared_store: Store
) -> None:
    """At once with Redis; with SQL at once on the app that logged out, and on the other
    after the SQL store's window."""
    app_a, app_b = replicas
    user = f"replica-{secrets.token_hex(4)}"  # of this test only: the provider is shared
    for attempt in range(20 if shared_store.kind == "redis" else 8):
        cookie = log_in(app_a, user)
        served(app_a, cookie, shared_store)
        served(app_b, cookie, shared_store)

        assert get(app_b, "/auth/logout", cookie, HTML).status_code == 303
        assert profile(app_b, cookie).status_code == 401, f"attempt {attempt}"
        time.sleep(ELSEWHERE_WITHIN[shared_store.kind])
        assert profile(app_a, cookie).status_code == 401, f"attempt {attempt}"


def test_a_backchannel_logout_received_by_one_app_ends_the_session_on_both(
    replicas: tuple[AppServer, AppServer],
) -> None:
    app_a, app_b = replicas
    cookie = log_in(app_b, "carol")  # a user of this test only: the provider is shared
    assert profile(app_a, cookie).status_code == 200

    result = app_a.provider.logout("carol", client_id=app_a.client.client_id)

    assert result["backchannel"], result  # sent to app A only: a client has one such URI
    assert all(entry["ok"] for entry in result["backchannel"]), result
    assert profile(app_a, cookie).status_code == 401
    assert profile(app_b, cookie).status_code == 401


def test_browser_login_shows_the_profile(
    replicas: tuple[AppServer, AppServer], page: Page, context: BrowserContext
) -> None:
    app = replicas[0]
    page.goto(app.url("/profile"))
    sign_in(page, "alice")

    expect(page).to_have_url(app.url("/profile"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Alice")
    [cookie] = [c for c in context.cookies() if is_session_cookie(c.get("name", ""))]
    assert cookie.get("name") == "app_session"
    assert SESSION_ID.fullmatch(cookie.get("value", ""))


def test_the_session_cache_works_over_tls_with_a_password(
    tmp_path_factory: pytest.TempPathFactory, oidc_provider: OidcProvider, start_app: StartApp
) -> None:
    """A managed Redis: TLS with the CA named in ``REDIS_URL``, a password. The cache's own
    connection must reach it like the app's client does, or every request reads Redis."""
    project = project_for(tmp_path_factory, "redis")
    with TlsRedisServer() as redis:
        store = Store("redis", project, {"REDIS_URL": redis.url}, redis)
        app = start_app(oidc_provider, project, settings=store.settings)
        cookie = log_in(app)
        served(app, cookie, store)  # from memory: the cache's connection is tracking

        redis.cli("DEL", *redis.cli("KEYS", "auth:session:*").split())
        assert profile(app, cookie).status_code == 401


# --- The store is down or hangs, then comes back --------------------------------------------------


@pytest.fixture
def dedicated_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Store, RedisServer | PostgresServer]]:
    """A store server of this test only (it gets stopped or paused), with a 1 s store timeout.

    Parametrized indirectly with ``"redis"`` or ``"sql-postgres"``.
    """
    kind: str = request.param
    project = project_for(tmp_path_factory, kind)
    if kind == "redis":
        with RedisServer() as redis:
            settings = {"REDIS_URL": redis.url, "REDIS_TIMEOUT": STORE_TIMEOUT}
            yield Store(kind, project, settings), redis
    else:
        with PostgresServer() as postgres:  # the postgresql+asyncpg:// form
            settings = {"DATABASE_URL": postgres.url, "DATABASE_TIMEOUT": STORE_TIMEOUT}
            yield Store(kind, project, settings), postgres


def assert_unavailable(app: AppServer, cookie: dict[str, str]) -> None:
    """503 (JSON and HTML) within ``ANSWER_WITHIN`` seconds, and the session cookie stays."""
    api = get(app, "/auth/profile", cookie, JSON, timeout=ANSWER_WITHIN)
    page = get(app, "/profile", cookie, HTML, timeout=ANSWER_WITHIN)
    home = get(app, "/", cookie, HTML, timeout=ANSWER_WITHIN)

    assert api.status_code == 503, api.text
    assert api.json()["error"] == "session_store_unavailable"
    for html in (page, home):
        assert html.status_code == 503, html.text
        assert f"<h1>{UNAVAILABLE}</h1>" in html.text
        assert "Traceback" not in html.text
    for response in (api, page, home):
        assert response.elapsed.total_seconds() < ANSWER_WITHIN
        assert "app_session" not in response.headers.get("set-cookie", "")  # no silent logout


def profile_once_served(app: AppServer, cookie: dict[str, str], since: float) -> httpx.Response:
    """``/auth/profile`` once it stops answering 503 (the store is back).

    Asserts that this happens within ``RECOVER_WITHIN`` seconds of ``since``.
    """
    while (response := profile(app, cookie)).status_code == 503:
        assert time.monotonic() - since < RECOVER_WITHIN, "still 503 after the store came back"
        time.sleep(0.05)
    assert time.monotonic() - since < RECOVER_WITHIN
    return response


@pytest.mark.parametrize("dedicated_store", ["redis", "sql-postgres"], indirect=True)
def test_store_down_answers_503_and_recovers(
    dedicated_store: tuple[Store, RedisServer | PostgresServer],
    oidc_provider: OidcProvider,
    start_app: StartApp,
) -> None:
    store, server = dedicated_store
    app = start_app(oidc_provider, store.project, settings=store.settings)
    cookie = log_in(app)
    assert profile(app, cookie).status_code == 200

    server.stop()
    stopped = time.monotonic()
    try:
        while profile(app, cookie).status_code == 200:  # served from memory
            assert time.monotonic() - stopped < CACHE_TRUST, "a stopped store is still trusted"
        assert_unavailable(app, cookie)
        assert_unavailable(app, cookie)  # still answers, nothing stuck after the first failure
    finally:
        server.start()  # same port
    back = time.monotonic()

    old_session = profile_once_served(app, cookie, back)
    if store.kind == "redis":  # no persistence: the session is gone, but logging in again works
        assert old_session.status_code == 401, old_session.text
        new_session = profile(app, log_in(app))
        assert new_session.status_code == 200, new_session.text
        assert time.monotonic() - back < RECOVER_WITHIN
    else:  # PostgreSQL kept the data: the same session works again
        assert old_session.status_code == 200, old_session.text
        assert old_session.json()["sub"] == "alice"


@pytest.mark.parametrize(
    "dedicated_store",
    [
        "redis",
        "sql-postgres",
    ],
    indirect=True,
)
def test_hanging_store_answers_503_within_the_timeout(
    dedicated_store: tuple[Store, RedisServer | PostgresServer],
    oidc_provider: OidcProvider,
    start_app: StartApp,
) -> None:
    store, server = dedicated_store
    app = start_app(oidc_provider, store.project, settings=store.settings)
    cookie = log_in(app)
    assert profile(app, cookie).status_code == 200

    server.pause()  # connections are accepted (or open), nothing answers
    paused = time.monotonic()
    try:
        while profile(app, cookie).status_code == 200:  # served from memory
            assert time.monotonic() - paused < CACHE_TRUST, "a hung store is still trusted"
        assert_unavailable(app, cookie)
    finally:
        server.resume()

    same_session = profile_once_served(app, cookie, time.monotonic())
    assert same_session.status_code == 200, same_session.text
    assert same_session.json()["sub"] == "alice"
