"""The development provider, plus Auth0's Connected Accounts and Token Vault.

What it adds, shaped as Auth0 documents it:

- the My Account API's connected accounts (`/me/v1/connected-accounts/...`): connect,
  complete, list and delete, with bearer tokens for the audience `{issuer}/me/` and one
  scope per operation; errors are problem details (RFC 9457);
- the consent step the `connect_uri` leads to (`/connect?ticket=...`), which sends the
  browser back to the app with a `connect_code` (or `error=access_denied`);
- the Token Vault exchange at the token endpoint (grant type
  `urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token`):
  a refresh token for the access token of a connected account.

"Connecting an account at a connection" is typing a username here; the connected
provider's access tokens are made up, and recorded in `connection_tokens`.
"""

import html
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from devserver.provider import FakeProvider

VAULT_GRANT = "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token"
REFRESH_SUBJECT_TYPE = "urn:ietf:params:oauth:token-type:refresh_token"
CONNECTION_ACCESS_TYPE = "http://auth0.com/oauth/token-type/federated-connection-access-token"
CONNECT_TTL = 300  # seconds a connect request (its ticket and connect code) can be used
API = "/me/v1/connected-accounts"


@dataclass
class _ConnectRequest:
    user: str
    connection: str
    scopes: list[str]
    redirect_uri: str
    state: str
    code_challenge: str | None
    ticket: str
    expires_at: float
    connect_code: str | None = None  # set once the user allowed the connection
    username: str | None = None  # who the user is at the connection


@dataclass
class ConnectedAccount:
    id: str
    user: str
    connection: str
    username: str
    scopes: list[str]
    created_at: str = field(default_factory=lambda: f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}")

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "connection": self.connection,
            "access_type": "offline",
            "scopes": self.scopes,
            "created_at": self.created_at,
        }


