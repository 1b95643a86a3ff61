"""Faults: the generated app when its session store dies under load, its provider is down or hangs,
it restarts, or it is started with bad settings.

- A store killed while clients keep asking: 503 ``session_store_unavailable`` (never 500) within
  the store timeout, nobody sees another user's data, and every client's own session works again
  within a second of the store being back (Redis here keeps its data: an append-only file).
- More concurrent requests than the app has connections to Redis: they wait for one, no 503.
- The provider down or hanging: logins get the friendly 503/504 page within ``AUTH0_TIMEOUT``;
  sessions keep working, and back-channel logouts are checked with the cached discovery document
  and keys.
- The app restarted with the same settings: sessions survive, and so do logouts recorded before
  the restart (back-channel and RP-initiated) and the replay cache of logout tokens.
- Bad settings: uvicorn exits at once with one message that lists every problem, no traceback.

Logout tokens: the provider sends them to a :class:`LogoutTokenCatcher` registered as the app's
back-channel logout URI, which keeps them, so a test can deliver one when it wants, and twice.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import httpx
import pytest
from app_flows import HTML, finish_login, http_login, is_session_cookie, start_login
from components import (
    HOST,
    AppServer,
    OidcClient,
    OidcProvider,
    PostgresServer,
    RedisServer,
    app_base_url,
    free_port,
    jwt_claims,
    wait_for,
)

from tooling.rendering import Project, installed_project

if TYPE_CHECKING:
    from app_flows import StartApp

JSON = {"Accept": "application/json"}
STORE_TIMEOUT = "1"  # seconds: REDIS_TIMEOUT / DATABASE_TIMEOUT / AUTH0_TIMEOUT of these apps
ANSWER_WITHIN = 3.0  # seconds for any answer while a store or the provider is down or hangs
RECOVER_WITHIN = 1.0  # seconds after the store is back: every request from then on succeeds
QUICK = 0.8  # seconds: an answer that cannot have waited for anything (timeouts are 1 s)
# Seconds the SQL store may go on serving sessions from memory once its database is gone: its
# cache trusts the change log for TRUST_WINDOW (0.5 s) after a poll that succeeded.
SQL_CACHE_TRUST = 0.5
LOAD_CLIENTS = 20
UNAVAILABLE_PAGE = "The login service is unavailable"
TIMED_OUT_PAGE = "The login service did not answer in time"


def new_user(label: str) -> str:
    """A login id of this test only (the shared provider keeps sessions per account)."""
    return f"fault-{label}-{secrets.token_hex(3)}"


def session_header(client: httpx.Client) -> dict[str, str]:
    """The ``Cookie`` header of ``client``'s app session (every chunk of a cookie session)."""
    cookies = sorted(
        (cookie.name, cookie.value or "")
        for cookie in client.cookies.jar
        if is_session_cookie(cookie.name)
    )
    assert cookies, "no session cookie after the login"
    return {"Cookie": "; ".join(f"{name}={value}" for name, value in cookies)}


def log_in(app: AppServer, user: str) -> dict[str, str]:
    """Log ``user`` in with plain HTTP; returns the session's ``Cookie`` header."""
    with httpx.Client(timeout=10) as client:
        http_login(client, app, user)
        return session_header(client)


def log_in_all(app: AppServer, users: list[str]) -> list[dict[str, str]]:
    with ThreadPoolExecutor(max_workers=5) as pool:
        return list(pool.map(lambda user: log_in(app, user), users))


def get(
    app: AppServer, path: str, cookie: dict[str, str], accept: dict[str, str] = JSON
) -> httpx.Response:
    """``GET path`` with exactly ``cookie``, from a client without cookies of its own."""
    return httpx.get(app.url(path), headers={**accept, **cookie}, timeout=ANSWER_WITHIN + 2)


