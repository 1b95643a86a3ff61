"""Auth0's My Account API, the part for Connected Accounts: connect, complete, list, delete.

The API lives at `{issuer}me/v1/` and wants an access token for the audience
`{issuer}me/` with one scope per operation, which the app gets with the session's
refresh token (Auth0's multi-resource refresh tokens). Requests go through the
app's `Provider`: same HTTP client, timeout and response size limit.

The API answers errors with problem details (RFC 9457); they become `MyAccountError`
(a `ProviderError` in the tree of `errors.py`), whose error page shows the API's code.
"""

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from authlib.oauth2.rfc7636 import create_s256_code_challenge

from app.auth.bodies import parse_json
from app.auth.errors import InvalidRequest, ProviderError, ProviderUnavailable
from app.auth.provider import Provider

CONNECT_SCOPE = "create:me:connected_accounts"
READ_SCOPE = "read:me:connected_accounts"
DELETE_SCOPE = "delete:me:connected_accounts"
PAGE_SIZE = 20  # connected accounts asked for per request
MAX_PAGES = 10  # `list_accounts` reads at most this many pages
ACCOUNT_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")  # such as "cac_abc123"
MAX_DETAIL_LENGTH = 300  # of the API's error description, as shown on the error page


class MyAccountError(ProviderError):
    """The My Account API refused a request. `error_code` is the API's code for the
    problem, `api_status` its HTTP status. Shown as 400 when the API found the request
    invalid (an expired or replayed connect code, an unknown account), otherwise 502:
    a refused token means the app's settings at Auth0 need a look (see README)."""

    code = "my_account_error"
    title = "Connected accounts problem"

    def __init__(self, message: str, *, error_code: str, api_status: int) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.api_status = api_status
        self.status_code = 400 if api_status in (400, 404, 409, 410, 422) else 502


@dataclass(frozen=True, slots=True)
class ConnectTicket:
    """Where to send the browser to connect an account, and the API's id for the attempt."""

    url: str  # the API's `connect_uri` with its `ticket`
    auth_session: str


@dataclass(frozen=True, slots=True)
class ConnectedAccount:
    id: str
    connection: str
    scopes: tuple[str, ...]
    created_at: str | None  # ISO 8601, as the API sends it
    expires_at: str | None


