"""The Redis store on a highly available Redis: a Redis Cluster, and a primary watched by sentinels.

Two apps share the store (as in test_app_session_stores.py) and ``REDIS_URL`` names the cluster
(``redis+cluster://``) or the sentinels (``redis+sentinel://``). In a cluster every session works
on both apps through login, refresh, logout and back-channel logout. With sentinels, a failover
(the primary stops) while requests keep coming answers nothing but 200 or 503 (during the switch),
and afterwards each session is still there, still its user's, and a logout is still final on both
apps. Over TLS (``rediss+cluster://``, ``rediss+sentinel://``), with passwords everywhere (the
sentinels' their own), sessions work the same.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

import httpx
import pytest
from app_flows import HTML, http_login, is_session_cookie
from components import (
    AppServer,
    OidcProvider,
    RedisClusterServers,
    SentinelRedisServers,
    free_port,
    register_app_client,
    wait_for,
)

from tooling.rendering import Project, installed_project

if TYPE_CHECKING:
    from pathlib import Path

JSON = {"Accept": "application/json"}
# Every use of a token refreshes it: its life (30 s) is shorter than the apps' leeway.
SETTINGS = {"ACCESS_TOKEN_LEEWAY": "60", "REDIS_TIMEOUT": "1"}
DUE_TTL = 30
FAILOVER_WITHIN = 10.0  # seconds for the sentinels to name the new primary
RECOVER_WITHIN = 5.0  # seconds after that for every session to be served again


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return installed_project(tmp_path_factory, session_store="redis")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    with RedisClusterServers(tmp_path_factory.mktemp("redis-cluster")) as servers:
        yield servers


@contextmanager
def two_apps(
    project: Project, provider: OidcProvider, workdir: Path, redis_url: str
) -> Iterator[tuple[AppServer, AppServer]]:
    """Two apps on one Redis with one provider client (both callbacks) and one secret."""
    ports = [free_port(), free_port()]
    while ports[1] == ports[0]:
        ports[1] = free_port()
    client = register_app_client(provider, ports)
    secret = secrets.token_urlsafe(48)
    settings = {**SETTINGS, "REDIS_URL": redis_url}
    with ExitStack() as stack:
        yield tuple(  # type: ignore[misc]
            stack.enter_context(
                AppServer(
                    project,
                    provider,
                    workdir=workdir,
                    settings=settings,
                    port=port,
                    client=client,
                    session_secret=secret,
                )
            )
            for port in ports
        )


def log_in(app: AppServer, user: str) -> dict[str, str]:
    """Log ``user`` in to ``app``; returns the ``Cookie`` header of its session cookies."""
    with httpx.Client(timeout=10) as client:
        http_login(client, app, user)
        cookies = [f"{c.name}={c.value}" for c in client.cookies.jar if is_session_cookie(c.name)]
    assert cookies, "no session cookie after the login"
    return {"Cookie": "; ".join(cookies)}


def get(app: AppServer, path: str, cookie: dict[str, str], accept: dict[str, str] = JSON) -> int:
    """The status of ``GET path`` on ``app`` with exactly ``cookie``."""
    return httpx.get(app.url(path), headers={**accept, **cookie}, timeout=10).status_code


def user_of(app: AppServer, cookie: dict[str, str]) -> tuple[int, str | None]:
    """``/auth/profile``'s status and, when 200, the session's ``sub``."""
    response = httpx.get(app.url("/auth/profile"), headers={**JSON, **cookie}, timeout=10)
    return response.status_code, response.json()["sub"] if response.status_code == 200 else None


def test_sessions_in_a_redis_cluster(
    project: Project, oidc_provider: OidcProvider, app_workdir: Path, cluster: RedisClusterServers
) -> None:
    user, other = f"cluster-{secrets.token_hex(4)}", f"cluster-bc-{secrets.token_hex(4)}"
    oidc_provider.configure_account(user, access_token_ttl=DUE_TTL)
    with two_apps(project, oidc_provider, app_workdir, cluster.url) as (app_a, app_b):
        cookie = log_in(app_a, user)
        assert user_of(app_a, cookie) == user_of(app_b, cookie) == (200, user)
        # Each session's record and lock share a hash slot (the refresh script uses both).
        assert all("{" in key for key in cluster.keys("auth:session:*"))

        assert get(app_b, "/api-example", cookie, HTML) == 200  # refreshes the token first
        assert oidc_provider.account_activity(user).refreshes >= 1
        assert user_of(app_a, cookie) == (200, user)

        assert get(app_b, "/auth/logout", cookie, HTML) == 303
        assert user_of(app_a, cookie)[0] == user_of(app_b, cookie)[0] == 401

        cookie = log_in(app_b, other)
        assert user_of(app_a, cookie) == (200, other)
        result = oidc_provider.logout(other, client_id=app_a.client.client_id)
        assert result["backchannel"] and all(entry["ok"] for entry in result["backchannel"])
        assert user_of(app_a, cookie)[0] == user_of(app_b, cookie)[0] == 401
        assert "auth.cache_off cache=session-cache reason=cluster" in app_a.log_path.read_text()


def test_cookie_sessions_with_logout_records_in_a_redis_cluster(
    tmp_path_factory: pytest.TempPathFactory,
    oidc_provider: OidcProvider,
    app_workdir: Path,
    cluster: RedisClusterServers,
) -> None:
    """Sessions in cookies, logouts recorded in the cluster: a refresh (the login's newest
    version, written with its lock by one script) and a logout, final for a copy too."""
    project = installed_project(tmp_path_factory, session_store="cookie")
    user = f"cluster-cookie-{secrets.token_hex(4)}"
    oidc_provider.configure_account(user, access_token_ttl=DUE_TTL)
    settings = {**SETTINGS, "REDIS_URL": cluster.url}
    with AppServer(project, oidc_provider, workdir=app_workdir, settings=settings) as app:
        cookie = log_in(app, user)
        assert user_of(app, cookie) == (200, user)
        assert get(app, "/api-example", cookie, HTML) == 200  # refreshes the token first
        assert oidc_provider.account_activity(user).refreshes >= 1
        assert any("{login:" in key for key in cluster.keys("auth:logout:newer:*"))
        assert user_of(app, cookie) == (200, user)  # the older cookie: its newest version is used

        assert get(app, "/auth/logout", cookie, HTML) == 303
        assert user_of(app, cookie)[0] == 401  # a copy of the cookie is refused
        assert "auth.cache_off cache=logout-cache reason=cluster" in app.log_path.read_text()


def test_sessions_survive_a_sentinel_failover(
    project: Project, oidc_provider: OidcProvider, app_workdir: Path, tmp_path: Path
) -> None:
    tag = secrets.token_hex(4)  # users of this test only: the provider is shared
    with (
        SentinelRedisServers(tmp_path) as servers,
        two_apps(project, oidc_provider, app_workdir, servers.url) as apps,
    ):
        cookies = {f"ha-{i}-{tag}": log_in(apps[i % 2], f"ha-{i}-{tag}") for i in range(4)}
        for user, cookie in cookies.items():
            assert [user_of(app, cookie) for app in apps] == [(200, user)] * 2
        servers.wait_replicated()

        answers: list[tuple[str, tuple[int, str | None]]] = []
        done = threading.Event()

        def hammer() -> None:
            while not done.is_set():
                for user, cookie in cookies.items():
                    answers.extend((user, user_of(app, cookie)) for app in apps)

        load = threading.Thread(target=hammer)
        load.start()
        try:
            time.sleep(0.3)
            old_primary = servers.primary_port()
            servers.stop_primary()
            wait_for(lambda: servers.primary_port() != old_primary, FAILOVER_WITHIN, "failover")
            time.sleep(1.0)  # requests go on while the apps find the new primary
        finally:
            done.set()
            load.join()

        statuses = {status for _, (status, _) in answers}
        assert statuses <= {200, 503}, statuses
        assert all(sub == user for user, (status, sub) in answers if status == 200)

        def all_served() -> bool:
            return all(
                user_of(app, cookie) == (200, user)
                for user, cookie in cookies.items()
                for app in apps
            )

        wait_for(all_served, RECOVER_WITHIN, "every session to be served after the failover")
        # Each app's cache follows the primary: its tracking connection is on the new one.
        primary = servers.server_on(servers.primary_port())
        wait_for(
            lambda: primary.cli("CLIENT", "LIST").count("name=session-cache") == 2,
            FAILOVER_WITHIN,  # they retry after 1, 2, 5 s
            "the caches to track the new primary",
        )
        (user, cookie), *others = cookies.items()
        assert get(apps[1], "/auth/logout", cookie, HTML) == 303
        assert [user_of(app, cookie)[0] for app in apps] == [401, 401]

        user, cookie = others[0]
        result = oidc_provider.logout(user, client_id=apps[0].client.client_id)
        assert result["backchannel"] and all(entry["ok"] for entry in result["backchannel"])
        assert [user_of(app, cookie)[0] for app in apps] == [401, 401]
        for user, cookie in others[1:]:
            assert [user_of(app, cookie) for app in apps] == [(200, user)] * 2


@pytest.mark.parametrize("topology", ["cluster", "sentinel"])
def test_a_cluster_and_a_sentinel_set_over_tls_with_passwords(
    project: Project,
    oidc_provider: OidcProvider,
    app_workdir: Path,
    tmp_path: Path,
    topology: str,
) -> None:
    user = f"tls-{topology}-{secrets.token_hex(4)}"
    servers = RedisClusterServers if topology == "cluster" else SentinelRedisServers
    with (
        servers(tmp_path, tls=True) as redis,
        two_apps(project, oidc_provider, app_workdir, redis.url) as apps,
    ):
        assert redis.url.startswith(f"rediss+{topology}://")
        cookie = log_in(apps[0], user)
        assert [user_of(app, cookie) for app in apps] == [(200, user)] * 2
        if isinstance(redis, SentinelRedisServers):
            # Each app's cache reaches the primary the sentinels name, over TLS too.
            wait_for(
                lambda: redis.primary.cli("CLIENT", "LIST").count("name=session-cache") == 2,
                FAILOVER_WITHIN,
                "the caches to track the primary",
            )
        assert get(apps[1], "/auth/logout", cookie, HTML) == 303
        assert [user_of(app, cookie)[0] for app in apps] == [401, 401]