class ConnectedAccountsProvider(FakeProvider):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Knobs for tests: connections enabled for Connected Accounts, with the scopes
        # they ask for by default; how long connection tokens last.
        self.connections: dict[str, list[str]] = {
            "google-oauth2": ["openid", "https://www.googleapis.com/auth/calendar.readonly"],
            "github": ["read:user", "repo"],
        }
        self.connection_token_ttl = 3600
        self.accounts: list[ConnectedAccount] = []
        self.connect_requests: list[dict[str, Any]] = []  # bodies of connect requests
        self.complete_requests: list[dict[str, Any]] = []  # bodies of complete requests
        self.connection_tokens: dict[str, ConnectedAccount] = {}  # issued token -> account
        self._connects: dict[str, _ConnectRequest] = {}  # auth_session -> request

    @property
    def my_account_audience(self) -> str:
        return self.issuer.rstrip("/") + "/me/"

    def accounts_of(self, user: str) -> list[ConnectedAccount]:
        return [account for account in self.accounts if account.user == user]

    def connect(
        self, connect_url: str, username: str = "alice.connected", allow: bool = True
    ) -> str:
        """Act as the user at the consent step of `connect_url`; return the redirect back
        to the app. Raises ValueError for an unknown or expired ticket."""
        ticket = dict(parse_qsl(urlsplit(connect_url).query)).get("ticket", "")
        return self._decide(ticket, username, allow=allow)

    def _routes(self) -> list[Route]:
        return [
            *super()._routes(),
            Route("/connect", self._consent, methods=["GET", "POST"]),
            Route(f"{API}/connect", self._connect, methods=["POST"]),
            Route(f"{API}/complete", self._complete, methods=["POST"]),
            Route(f"{API}/accounts", self._list_accounts),
            Route(API + "/accounts/{account_id}", self._delete_account, methods=["DELETE"]),
        ]

    # -- the My Account API ---------------------------------------------------------

    async def _connect(self, request: Request) -> Response:
        if (reply := self._reply("connect")) is not None:
            return reply
        user = self._authorized(request, "create:me:connected_accounts")
        if isinstance(user, Response):
            return user
        body = await _json_object(request)
        if isinstance(body, Response):
            return body
        self.connect_requests.append(body)
        connection, redirect_uri = body.get("connection"), body.get("redirect_uri")
        state, scopes = body.get("state", ""), body.get("scopes")
        challenge, method = body.get("code_challenge"), body.get("code_challenge_method")
        if not isinstance(connection, str) or not 1 <= len(connection) <= 128:
            return _invalid("connection", "connection is required")
        if connection not in self.connections:
            return _invalid("connection", "the connection is not enabled for Connected Accounts")
        if redirect_uri not in self.redirect_uris:
            return _invalid("redirect_uri", "redirect_uri is not an allowed callback URL")
        if not isinstance(state, str):
            return _invalid("state", "state must be a string")
        if scopes is not None and (
            not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes)
        ):
            return _invalid("scopes", "scopes must be an array of strings")
        if challenge is not None and (
            not isinstance(challenge, str) or not 43 <= len(challenge) <= 128 or method != "S256"
        ):
            return _invalid("code_challenge", "code_challenge must be an S256 challenge")
        auth_session = secrets.token_urlsafe(24)
        self._connects[auth_session] = _ConnectRequest(
            user=user,
            connection=connection,
            scopes=scopes or self.connections[connection],
            redirect_uri=str(redirect_uri),
            state=state,
            code_challenge=challenge,
            ticket=secrets.token_urlsafe(24),
            expires_at=time.time() + CONNECT_TTL,
        )
        answer = {
            "connect_uri": f"{self.issuer.rstrip('/')}/connect",
            "auth_session": auth_session,
            "connect_params": {"ticket": self._connects[auth_session].ticket},
            "expires_in": CONNECT_TTL,
        }
        return JSONResponse(answer, status_code=201)

    async def _complete(self, request: Request) -> Response:
        if (reply := self._reply("complete")) is not None:
            return reply
        user = self._authorized(request, "create:me:connected_accounts")
        if isinstance(user, Response):
            return user
        body = await _json_object(request)
        if isinstance(body, Response):
            return body
        self.complete_requests.append(body)
        auth_session, code = body.get("auth_session"), body.get("connect_code")
        verifier = body.get("code_verifier")
        if not isinstance(auth_session, str) or not 1 <= len(auth_session) <= 64:
            return _invalid("auth_session", "auth_session is required")
        if not isinstance(code, str) or not 1 <= len(code) <= 46:
            return _invalid("connect_code", "connect_code is required")
        connect = self._connects.pop(auth_session, None)  # one attempt per connect request
        if connect is None or connect.user != user or connect.expires_at < time.time():
            return _problem(404, "Not Found", "The connect request was not found or expired.")
        if connect.connect_code is None or not secrets.compare_digest(code, connect.connect_code):
            return _invalid("connect_code", "connect_code is invalid")
        if body.get("redirect_uri") != connect.redirect_uri:
            return _invalid("redirect_uri", "redirect_uri does not match the connect request")
        if connect.code_challenge is not None and (
            not isinstance(verifier, str)
            or not 43 <= len(verifier) <= 128
            or create_s256_code_challenge(verifier) != connect.code_challenge
        ):
            return _invalid("code_verifier", "code_verifier does not match the code_challenge")
        account = next(
            (
                a
                for a in self.accounts_of(user)
                if (a.connection, a.username) == (connect.connection, connect.username)
            ),
            None,
        )
        if account is None:
            account = ConnectedAccount(
                id=f"cac_{secrets.token_hex(8)}",
                user=user,
                connection=connect.connection,
                username=connect.username or user,
                scopes=connect.scopes,
            )
            self.accounts.append(account)
        else:
            account.scopes = sorted(set(account.scopes) | set(connect.scopes))
        return JSONResponse(account.as_json(), status_code=201)

    async def _list_accounts(self, request: Request) -> Response:
        if (reply := self._reply("accounts")) is not None:
            return reply
        user = self._authorized(request, "read:me:connected_accounts")
        if isinstance(user, Response):
            return user
        connection = request.query_params.get("connection")
        take, start = request.query_params.get("take", "10"), request.query_params.get("from", "0")
        if not take.isdigit() or not 1 <= int(take) <= 20 or not start.isdigit():
            return _invalid("take", "take must be 1 to 20; from must come from `next`")
        accounts = [
            a for a in self.accounts_of(user) if connection is None or a.connection == connection
        ]
        end = int(start) + int(take)
        answer: dict[str, Any] = {"accounts": [a.as_json() for a in accounts[int(start) : end]]}
        if end < len(accounts):
            answer["next"] = str(end)
        return JSONResponse(answer)

    async def _delete_account(self, request: Request) -> Response:
        if (reply := self._reply("delete_account")) is not None:
            return reply
        user = self._authorized(request, "delete:me:connected_accounts")
        if isinstance(user, Response):
            return user
        account_id = request.path_params["account_id"]
        account = next((a for a in self.accounts_of(user) if a.id == account_id), None)
        if account is None:
            return _problem(404, "Not Found", "The connected account was not found.")
        self.accounts.remove(account)
        return Response(status_code=204)

    def _authorized(self, request: Request, scope: str) -> str | Response:
        """The user of the request's My Account API token, or the API's refusal."""
        issued = self.access_token_of(request)
        if issued is None or issued.audience != self.my_account_audience:
            return _problem(401, "Unauthorized", "Invalid token.")
        if issued.expires_at <= time.time():
            return _problem(401, "Unauthorized", "The token has expired.")
        if scope not in issued.scope.split():
            return _problem(403, "Forbidden", f"Insufficient scope, expected: {scope}.")
        return issued.grant.username

    # -- the consent step and the Token Vault ------------------------------------

    async def _consent(self, request: Request) -> Response:
        if (reply := self._reply("consent")) is not None:
            return reply
        if request.method == "POST":
            form = {key: str(value) for key, value in (await request.form()).items()}
            try:
                target = self._decide(
                    form.get("ticket", ""), form.get("username", ""), allow="allow" in form
                )
            except ValueError as exc:
                return HTMLResponse(f"<h1>Refused: {html.escape(str(exc))}</h1>", status_code=400)
            return RedirectResponse(target, status_code=303)
        ticket = request.query_params.get("ticket", "")
        connect = self._by_ticket(ticket)
        if connect is None:
            return HTMLResponse("<h1>Refused: unknown or expired ticket</h1>", status_code=400)
        return HTMLResponse(_consent_form(ticket, connect))

    def _by_ticket(self, ticket: str) -> _ConnectRequest | None:
        now = time.time()
        return next(
            (
                c
                for c in self._connects.values()
                if c.ticket and c.ticket == ticket and c.expires_at > now
            ),
            None,
        )

    def _decide(self, ticket: str, username: str, *, allow: bool) -> str:
        connect = self._by_ticket(ticket)
        if connect is None:
            raise ValueError("unknown or expired ticket")
        connect.ticket = ""  # a ticket is used once
        if allow and username.strip():
            connect.connect_code = secrets.token_urlsafe(24)
            connect.username = username.strip()
            answer = {"connect_code": connect.connect_code, "state": connect.state}
        else:
            answer = {
                "error": "access_denied",
                "error_description": "The user did not allow the connection.",
                "state": connect.state,
            }
        return f"{connect.redirect_uri}?{urlencode(answer)}"

    def _grant(self, form: dict[str, str]) -> Response:
        if form.get("grant_type") != VAULT_GRANT:
            return super()._grant(form)
        if (
            form.get("subject_token_type") != REFRESH_SUBJECT_TYPE
            or form.get("requested_token_type") != CONNECTION_ACCESS_TYPE
            or not form.get("connection")
        ):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        grant = self._refresh_tokens.get(form.get("subject_token", ""))
        if grant is None:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        account = next(
            (a for a in self.accounts_of(grant.username) if a.connection == form["connection"]),
            None,
        )
        if account is None:
            body = {
                "error": "federated_connection_refresh_token_not_found",
                "error_description": "Federated connection Refresh Token not found.",
            }
            return JSONResponse(body, status_code=401)
        token = f"{account.connection}-{secrets.token_urlsafe(24)}"
        self.connection_tokens[token] = account
        answer: dict[str, Any] = {
            "access_token": token,
            "expires_in": self.connection_token_ttl,
            "scope": " ".join(account.scopes),
            "token_type": "Bearer",
            "issued_token_type": CONNECTION_ACCESS_TYPE,
        }
        body = {**answer, **self.token_response}
        self.issued.append(body)
        return JSONResponse(
            {k: v for k, v in body.items() if v is not None}, headers={"Cache-Control": "no-store"}
        )