def profile_of(app: AppServer, cookie: dict[str, str]) -> str | None:
    """The ``sub`` of the session (``/auth/profile``), None for 401; fails on anything else."""
    response = get(app, "/auth/profile", cookie)
    if response.status_code == 401:
        return None
    assert response.status_code == 200, response.text
    return str(response.json()["sub"])


# --- Logout tokens, kept instead of delivered -----------------------------------------------------


class LogoutTokenCatcher:
    """A back-channel logout receiver on 127.0.0.1 that keeps the tokens (answers 200)."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self._arrived = threading.Condition()
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                with catcher._arrived:
                    catcher.tokens.extend(form.get("logout_token", []))
                    catcher._arrived.notify_all()
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}/backchannel-logout"

    def take(self, provider: OidcProvider, client: OidcClient, sub: str) -> str:
        """End ``sub``'s provider sessions with ``client``; return the logout token it sent."""
        result = provider.logout(sub, client_id=client.client_id)
        assert [entry["ok"] for entry in result["backchannel"]] == [True], result
        with self._arrived:
            assert self._arrived.wait_for(lambda: self.tokens, timeout=5)
            [token] = self.tokens
            self.tokens.clear()
        assert jwt_claims(token)["sub"] == sub
        return token

    def __enter__(self) -> LogoutTokenCatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def catcher() -> Iterator[LogoutTokenCatcher]:
    with LogoutTokenCatcher() as receiver:
        yield receiver


def client_for(provider: OidcProvider, port: int, catcher: LogoutTokenCatcher) -> OidcClient:
    """A client for the app on ``port`` whose back-channel logouts go to ``catcher``."""
    base_url = app_base_url(port)
    return provider.register_client(
        [f"{base_url}/auth/callback"], [f"{base_url}/"], backchannel_logout_uri=catcher.url
    )


def deliver(app: AppServer, token: str) -> httpx.Response:
    """POST ``token`` to the app's back-channel logout route, as the provider would."""
    return httpx.post(
        app.url("/auth/backchannel-logout"), data={"logout_token": token}, timeout=ANSWER_WITHIN + 2
    )


def assert_replay_refused(app: AppServer, token: str) -> None:
    replay = deliver(app, token)
    assert replay.status_code == 400, replay.text
    assert replay.json()["error_description"] == "This logout token was used before."


# --- Stores ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Store:
    kind: str  # "cookie", "cookie-redis" (logout records in Redis), "redis", "sql-sqlite", ...
    project: Project
    settings: dict[str, str]


def project_for(tmp_path_factory: pytest.TempPathFactory, kind: str) -> Project:
    if kind.startswith("cookie"):
        return installed_project(tmp_path_factory)  # the default project
    return installed_project(tmp_path_factory, session_store=kind.partition("-")[0])


class DurableRedis(RedisServer):
    """Redis that writes every change to an append-only file before answering, and is killed
    (SIGKILL) when stopped: it comes back with all its data, like a crashed production Redis."""

    stop_signal = signal.SIGKILL

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory

    def command(self) -> list[str]:
        return [
            *super().command(),
            *("--dir", str(self.directory), "--appendonly", "yes", "--appendfsync", "always"),
        ]


# --- A store killed under load --------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    client: int
    started: float  # time.monotonic()
    finished: float
    status: int | None  # None: no answer (connection error or timeout)
    body: dict[str, Any]