class MyAccountApi:
    def __init__(self, provider: Provider) -> None:
        self._provider = provider
        self.audience = provider.config.issuer.rstrip("/") + "/me/"
        self._base = self.audience + "v1/connected-accounts/"

    async def connect(
        self,
        token: str,
        *,
        connection: str,
        scopes: list[str],
        redirect_uri: str,
        state: str,
        code_verifier: str,
    ) -> ConnectTicket:
        """Start connecting an account at `connection` (token scope CONNECT_SCOPE)."""
        body: dict[str, Any] = {
            "connection": connection,
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": create_s256_code_challenge(code_verifier),
            "code_challenge_method": "S256",
        }
        if scopes:
            body["scopes"] = scopes
        answer = await self._call("POST", "connect", token, "start connecting", 201, json=body)
        return parse_connect_ticket(answer)

    async def complete(
        self,
        token: str,
        *,
        auth_session: str,
        connect_code: str,
        redirect_uri: str,
        code_verifier: str,
    ) -> ConnectedAccount:
        """Finish connecting an account with the `connect_code` Auth0 sent back."""
        body = {
            "auth_session": auth_session,
            "connect_code": connect_code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        answer = await self._call("POST", "complete", token, "connect the account", 201, json=body)
        return parse_account(answer)

    async def list_accounts(
        self, token: str, *, connection: str | None = None
    ) -> list[ConnectedAccount]:
        """The user's connected accounts, of one `connection` if given (token scope READ_SCOPE)."""
        accounts: list[ConnectedAccount] = []
        params: dict[str, str | int] = {"take": PAGE_SIZE}
        if connection:
            params["connection"] = connection
        for _ in range(MAX_PAGES):
            path = "accounts?" + urlencode(params)
            answer = await self._call("GET", path, token, "list the connected accounts", 200)
            page = answer.get("accounts") if isinstance(answer, dict) else None
            if not isinstance(page, list):
                raise ProviderError("The account service sent a malformed list of accounts.")
            accounts.extend(parse_account(item) for item in page)
            following = answer.get("next")
            if not isinstance(following, str) or not following:
                break
            params["from"] = following
        return accounts

    async def delete_account(self, token: str, account_id: str) -> None:
        """Disconnect the account `account_id` (token scope DELETE_SCOPE)."""
        if not ACCOUNT_ID.fullmatch(account_id):
            raise InvalidRequest("That is not a connected account id.")
        path = "accounts/" + account_id
        await self._call("DELETE", path, token, "disconnect the account", 204)

    async def _call(
        self, method: str, path: str, token: str, action: str, expected: int, **kwargs: Any
    ) -> Any:
        """Send a request; return the JSON body of the `expected` answer (None if empty)."""
        headers = {"Authorization": f"Bearer {token}"}
        status, body = await self._provider.send(
            method, self._base + path, headers=headers, **kwargs
        )
        try:
            data = parse_json(body) if body.strip() else None
        except ValueError:
            data = None
        if status == expected:
            return data
        if status >= 500 or status == 429:
            raise ProviderUnavailable(
                "The account service is having trouble right now. Please try again shortly."
            )
        if 400 <= status < 500 and isinstance(data, dict):
            raise problem_error(data, status=status, action=action)
        raise ProviderError("The account service sent a response we could not understand.")


def parse_connect_ticket(data: Any) -> ConnectTicket:
    """The answer to a connect request, checked: the browser is sent to its URL."""
    params = data.get("connect_params") if isinstance(data, dict) else None
    uri = data.get("connect_uri") if isinstance(data, dict) else None
    auth_session = data.get("auth_session") if isinstance(data, dict) else None
    ticket = params.get("ticket") if isinstance(params, dict) else None
    parts = urlsplit(uri) if isinstance(uri, str) else None
    if (
        parts is None
        or parts.scheme not in ("https", "http")
        or not parts.netloc
        or parts.fragment
        or not isinstance(ticket, str)
        or not ticket
        or not isinstance(auth_session, str)
        or not auth_session
    ):
        raise ProviderError("The account service's answer to the connect request is malformed.")
    separator = "&" if parts.query else "?"
    url = f"{uri}{separator}{urlencode({'ticket': ticket})}"
    return ConnectTicket(url=url, auth_session=auth_session)


def parse_account(data: Any) -> ConnectedAccount:
    """One connected account as the API describes it, checked."""
    if not isinstance(data, dict):
        raise ProviderError("The account service sent a malformed account.")
    account_id, connection = data.get("id"), data.get("connection")
    scopes = data.get("scopes") or []
    if (
        not isinstance(account_id, str)
        or not account_id
        or not isinstance(connection, str)
        or not isinstance(scopes, list)
        or not all(isinstance(scope, str) for scope in scopes)
    ):
        raise ProviderError("The account service sent a malformed account.")

    def optional(name: str) -> str | None:
        value = data.get(name)
        return value if isinstance(value, str) else None

    return ConnectedAccount(
        id=account_id,
        connection=connection,
        scopes=tuple(scopes),
        created_at=optional("created_at"),
        expires_at=optional("expires_at"),
    )


def problem_error(data: dict[str, Any], *, status: int, action: str) -> MyAccountError:
    """A `MyAccountError` from the API's problem details (or an OAuth-style error body)."""
    problem_type, title = data.get("type"), data.get("title")
    if isinstance(data.get("error"), str):
        error_code = data["error"]
    elif isinstance(problem_type, str) and problem_type.rstrip("/"):
        error_code = problem_type.rstrip("/").rsplit("/", 1)[-1]  # ".../api-errors/A0E-400-0001"
    elif isinstance(title, str) and title:
        error_code = title
    else:
        error_code = f"HTTP {status}"
    error_code = error_code[:64]
    detail = data.get("detail") or data.get("error_description")
    if isinstance(detail, str) and detail.strip(" ."):
        described = f": {detail[:MAX_DETAIL_LENGTH].rstrip(' .')}"
    else:
        described = ""
    return MyAccountError(
        f"The account service refused to {action} ({error_code}){described}.",
        error_code=error_code,
        api_status=status,
    )
