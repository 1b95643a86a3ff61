"""The test OpenID provider: panva oidc-provider (``tests/e2e/provider/server.mjs``) under Node."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import httpx

from components.process import HOST, TESTS_DIR, ChildProcess, missing_component

PROVIDER_DIR = TESTS_DIR / "e2e" / "provider"


class OidcClient(NamedTuple):
    client_id: str
    client_secret: str


@dataclass(frozen=True)
class AccountActivity:
    """What the provider did for one account (``GET /__test/account``), since it started.

    ``token_grants``: successful token requests by grant type; ``token_errors``: failed ones by
    grant type, then error code; ``revoked_grants``: grants revoked by the provider's own rules, by
    route (``"revocation"``: RFC 7009, ``"token"``: reuse of a spent refresh token);
    ``live_grants``: the account's grants that still exist.
    """

    token_grants: dict[str, int]
    token_errors: dict[str, dict[str, int]]
    revoked_grants: dict[str, int]
    live_grants: int

    @property
    def refreshes(self) -> int:
        """Successful ``grant_type=refresh_token`` requests."""
        return self.token_grants.get("refresh_token", 0)

    @property
    def logins(self) -> int:
        """Successful ``grant_type=authorization_code`` requests."""
        return self.token_grants.get("authorization_code", 0)


class OidcProvider(ChildProcess):
    """``tests/e2e/provider/server.mjs`` (panva oidc-provider) at ``http://127.0.0.1:<port>``.

    State lives in memory: :meth:`stop` then :meth:`start` (same port, same signing keys) loses all
    clients, sessions and grants, and :meth:`start` registers nothing again; the caller does.
    Use :meth:`pause`/:meth:`resume` for a provider that hangs instead of refusing connections.
    """

    name = "oidc-provider"

    def __init__(
        self, port: int | None = None, *, access_token_ttl: int = 300, id_token_ttl: int = 300
    ) -> None:
        super().__init__(port)
        self.issuer = f"http://{HOST}:{self.port}"
        self.ready_text = f"ready {self.issuer}"
        self.access_token_ttl = access_token_ttl
        self.id_token_ttl = id_token_ttl

    def command(self) -> list[str]:
        node = shutil.which("node")
        if node is None:
            missing_component("Node.js (20 or later)", "apt-get install -y nodejs")
        if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
            missing_component("oidc-provider (npm)", "npm ci --prefix tests/e2e/provider")
        return [node, str(PROVIDER_DIR / "server.mjs")]

    def popen_options(self) -> dict[str, Any]:
        env = {
            **os.environ,
            "PORT": str(self.port),
            "ISSUER": self.issuer,
            "ACCESS_TOKEN_TTL": str(self.access_token_ttl),
            "ID_TOKEN_TTL": str(self.id_token_ttl),
        }
        return {"env": env, "cwd": PROVIDER_DIR}

    def url(self, path: str) -> str:
        return f"{self.issuer}{path}"

    def metadata(self) -> dict[str, Any]:
        """The discovery document (``/.well-known/openid-configuration``)."""
        response = httpx.get(self.url("/.well-known/openid-configuration"))
        response.raise_for_status()
        return dict(response.json())

    def register_client(
        self,
        redirect_uris: Sequence[str],
        post_logout_redirect_uris: Sequence[str] = (),
        backchannel_logout_uri: str | None = None,
        **metadata: Any,
    ) -> OidcClient:
        """Register a confidential client (client_secret_basic) by Dynamic Client Registration.

        Extra keyword arguments are more client metadata, e.g. ``token_endpoint_auth_method``.
        """
        body: dict[str, Any] = {
            "redirect_uris": list(redirect_uris),
            "post_logout_redirect_uris": list(post_logout_redirect_uris),
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_basic",
        }
        if backchannel_logout_uri is not None:
            body["backchannel_logout_uri"] = backchannel_logout_uri
            body["backchannel_logout_session_required"] = True
        body.update(metadata)
        response = httpx.post(self.url("/reg"), json=body)
        if response.status_code != 201:
            raise RuntimeError(f"registration failed: {response.status_code} {response.text}")
        registered = response.json()
        return OidcClient(registered["client_id"], registered.get("client_secret", ""))

    def logout(self, sub: str, client_id: str | None = None) -> dict[str, Any]:
        """End the provider sessions of ``sub`` (test-only route) and send back-channel logouts.

        Returns ``{"sub": ..., "backchannel": [{"client_id", "ok", "status"?, "error"?}, ...]}``.
        """
        body = {"sub": sub} if client_id is None else {"sub": sub, "client_id": client_id}
        response = httpx.post(self.url("/__test/logout"), json=body, timeout=10)
        response.raise_for_status()
        return dict(response.json())

    def configure_account(
        self, sub: str, *, access_token_ttl: int | None = None, refresh_delay: float | None = None
    ) -> None:
        """Change how the account ``sub`` gets tokens from now on (test-only route).

        ``access_token_ttl`` (seconds) applies to access tokens issued afterwards, including
        refreshed ones; ``refresh_delay`` (seconds, 0 for none) holds back the token endpoint's
        answers to its refresh requests. Arguments left out keep their current values.
        """
        body: dict[str, Any] = {"sub": sub}
        if access_token_ttl is not None:
            body["access_token_ttl"] = access_token_ttl
        if refresh_delay is not None:
            body["refresh_delay_ms"] = round(refresh_delay * 1000)
        response = httpx.post(self.url("/__test/account"), json=body, timeout=10)
        response.raise_for_status()

    def account_activity(self, sub: str) -> AccountActivity:
        """Token requests, errors and grants of the account ``sub`` (test-only route)."""
        response = httpx.get(self.url("/__test/account"), params={"sub": sub}, timeout=10)
        response.raise_for_status()
        data = response.json()
        return AccountActivity(
            token_grants=data["token_grants"],
            token_errors=data["token_errors"],
            revoked_grants=data["revoked_grants"],
            live_grants=data["live_grants"],
        )

    def revoke_grants(self, sub: str) -> int:
        """Revoke every grant of ``sub`` with its tokens, telling no one (test-only route).

        Like an administrator revoking the user's access: refresh tokens get ``invalid_grant``.
        Returns how many grants there were.
        """
        response = httpx.post(self.url("/__test/revoke-grants"), json={"sub": sub}, timeout=10)
        response.raise_for_status()
        return int(response.json()["revoked"])