class ProfileLoad:
    """Clients that GET ``/auth/profile`` over and over, each with its own session, until the
    ``with`` block ends. Their event loop runs in a thread of its own (Playwright's sync API may
    own this thread's loop)."""

    def __init__(self, app: AppServer, cookies: list[dict[str, str]]) -> None:
        self.app = app
        self.cookies = cookies
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._done: Future[None] | None = None

    async def _client(self, number: int) -> None:
        headers = {**JSON, **self.cookies[number]}
        async with httpx.AsyncClient(headers=headers, timeout=ANSWER_WITHIN + 2) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    response = await client.get(self.app.url("/auth/profile"))
                except httpx.HTTPError:
                    status, body = None, {}
                    await asyncio.sleep(0.05)
                else:
                    status = response.status_code
                    try:
                        body = dict(response.json())
                    except ValueError:
                        body = {"text": response.text[:200]}
                self.answers.append(Answer(number, started, time.monotonic(), status, body))

    async def _run(self) -> None:
        await asyncio.gather(*(self._client(n) for n in range(len(self.cookies))))

    def wait_for_every_client(self, since: float) -> None:
        """Wait until every client has had an answer to a request started at ``since`` or later."""

        def everyone() -> bool:
            answered = {a.client for a in list(self.answers) if a.started >= since}
            return len(answered) == len(self.cookies)

        wait_for(everyone, 2 * ANSWER_WITHIN, "an answer for every client")

    def __enter__(self) -> ProfileLoad:
        self._done = self._pool.submit(asyncio.run, self._run())
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        try:
            if self._done is not None:
                self._done.result(timeout=2 * ANSWER_WITHIN + 5)
        finally:
            self._pool.shutdown(wait=True)


@pytest.fixture(params=["redis", "sql-postgres", "cookie-redis"])
def killable_store(
    request: pytest.FixtureRequest, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Store, RedisServer | PostgresServer]]:
    """A store server of this test only, with a store timeout of 1 s; it keeps its data.

    ``cookie-redis``: cookie sessions whose logout records are in Redis, read by every request.
    """
    kind: str = request.param
    project = project_for(tmp_path_factory, kind)
    if kind in ("redis", "cookie-redis"):
        with DurableRedis(tmp_path) as redis:
            settings = {"REDIS_URL": redis.url, "REDIS_TIMEOUT": STORE_TIMEOUT}
            yield Store(kind, project, settings), redis
    else:
        with PostgresServer() as postgres:
            settings = {"DATABASE_URL": postgres.url, "DATABASE_TIMEOUT": STORE_TIMEOUT}
            yield Store(kind, project, settings), postgres


def test_store_killed_under_load_answers_503_and_recovers_within_a_second(
    killable_store: tuple[Store, RedisServer | PostgresServer],
    oidc_provider: OidcProvider,
    start_app: StartApp,
) -> None:
    store, server = killable_store
    app = start_app(oidc_provider, store.project, settings=store.settings)
    users = [new_user(f"load{n}") for n in range(LOAD_CLIENTS)]
    cookies = log_in_all(app, users)

    with ProfileLoad(app, cookies) as load:
        load.wait_for_every_client(since=float("-inf"))
        stopping = time.monotonic()
        server.stop()
        down = time.monotonic()
        time.sleep(1.0)
        load.wait_for_every_client(since=down)
        starting = time.monotonic()
        server.start()  # same port, same data
        back = time.monotonic()
        time.sleep(RECOVER_WITHIN)
        load.wait_for_every_client(since=back + RECOVER_WITHIN)
    answers = load.answers

    # Nothing but 200 (the client's own user) and 503 session_store_unavailable, all in time.
    statuses = {answer.status for answer in answers}
    assert statuses <= {200, 503}, sorted(statuses, key=str)
    for answer in answers:
        assert answer.finished - answer.started < ANSWER_WITHIN, answer
        if answer.status == 200:
            assert answer.body["sub"] == users[answer.client], answer
        else:
            assert answer.body["error"] == "session_store_unavailable", answer

    def during(start: float, end: float) -> list[Answer]:
        return [a for a in answers if a.started >= start and a.finished <= end]

    before = during(0, stopping)
    outage = during(down + (SQL_CACHE_TRUST if store.kind.startswith("sql") else 0), starting)
    after = [a for a in answers if a.started >= back + RECOVER_WITHIN]
    for phase in (before, outage, after):  # every client was heard in every phase
        assert {a.client for a in phase} == set(range(LOAD_CLIENTS))
    assert {a.status for a in before} == {200}
    assert {a.status for a in outage} == {503}
    assert {a.status for a in after} == {200}, "still failing a second after the store is back"
    first_ok = min(a.finished for a in answers if a.started >= back and a.status == 200)
    print(  # shown with -s: how long the outage really lasted for clients
        f"\n{store.kind}: {len(answers)} answers, {len(outage)} during the outage, "
        f"first 200 {first_ok - back:.3f} s after the store was back"
    )