async def _json_object(request: Request) -> dict[str, Any] | Response:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return _problem(400, "Bad Request", "The body must be a JSON object.")
    return body


def _problem(status: int, title: str, detail: str, **members: Any) -> JSONResponse:
    """A My Account API error: problem details (RFC 9457)."""
    body = {
        "type": f"https://auth0.com/api-errors/A0E-{status}-0001",
        "status": status,
        "title": title,
        "detail": detail,
        **members,
    }
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def _invalid(name: str, detail: str) -> JSONResponse:
    errors = [{"detail": detail, "field": name, "source": "body"}]
    return _problem(400, "Bad Request", "Invalid request.", validation_errors=errors)


def _consent_form(ticket: str, connect: _ConnectRequest) -> str:
    scopes = ", ".join(connect.scopes) or "its default scopes"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Connect an account</title></head>
<body style="font: 16px system-ui, sans-serif; max-width: 26rem; margin: 4rem auto">
<h1>Connect your {html.escape(connect.connection)} account</h1>
<p>The app asks for: {html.escape(scopes)}. This local provider accepts any username.</p>
<form method="post" action="/connect">
<input type="hidden" name="ticket" value="{html.escape(ticket)}">
<label for="username">Username at {html.escape(connect.connection)}</label>
<input id="username" name="username" value="{html.escape(connect.user)}.connected" required>
<button type="submit" name="allow" value="1">Allow</button>
<button type="submit" name="deny" value="1">Deny</button></form></body></html>"""
