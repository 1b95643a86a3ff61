"""The development provider, plus what Auth0's client-initiated account linking does.

At Auth0 an Action ("Client-Initiated Account Linking") runs when an authorization
request asks for scope `link_account` (or `unlink_account`), with the logged-in user's
ID token as `id_token_hint` and a connection as `requested_connection`:

- link: the user signs in at that connection, and that identity is linked to the user
  of the ID token; the login then goes on as that (primary) user.
- unlink: the primary user signs in again, and their identity at that connection is
  removed.

A refusal reaches the app as `error=access_denied` with a description, as the Action's
`api.access.deny(...)` does. Here, "signing in at a connection" is typing a username.
"""

import time
from typing import Any
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from devserver.provider import FakeProvider

LINK_SCOPE = "link_account"
UNLINK_SCOPE = "unlink_account"


class LinkingProvider(FakeProvider):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Knobs for tests: connections users may link, and the users' linked identities.
        self.connections = {"google-oauth2", "github", "Username-Password-Authentication"}
        self.identities: dict[str, list[tuple[str, str]]] = {}  # user -> (connection, username)
        self.link_requests: list[dict[str, str]] = []  # authorization requests to (un)link

    def linked(self, user: str) -> list[tuple[str, str]]:
        """The identities linked to `user`: (connection, username of that identity)."""
        return list(self.identities.get(user, []))

    def _approve(self, params: dict[str, str], username: str) -> str:
        request = self._authorization_request(params)
        scopes = request.get("scope", "").split()
        if LINK_SCOPE not in scopes and UNLINK_SCOPE not in scopes:
            return super()._approve(params, username)
        self.link_requests.append(dict(request))
        try:
            primary = self._change_identities(request, username, unlink=UNLINK_SCOPE in scopes)
        except ValueError as exc:
            self._pushed.pop(params.get("request_uri", ""), None)
            answer = {
                "error": "access_denied",
                "error_description": str(exc),
                "state": request.get("state", ""),
                "iss": self.issuer,
            }
            return f"{request['redirect_uri']}?{urlencode(answer)}"
        return super()._approve(params, primary)

    def _change_identities(self, request: dict[str, str], username: str, *, unlink: bool) -> str:
        """Link (or unlink) as the Action does; return the primary user, who logs in."""
        primary = self._hinted_user(request.get("id_token_hint", ""))
        connection = request.get("requested_connection", "")
        if connection not in self.connections:
            raise ValueError(f"unknown requested_connection {connection!r}")
        identities = self.identities.setdefault(primary, [])
        if unlink:
            if username != primary:
                raise ValueError("sign in as the primary user to unlink an account")
            remaining = [identity for identity in identities if identity[0] != connection]
            if len(remaining) == len(identities):
                raise ValueError(f"the user has no identity at {connection}")
            self.identities[primary] = remaining
        else:
            if username == primary:
                raise ValueError("an account cannot be linked to itself")
            if (connection, username) not in identities:
                identities.append((connection, username))
        return primary

    def _hinted_user(self, id_token_hint: str) -> str:
        """The user of an unexpired ID token that we issued to this client."""
        if not id_token_hint:
            raise ValueError("id_token_hint is required")
        try:
            token = jwt.decode(id_token_hint, KeySet(self.keys), algorithms=["RS256"])  # type: ignore[arg-type]
        except (JoseError, ValueError):
            raise ValueError("id_token_hint is not a valid ID token") from None
        claims = token.claims
        exp = claims.get("exp")
        if (
            claims.get("iss") != self.issuer
            or claims.get("aud") != self.client_id
            or not isinstance(exp, int)
            or exp <= time.time()
            or not isinstance(claims.get("sub"), str)
        ):
            raise ValueError("id_token_hint is expired or not for this client")
        return str(claims["sub"])
