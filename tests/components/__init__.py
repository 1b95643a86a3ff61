"""Real components for end-to-end tests: an OpenID provider, Redis, PostgreSQL, the generated app
under uvicorn, a browser, and login helpers. One module per component:

- ``process``: :class:`ChildProcess`, the base of every server below, and what they share
  (``HOST``, ``ARTIFACTS_DIR``, :func:`free_port`, :func:`wait_for`, :func:`missing_component`);
- ``provider``: :class:`OidcProvider` (panva oidc-provider from ``tests/e2e/provider``);
- ``app``: :class:`AppServer` (a rendered project's app under uvicorn);
- ``redis``: :class:`RedisServer`, :class:`TlsRedisServer`, :class:`RedisClusterServers`,
  :class:`SentinelRedisServers`;
- ``postgres``: :class:`PostgresServer`;
- ``browser``: :func:`chromium_browser` (Playwright);
- ``oauth``: PKCE, authorization URLs, token claims, the provider's login and logout pages.

Each component is a context manager that runs one child process on 127.0.0.1, logs its output to
``tests/artifacts/<name>-<port>.log`` and is always stopped on exit. A component that is not
installed skips the test (or fails it when ``CI=true``), see :func:`missing_component`.
Import from the package (``from components import AppServer``): it re-exports every name.
"""

from components.app import (
    APP_SETTING_PREFIXES,
    AUTH_PREFIX,
    AppServer,
    RenderedProject,
    app_base_url,
    register_app_client,
)
from components.browser import CHROMIUM, CHROMIUM_ARGS, chromium_browser
from components.oauth import authorize_url, jwt_claims, pkce_pair, provider_login, provider_logout
from components.postgres import PostgresServer, child_pids, postgres_bin
from components.process import (
    ARTIFACTS_DIR,
    HOST,
    START_TIMEOUT,
    STOP_TIMEOUT,
    TESTS_DIR,
    ChildProcess,
    free_port,
    missing_component,
    wait_for,
)
from components.provider import PROVIDER_DIR, AccountActivity, OidcClient, OidcProvider
from components.redis import (
    RedisClusterServers,
    RedisServer,
    SentinelRedisServers,
    TlsRedisServer,
    redis_ping,
)

__all__ = [
    "APP_SETTING_PREFIXES",
    "ARTIFACTS_DIR",
    "AUTH_PREFIX",
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "HOST",
    "PROVIDER_DIR",
    "START_TIMEOUT",
    "STOP_TIMEOUT",
    "TESTS_DIR",
    "AccountActivity",
    "AppServer",
    "ChildProcess",
    "OidcClient",
    "OidcProvider",
    "PostgresServer",
    "RedisClusterServers",
    "RedisServer",
    "RenderedProject",
    "SentinelRedisServers",
    "TlsRedisServer",
    "app_base_url",
    "authorize_url",
    "child_pids",
    "chromium_browser",
    "free_port",
    "jwt_claims",
    "missing_component",
    "pkce_pair",
    "postgres_bin",
    "provider_login",
    "provider_logout",
    "redis_ping",
    "register_app_client",
    "wait_for",
]