def test_postgresql_restarted_or_recreated_empty_serves_the_next_requests(
    oidc_provider: OidcProvider, start_app: StartApp, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """PostgreSQL restarted while nobody used the app: the pool's connections are dead, yet
    the next requests are served (they were 503). Then a database recreated empty: its
    tables are made again, its old sessions are gone, and logins work (every request was
    503 until the app restarted)."""
    project = project_for(tmp_path_factory, "sql-postgres")
    with PostgresServer() as postgres:
        settings = {"DATABASE_URL": postgres.url, "DATABASE_CACHE_SIZE": "0"}
        app = start_app(oidc_provider, project, settings=settings)
        users = [new_user(f"pg-restart{n}") for n in range(5)]
        cookies = log_in_all(app, users)  # several connections in the pool

        postgres.stop()
        postgres.start()  # same port, same data

        assert [profile_of(app, cookie) for cookie in cookies] == users

        postgres.psql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        answers = [get(app, "/auth/profile", cookie).status_code for cookie in cookies]
        assert set(answers) <= {401, 503} and answers[-1] == 401  # gone, never served
        newcomer = new_user("pg-recreated")
        assert profile_of(app, log_in(app, newcomer)) == newcomer


# --- More concurrent requests than connections to Redis -----------------------------------------

BURST = 150  # concurrent requests, more than redis-py's default pool of 100 connections


def burst(app: AppServer, cookie: dict[str, str]) -> Counter[int]:
    """``BURST`` concurrent ``/auth/profile`` requests, each on a connection of its own, to an app
    that has not needed many connections yet; the statuses of the answers. The event loop runs in
    a thread of its own."""

    async def send() -> Counter[int]:
        limits = httpx.Limits(max_connections=BURST, max_keepalive_connections=BURST)
        async with httpx.AsyncClient(
            headers={**JSON, **cookie}, limits=limits, timeout=20
        ) as client:
            url = app.url("/auth/profile")
            answers = await asyncio.gather(*(client.get(url) for _ in range(BURST)))
        return Counter(answer.status_code for answer in answers)

    with ThreadPoolExecutor(max_workers=1) as loop_thread:
        return loop_thread.submit(asyncio.run, send()).result()


@pytest.mark.parametrize("kind", ["redis", "cookie-redis"])
def test_more_concurrent_requests_than_redis_connections_are_all_served(
    kind: str,
    redis_server: RedisServer,
    oidc_provider: OidcProvider,
    start_app: StartApp,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    prefix = f"e2e-burst-{secrets.token_hex(4)}:"
    app = start_app(
        oidc_provider,
        project_for(tmp_path_factory, kind),
        REDIS_URL=redis_server.url,
        REDIS_KEY_PREFIX=prefix,
    )
    user = new_user("burst")
    cookie = log_in(app, user)

    statuses = burst(app, cookie)

    assert statuses == Counter({200: BURST})
    assert profile_of(app, cookie) == user


# --- The provider down or hanging -----------------------------------------------------------------


def timed(request: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    """The answer of ``request()`` and how many seconds it took."""
    started = time.monotonic()
    response = request()
    return response, time.monotonic() - started


def test_provider_down_or_hanging_logins_fail_friendly_sessions_and_caches_keep_working(
    dedicated_provider: OidcProvider, start_app: StartApp, catcher: LogoutTokenCatcher
) -> None:
    port = free_port()
    client = client_for(dedicated_provider, port, catcher)
    app = start_app(dedicated_provider, client=client, port=port, AUTH0_TIMEOUT=STORE_TIMEOUT)
    untouched = start_app(  # nothing cached: no discovery at startup either
        dedicated_provider, AUTH0_TIMEOUT=STORE_TIMEOUT, AUTH_STARTUP_CHECK="false"
    )
    alice, bob, carol, dave = (new_user(name) for name in ("alice", "bob", "carol", "dave"))
    alice_cookie, bob_cookie = log_in(app, alice), log_in(app, bob)
    bob_logout = catcher.take(dedicated_provider, client, bob)  # kept, not delivered yet
    with httpx.Client(timeout=10) as carols, httpx.Client(timeout=10) as daves:
        # Logged in at the provider; the apps still have to redeem the codes.
        carol_callback = finish_login(carols, app, start_login(carols, app, "/profile"), carol)
        dave_callback = finish_login(daves, app, start_login(daves, app, "/profile"), dave)

        dedicated_provider.pause()  # accepts connections, never answers
        try:
            callback, callback_seconds = timed(lambda: carols.get(carol_callback, headers=HTML))
            login, login_seconds = timed(lambda: get(untouched, "/auth/login", {}, HTML))
            profile, profile_seconds = timed(lambda: get(app, "/auth/profile", alice_cookie))
            page = get(app, "/profile", alice_cookie, HTML)
            logout, logout_seconds = timed(lambda: deliver(app, bob_logout))
            bob_after = profile_of(app, bob_cookie)
            cached_login, cached_login_seconds = timed(lambda: get(app, "/auth/login", {}, HTML))
        finally:
            dedicated_provider.resume()

        dedicated_provider.stop()  # refuses connections
        refused, refused_seconds = timed(lambda: daves.get(dave_callback, headers=HTML))
        refused_login = get(untouched, "/auth/login", {}, HTML)
        alice_still = profile_of(app, alice_cookie)

    for timed_out, seconds in ((callback, callback_seconds), (login, login_seconds)):
        assert timed_out.status_code == 504, timed_out.text
        assert f"<h1>{TIMED_OUT_PAGE}</h1>" in timed_out.text
        assert "Traceback" not in timed_out.text
        assert 0.9 < seconds < ANSWER_WITHIN
    for unavailable in (refused, refused_login):
        assert unavailable.status_code == 503, unavailable.text
        assert f"<h1>{UNAVAILABLE_PAGE}</h1>" in unavailable.text
        assert "Traceback" not in unavailable.text
    assert refused_seconds < ANSWER_WITHIN

    # Sessions never wait for the provider.
    assert profile.status_code == 200, profile.text
    assert profile.json()["sub"] == alice
    assert profile_seconds < QUICK
    assert page.status_code == 200
    assert alice_still == alice
    # The logout token was checked with the discovery document and keys cached at the logins:
    # asking the hanging provider would have taken AUTH0_TIMEOUT and failed.
    assert logout.status_code == 200, logout.text
    assert logout_seconds < QUICK
    assert bob_after is None
    # A login starts from the cached discovery document too.
    assert cached_login.status_code == 303, cached_login.text
    assert cached_login.headers["location"].startswith(f"{dedicated_provider.issuer}/auth?")
    assert cached_login_seconds < QUICK


# --- The app restarted ----------------------------------------------------------------------------


@pytest.fixture(params=["cookie", "cookie-redis", "redis", "sql-sqlite", "sql-postgres"])
def lasting_store(
    request: pytest.FixtureRequest, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Store:
    """Where an app keeps what must outlive it: the cookie store's logout records in a file of
    this test (or under a Redis key prefix), a Redis key prefix, a SQLite file or a PostgreSQL
    database of its own."""
    kind: str = request.param
    project = project_for(tmp_path_factory, kind)
    if kind == "cookie":
        return Store(kind, project, {"LOGOUT_RECORDS_PATH": str(tmp_path / "logouts.db")})
    if kind in ("redis", "cookie-redis"):
        redis: RedisServer = request.getfixturevalue("redis_server")
        prefix = f"e2e-restart-{secrets.token_hex(4)}:"
        return Store(kind, project, {"REDIS_URL": redis.url, "REDIS_KEY_PREFIX": prefix})
    if kind == "sql-sqlite":
        return Store(kind, project, {"DATABASE_URL": f"sqlite:///{tmp_path / 'sessions.db'}"})
    postgres: PostgresServer = request.getfixturevalue("postgres_server")
    database = f"e2e_restart_{secrets.token_hex(4)}"
    postgres.psql(f'CREATE DATABASE "{database}"', database="postgres")
    return Store(kind, project, {"DATABASE_URL": f"{postgres.dsn.rpartition('/')[0]}/{database}"})


def test_sessions_logouts_and_used_logout_tokens_survive_an_app_restart(
    lasting_store: Store,
    oidc_provider: OidcProvider,
    start_app: StartApp,
    catcher: LogoutTokenCatcher,
) -> None:
    port = free_port()
    client = client_for(oidc_provider, port, catcher)
    app = start_app(
        oidc_provider,
        lasting_store.project,
        settings=lasting_store.settings,
        client=client,
        session_secret=secrets.token_urlsafe(48),
        port=port,
    )
    kept, ended_at_provider, logged_out, ended_later = (
        new_user(name) for name in ("kept", "backchannel", "logout", "later")
    )
    cookies = dict(
        zip(
            (kept, ended_at_provider, logged_out, ended_later),
            log_in_all(app, [kept, ended_at_provider, logged_out, ended_later]),
            strict=True,
        )
    )
    delivered = catcher.take(oidc_provider, client, ended_at_provider)
    assert deliver(app, delivered).status_code == 200
    logout = get(app, "/auth/logout?returnTo=/", cookies[logged_out], HTML)
    assert logout.status_code == 303, logout.text
    undelivered = catcher.take(oidc_provider, client, ended_later)
    before = {user: profile_of(app, cookie) for user, cookie in cookies.items()}
    assert before == {
        kept: kept,
        ended_at_provider: None,
        logged_out: None,
        ended_later: ended_later,
    }

    app.stop()
    app.start()  # same port, settings, SESSION_SECRET and store

    after = {user: profile_of(app, cookie) for user, cookie in cookies.items()}
    assert after == before  # sessions kept, logouts still in force (a copied cookie too)
    assert_replay_refused(app, delivered)  # the replay cache outlived the process
    assert deliver(app, undelivered).status_code == 200  # fetches the keys anew
    assert profile_of(app, cookies[ended_later]) is None
    assert_replay_refused(app, undelivered)
    assert profile_of(app, cookies[kept]) == kept


# --- Startup checks -------------------------------------------------------------------------------

STORE_SETTING_PREFIXES = ("AUTH0_", "APP_", "SESSION_", "REDIS_", "DATABASE_", "LOGOUT_")
STARTUP_WITHIN = 10.0  # seconds from starting uvicorn to its exit
A_SECRET = "kWq3Tz8vLp2Rx7Yb5Nc1Md4Fg6Hj9Ks0-Qa"  # long and random enough to be accepted


def start_with(
    project: Project, settings: dict[str, str], workdir: Path
) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run the app under uvicorn with only ``settings`` (and ``workdir``'s ``.env``) until it
    exits; killed if it is still running after ``STARTUP_WITHIN`` + 5 s."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(STORE_SETTING_PREFIXES)}
    command = [
        str(project.bin("uvicorn")),
        *("app.main:app", "--app-dir", str(project.path)),
        *("--host", HOST, "--port", str(free_port())),
    ]
    started = time.monotonic()
    result = subprocess.run(
        command,
        env={**inherited, "PYTHONUNBUFFERED": "1", **settings},
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=STARTUP_WITHIN + 5,
        check=False,
    )
    return result, time.monotonic() - started


def assert_refused_to_start(
    result: subprocess.CompletedProcess[str], seconds: float, problems: dict[str, str]
) -> None:
    """Exited non-zero in time with one message naming exactly the settings in ``problems``
    (each line containing the text given for it), no traceback and no secret."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert seconds < STARTUP_WITHIN
    assert "Traceback" not in output
    assert "Uvicorn running" not in output
    assert output.count("Invalid configuration") == 1, output
    listed = {
        line.strip().removeprefix("- ").partition(":")[0]: line
        for line in output.splitlines()
        if line.startswith("  - ")
    }
    assert set(listed) == set(problems), output
    for name, text in problems.items():
        assert text in listed[name], listed[name]
    assert A_SECRET not in output


@pytest.mark.parametrize(
    ("settings", "problems"),
    [
        pytest.param(
            {},
            {
                "AUTH0_DOMAIN": "is not set",
                "AUTH0_CLIENT_ID": "is not set",
                "AUTH0_CLIENT_SECRET": "is not set",
                "APP_BASE_URL": "is not set",
                "SESSION_SECRET": "is not set",
            },
            id="nothing-set",
        ),
        pytest.param(
            {
                "AUTH0_DOMAIN": "http://login.example.com",
                "AUTH0_CLIENT_ID": "client",
                "AUTH0_CLIENT_SECRET": A_SECRET,
                "APP_BASE_URL": "http://127.0.0.1:8000/app?tenant=1",
                "SESSION_SECRET": "too-short-3Xq9",
            },
            {
                "AUTH0_DOMAIN": "must use https://",
                "APP_BASE_URL": "no query",
                "SESSION_SECRET": "shorter than 32 characters",
            },
            id="insecure-provider-query-short-secret",
        ),
        pytest.param(
            {
                "AUTH0_DOMAIN": "login.example.com",
                "AUTH0_CLIENT_ID": "client",
                "AUTH0_CLIENT_SECRET": A_SECRET,
                "APP_BASE_URL": "app.example.com",
                "SESSION_SECRET": "change-me-change-me-change-me-change-me",
                "AUTH0_SCOPE": "profile email",
            },
            {
                "APP_BASE_URL": "https://",
                "SESSION_SECRET": "placeholder",
                "AUTH0_SCOPE": "must include openid",
            },
            id="relative-base-url-placeholder-secret-no-openid",
        ),
    ],
)
def test_bad_settings_stop_the_app_at_once_with_every_problem_listed(
    default_project: Project, tmp_path: Path, settings: dict[str, str], problems: dict[str, str]
) -> None:
    result, seconds = start_with(default_project, settings, tmp_path)
    assert_refused_to_start(result, seconds, problems)


def test_bad_database_url_is_listed_with_the_other_problems(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    project = project_for(tmp_path_factory, "sql-sqlite")
    settings = {
        "AUTH0_DOMAIN": "https://login.example.com",
        "AUTH0_CLIENT_ID": "client",
        "AUTH0_CLIENT_SECRET": A_SECRET,
        "APP_BASE_URL": "https://app.example.com",
        "SESSION_SECRET": "x" * 40,
        "DATABASE_URL": "mysql://db.example.com/app",
        "DATABASE_TIMEOUT": "0",
    }
    result, seconds = start_with(project, settings, tmp_path)
    assert_refused_to_start(
        result,
        seconds,
        {
            "SESSION_SECRET": "placeholder",
            "DATABASE_URL": "sqlite:// or postgresql://",
            "DATABASE_TIMEOUT": "greater than 0",
        },
    )


def test_env_example_as_is_is_refused_naming_every_placeholder(
    default_project: Project, tmp_path: Path
) -> None:
    """Someone copies ``.env.example`` to ``.env`` and starts the app without filling it in."""
    (tmp_path / ".env").write_text((default_project.path / ".env.example").read_text())
    result, seconds = start_with(default_project, {}, tmp_path)
    assert_refused_to_start(
        result,
        seconds,
        {
            "AUTH0_DOMAIN": "",  # any message
            "AUTH0_CLIENT_ID": "",
            "AUTH0_CLIENT_SECRET": "is not set",
            "SESSION_SECRET": "is empty",
        },
    )
