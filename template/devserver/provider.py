"""A small OpenID provider for local development and tests. Never deploy it: it logs in anyone.

It speaks enough OpenID Connect for this app: discovery, JWKS, an authorization
endpoint with a "type any username" form (and `prompt=none`, answered from the browser's
last sign-in here), pushed authorization requests (RFC 9126), a token endpoint
(authorization code with PKCE, refresh tokens with rotation, client credentials),
userinfo, token revocation and RP-initiated logout. Clients authenticate with their
secret, or with `private_key_jwt` (RFC 7523) once `client_public_key` is set. Like
Auth0, it puts `org_id`/`org_name` into ID tokens of logins into an `organization`,
`acr`/`amr` of the strength asked for (`acr_values`), and issues JWT access tokens
(RFC 9068) for an API `audience`.

Tests use it in-process through `provider.transport` (no network) and reach into it
to misbehave on purpose: `id_token_claims`, `id_token_header`, `token_response`,
`metadata`, `replies`, `reachable` and `require_par` change what it answers.
"""

import html
import json
import secrets
import time
import warnings
from base64 import b64decode, urlsafe_b64decode
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import ECKey, KeySet, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from app.auth.urls import CALLBACK_PATH

LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGORITHMS = ["RS256", "ES256", "ES384", "ES512"]
CLIENT_CREDENTIALS = ("client_secret", "client_assertion")  # never recorded
PAR_TTL = 60  # seconds a pushed authorization request can be used
MULTI_FACTOR = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"
SIGNED_IN_COOKIE = "dev_provider_user"  # the browser's last sign-in, for prompt=none
_signing_key: RSAKey | None = None


def _shared_signing_key() -> RSAKey:
    """One RSA key per process: generating keys is slow, and tests create many providers."""
    global _signing_key
    if _signing_key is None:
        _signing_key = RSAKey.generate_key(2048, parameters={"kid": "dev-1", "use": "sig"})
    return _signing_key


@dataclass
class _Grant:
    username: str
    client_id: str
    scope: str
    nonce: str | None = None
    redirect_uri: str = ""
    code_challenge: str = ""
    audience: str | None = None  # the API asked for at login
    sid: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    auth_time: int = field(default_factory=lambda: int(time.time()))
    organization: str | None = None  # as the login named it: an id (org_...) or a name
    acr_values: str | None = None


@dataclass(frozen=True)
class IssuedAccessToken:
    """Who an access token is about, and what it is for."""

    grant: _Grant
    audience: str | None
    scope: str
    expires_at: float


@dataclass
class _PushedRequest:
    params: dict[str, str]
    expires_at: float


class FakeProvider:
    def __init__(
        self,
        issuer: str = "https://provider.test",
        *,
        client_id: str = "dev-client",
        client_secret: str | None = None,
        redirect_uris: tuple[str, ...] = (f"http://127.0.0.1:8000{CALLBACK_PATH}",),
        logout_redirect_prefix: str = "http://127.0.0.1:8000/",
        token_ttl: int = 3600,
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.redirect_uris = redirect_uris
        self.logout_redirect_prefix = logout_redirect_prefix
        # The app's Front-Channel Logout URL: set, RP-initiated logout loads it in an iframe.
        self.frontchannel_logout_uri: str | None = None
        self.token_ttl = token_ttl
        self.keys = [_shared_signing_key()]
        # Knobs for tests: merged into what the provider sends (None removes a member).
        self.id_token_claims: dict[str, Any] = {}
        self.id_token_header: dict[str, Any] = {}
        self.token_response: dict[str, Any] = {}
        self.users: dict[str, dict[str, Any]] = {}  # username -> claims to add or change
        self.metadata: dict[str, Any] = {}
        self.replies: dict[str, Response] = {}  # endpoint name -> canned response
        self.reachable: Literal["yes", "refused", "timeout"] = "yes"
        self.require_par = False  # refuse authorization requests that were not pushed
        # The client's public key: when set, clients authenticate with private_key_jwt only.
        self.client_public_key: RSAKey | ECKey | None = None
        self.requests: list[str] = []  # endpoint names, in the order they were called
        self.token_requests: list[dict[str, str]] = []  # token endpoint forms, secrets removed
        self.pushed_requests: list[dict[str, str]] = []  # PAR forms, secrets removed
        self.client_assertions: list[jwt.Token] = []  # accepted private_key_jwt assertions
        self.revoked: list[str] = []  # refresh tokens revoked by the app (RFC 7009)
        self.issued: list[dict[str, Any]] = []  # token responses sent
        self._pushed: dict[str, _PushedRequest] = {}
        self._assertion_ids: set[str] = set()
        self._codes: dict[str, _Grant] = {}
        self._refresh_tokens: dict[str, _Grant] = {}
        self._access_tokens: dict[str, IssuedAccessToken] = {}
        self.app = Starlette(routes=self._routes())
        self.transport = _ProviderTransport(self)

    def _routes(self) -> list[Route]:
        return [
            Route("/.well-known/openid-configuration", self._discovery),
            Route("/jwks", self._jwks),
            Route("/authorize", self._authorize, methods=["GET", "POST"]),
            Route("/par", self._par, methods=["POST"]),
            Route("/token", self._token, methods=["POST"]),
            Route("/userinfo", self._userinfo),
            Route("/revoke", self._revoke, methods=["POST"]),
            Route("/logout", self._logout),
        ]

    # -- what tests call directly ---------------------------------------------

    def login(self, authorize_url: str, username: str = "alice") -> str:
        """Act as a user who logs in as `username`; return the redirect back to the app.

        Raises ValueError for a request the provider refuses (unknown client, ...).
        """
        params = dict(parse_qsl(urlsplit(authorize_url).query))
        return self._approve(params, username)

    def answer_silently(self, params: dict[str, str] | str, username: str | None) -> str:
        """The answer to a `prompt=none` request (its URL or parameters): a login as
        `username`, the user signed in here before, or `login_required` when none did."""
        if isinstance(params, str):
            params = dict(parse_qsl(urlsplit(params).query))
        if username:
            return self._approve(params, username)
        request = self._authorization_request(params)
        answer = {"error": "login_required", "state": request.get("state", ""), "iss": self.issuer}
        return f"{request['redirect_uri']}?{urlencode(answer)}"

    def access_token(
        self,
        sub: str = "alice",
        *,
        audience: str,
        scope: str = "",
        header: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A JWT access token (RFC 9068) for `audience`, as this provider issues them
        (claims set to None are left out)."""
        now = int(time.time())
        body = {
            "iss": self.issuer,
            "sub": sub,
            "aud": audience,
            "client_id": self.client_id,
            "iat": now,
            "exp": now + self.token_ttl,
            "jti": secrets.token_urlsafe(16),
            "scope": scope,
        }
        return self.sign(_merge(body, claims), _merge({"typ": "at+jwt"}, header or {}))

    def frontchannel_logout_url(self, sid: str) -> str:
        """The URL this provider loads in an iframe to end provider session `sid` at the app
        (Front-Channel Logout 1.0 §2, with `iss` and `sid`)."""
        if self.frontchannel_logout_uri is None:
            raise ValueError("set frontchannel_logout_uri first")
        return f"{self.frontchannel_logout_uri}?{urlencode({'iss': self.issuer, 'sid': sid})}"

    def session_id(self, redirect: str) -> str:
        """The provider session (`sid`) of the login whose redirect back to the app (from
        `login`) is `redirect`, before the app has redeemed its code."""
        return self._codes[dict(parse_qsl(urlsplit(redirect).query))["code"]].sid

    def forget_refresh_tokens(self) -> None:
        """Refuse every refresh token issued so far (as after a revoked grant)."""
        self._refresh_tokens.clear()

    def rotate_keys(self) -> None:
        """Sign with a new key from now on (and publish only that one)."""
        kid = f"dev-{secrets.token_hex(4)}"
        self.keys = [RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig"})]

    def sign(self, claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
        """A JWT signed with the provider's current key (RS256 unless `header` names another
        algorithm)."""
        key = self.keys[0]
        header = {"alg": "RS256", "kid": key.kid, **(header or {})}
        with warnings.catch_warnings():  # "EdDSA" is deprecated by name only (RFC 9864)
            warnings.simplefilter("ignore", SecurityWarning)
            return jwt.encode(header, claims, key, algorithms=[header["alg"]])

    def logout_token(
        self,
        *,
        sub: str | None = None,
        sid: str | None = None,
        header: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A back-channel logout token for this client (claims set to None are left out)."""
        now = int(time.time())
        body = {
            "iss": self.issuer,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 120,
            "jti": secrets.token_urlsafe(16),
            "events": {LOGOUT_EVENT: {}},
            "sub": sub,
            "sid": sid,
        }
        return self.sign(_merge(body, claims), _merge({"typ": "logout+jwt"}, header or {}))

    def user_claims(self, username: str) -> dict[str, Any]:
        """Who `username` is: made-up defaults, changed by `users[username]` (None removes)."""
        claims = {
            "sub": username,
            "name": username.title(),
            "email": f"{username}@example.com",
            "email_verified": True,
        }
        return _merge(claims, self.users.get(username, {}))

    # -- endpoints ----------------------------------------------------------------

    def _reply(self, name: str) -> Response | None:
        self.requests.append(name)
        return self.replies.get(name)

    async def _discovery(self, request: Request) -> Response:
        if (reply := self._reply("discovery")) is not None:
            return reply
        base = self.issuer.rstrip("/")
        auth_methods = ["client_secret_basic", "client_secret_post"]
        if self.client_public_key is not None:
            auth_methods = ["private_key_jwt"]
        document = {
            "issuer": self.issuer,
            "authorization_endpoint": f"{base}/authorize",
            "pushed_authorization_request_endpoint": f"{base}/par",
            "require_pushed_authorization_requests": self.require_par,
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/userinfo",
            "jwks_uri": f"{base}/jwks",
            "end_session_endpoint": f"{base}/logout",
            "revocation_endpoint": f"{base}/revoke",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": auth_methods,
            "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "acr_values_supported": [MULTI_FACTOR],
            "frontchannel_logout_supported": True,
            "frontchannel_logout_session_supported": True,
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "authorization_response_iss_parameter_supported": True,
        }
        return JSONResponse(_merge(document, self.metadata))

    async def _jwks(self, request: Request) -> Response:
        if (reply := self._reply("jwks")) is not None:
            return reply
        return JSONResponse(KeySet(self.keys).as_dict(private=False))  # type: ignore[arg-type]

    async def _authorize(self, request: Request) -> Response:
        if (reply := self._reply("authorize")) is not None:
            return reply
        username = ""
        if request.method == "POST":
            form = await request.form()
            params = {key: str(value) for key, value in form.items()}
            username = params.pop("username", "").strip()
        else:
            params = dict(request.query_params)
        try:
            if username:
                response = RedirectResponse(self._approve(params, username), status_code=303)
                response.set_cookie(SIGNED_IN_COOKIE, username, httponly=True, samesite="lax")
                return response
            if self._authorization_request(params).get("prompt") == "none":
                known = request.cookies.get(SIGNED_IN_COOKIE)
                return RedirectResponse(self.answer_silently(params, known), status_code=303)
            self._authorization_request(params)
        except ValueError as exc:
            return HTMLResponse(f"<h1>Refused: {html.escape(str(exc))}</h1>", status_code=400)
        return HTMLResponse(_login_form(params))  # a pushed request stays a request_uri

    def _authorization_request(self, params: dict[str, str]) -> dict[str, str]:
        """The parameters of an authorization request, checked; the pushed ones for a
        `request_uri` (RFC 9126 §4)."""
        request_uri = params.get("request_uri")
        if request_uri is not None:
            pushed = self._pushed.get(request_uri)
            if pushed is None or pushed.expires_at < time.time():
                raise ValueError("unknown or expired request_uri")
            if params.get("client_id") != pushed.params.get("client_id"):
                raise ValueError("request_uri of another client")
            params = pushed.params
        elif self.require_par:
            raise ValueError("authorization requests must be pushed (PAR) first")
        self._check_client(params)
        return params

    def _check_client(self, params: dict[str, str]) -> None:
        if params.get("client_id") != self.client_id:
            raise ValueError("unknown client_id")
        if params.get("redirect_uri") not in self.redirect_uris:
            raise ValueError("unregistered redirect_uri")

    def _approve(self, params: dict[str, str], username: str) -> str:
        request = self._authorization_request(params)
        self._pushed.pop(params.get("request_uri", ""), None)  # a request_uri is single use
        redirect_uri = request["redirect_uri"]
        code = secrets.token_urlsafe(24)
        self._codes[code] = _Grant(
            username=username,
            client_id=self.client_id,
            scope=request.get("scope", "openid"),
            nonce=request.get("nonce"),
            redirect_uri=redirect_uri,
            code_challenge=request.get("code_challenge", ""),
            audience=request.get("audience") or request.get("resource"),
            organization=request.get("organization"),
            acr_values=request.get("acr_values"),
        )
        answer = {"code": code, "state": request.get("state", ""), "iss": self.issuer}
        return f"{redirect_uri}?{urlencode(answer)}"

    async def _par(self, request: Request) -> Response:
        if (reply := self._reply("par")) is not None:
            return reply
        form = {key: str(value) for key, value in (await request.form()).items()}
        self.pushed_requests.append(_without_credentials(form))
        if not self._client_authenticated(request, form):
            return _oauth_error("invalid_client", 401)
        params = _without_credentials(form)
        params.pop("client_assertion_type", None)
        params.setdefault("client_id", self.client_id)  # with Basic auth it may be left out
        try:
            if "request_uri" in params:
                raise ValueError("request_uri cannot be pushed")  # RFC 9126 §2.1
            self._check_client(params)
        except ValueError:
            return _oauth_error("invalid_request")
        now = time.time()
        self._pushed = {uri: p for uri, p in self._pushed.items() if p.expires_at > now}
        request_uri = f"urn:ietf:params:oauth:request_uri:{secrets.token_urlsafe(24)}"
        self._pushed[request_uri] = _PushedRequest(params, now + PAR_TTL)
        body = {"request_uri": request_uri, "expires_in": PAR_TTL}
        return JSONResponse(body, status_code=201, headers={"Cache-Control": "no-store"})

    async def _token(self, request: Request) -> Response:
        if (reply := self._reply("token")) is not None:
            return reply
        form = {key: str(value) for key, value in (await request.form()).items()}
        self.token_requests.append(_without_credentials(form))
        if not self._client_authenticated(request, form):
            return _oauth_error("invalid_client", 401)
        return self._grant(form)

    def _grant(self, form: dict[str, str]) -> Response:
        """The token endpoint's answer to an authenticated client's request."""
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            grant = self._codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            if (
                grant is None
                or grant.redirect_uri != form.get("redirect_uri")
                or not verifier
                or create_s256_code_challenge(verifier) != grant.code_challenge
            ):
                return _oauth_error("invalid_grant")
        elif grant_type == "refresh_token":
            grant = self._refresh_tokens.pop(form.get("refresh_token", ""), None)
            if grant is None:
                return _oauth_error("invalid_grant")
        elif grant_type == "client_credentials":  # a machine client of an API
            audience = form.get("audience") or form.get("resource")
            if not audience:
                return _oauth_error("invalid_request")
            scope = form.get("scope", "")
            token = self.access_token(self.client_id, audience=audience, scope=scope)
            body = {"access_token": token, "token_type": "Bearer", "expires_in": self.token_ttl}
            return JSONResponse(body, headers={"Cache-Control": "no-store"})
        else:
            return _oauth_error("unsupported_grant_type")
        audience = form.get("audience") or form.get("resource") or grant.audience
        body = _merge(self._issue_tokens(grant, form.get("scope"), audience), self.token_response)
        self.issued.append(body)
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    def _client_authenticated(self, request: Request, form: dict[str, str]) -> bool:
        if self.client_public_key is not None:
            return self._valid_client_assertion(form, self.client_public_key)
        authorization = request.headers.get("authorization", "")
        if authorization.lower().startswith("basic "):
            try:
                decoded = b64decode(authorization[6:]).decode()
            except ValueError:
                return False
            client_id, _, secret = decoded.partition(":")
            client_id, secret = unquote_plus(client_id), unquote_plus(secret)
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        return client_id == self.client_id and secrets.compare_digest(secret, self.client_secret)

    def _valid_client_assertion(self, form: dict[str, str], key: RSAKey | ECKey) -> bool:
        """RFC 7523 §3: signed by the client's key, about and from the client, for us, once."""
        if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
            return False
        try:
            token = jwt.decode(
                form.get("client_assertion", ""), key, algorithms=ASSERTION_ALGORITHMS
            )
        except (JoseError, ValueError):
            return False
        claims = token.claims
        audience, exp, jti = claims.get("aud"), claims.get("exp"), claims.get("jti")
        audiences = audience if isinstance(audience, list) else [audience]
        if (
            claims.get("iss") != self.client_id
            or claims.get("sub") != self.client_id
            or form.get("client_id", self.client_id) != self.client_id
            or self.issuer not in audiences
            or not isinstance(exp, int)
            or exp <= time.time()
            or not isinstance(jti, str)
            or not jti
            or jti in self._assertion_ids
        ):
            return False
        self._assertion_ids.add(jti)
        self.client_assertions.append(token)
        return True

    def _issue_tokens(
        self, grant: _Grant, scope: str | None = None, audience: str | None = None
    ) -> dict[str, Any]:
        now = int(time.time())
        user = self.user_claims(grant.username)
        claims = {
            **user,
            "iss": self.issuer,
            "aud": grant.client_id,
            "iat": now,
            "exp": now + self.token_ttl,
            "auth_time": grant.auth_time,
            "sid": grant.sid,
            "amr": ["pwd"],
            **_organization_claims(grant.organization),
        }
        if grant.acr_values:  # as if the user passed whatever was asked for
            claims["acr"] = grant.acr_values.split()[0]
            if claims["acr"] == MULTI_FACTOR:
                claims["amr"] = ["pwd", "mfa"]
        if grant.nonce:
            claims["nonce"] = grant.nonce
        scope = scope or grant.scope  # a refresh may ask for other API scopes
        if audience:  # an API's access token: a JWT, with the user's RBAC permissions
            access_token = self.access_token(
                grant.username, audience=audience, scope=scope, permissions=user.get("permissions")
            )
        else:
            access_token = secrets.token_urlsafe(32)
        self._access_tokens[access_token] = IssuedAccessToken(
            grant, audience, scope, expires_at=now + self.token_ttl
        )
        body: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": self.token_ttl,
            "scope": scope,
            "id_token": self.sign(_merge(claims, self.id_token_claims), self.id_token_header),
        }
        if "offline_access" in grant.scope.split():
            refresh_token = secrets.token_urlsafe(32)
            self._refresh_tokens[refresh_token] = grant
            body["refresh_token"] = refresh_token
        return body

    async def _revoke(self, request: Request) -> Response:
        if (reply := self._reply("revoke")) is not None:
            return reply
        form = {key: str(value) for key, value in (await request.form()).items()}
        if not self._client_authenticated(request, form):
            return _oauth_error("invalid_client", 401)
        token = form.get("token", "")
        if self._refresh_tokens.pop(token, None) is not None:
            self.revoked.append(token)
        return Response(status_code=200)

    async def _userinfo(self, request: Request) -> Response:
        if (reply := self._reply("userinfo")) is not None:
            return reply
        issued = self.access_token_of(request)
        if issued is None:
            return _oauth_error("invalid_token", 401)
        return JSONResponse(self.user_claims(issued.grant.username))

    def access_token_of(self, request: Request) -> IssuedAccessToken | None:
        """The access token a request carries (`Authorization: Bearer`), if we issued it."""
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        return self._access_tokens.get(token)

    async def _logout(self, request: Request) -> Response:
        if (reply := self._reply("logout")) is not None:
            return reply
        target = request.query_params.get("post_logout_redirect_uri", "")
        known = target.startswith(self.logout_redirect_prefix)
        sid = _sid_of(request.query_params.get("id_token_hint", ""))
        if self.frontchannel_logout_uri is not None and sid is not None:
            # Front-channel logout: the app's logout URL in an iframe, then on to the app.
            frame = html.escape(self.frontchannel_logout_url(sid))
            refresh = f'<meta http-equiv="refresh" content="1;url={html.escape(target)}">'
            return HTMLResponse(
                f"<!doctype html>{refresh if known else ''}<h1>Logging out...</h1>"
                f'<iframe src="{frame}" title="logout" width="0" height="0"></iframe>'
            )
        if known:
            return RedirectResponse(target, status_code=303)
        return HTMLResponse("<h1>You are logged out of the development provider.</h1>")


class _ProviderTransport(httpx.AsyncBaseTransport):
    """Routes the app's HTTP calls to the provider in-process; can play dead."""

    def __init__(self, provider: FakeProvider) -> None:
        self._provider = provider
        self._asgi = httpx.ASGITransport(app=provider.app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._provider.reachable == "refused":
            raise httpx.ConnectError("connection refused", request=request)
        if self._provider.reachable == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        return await self._asgi.handle_async_request(request)


def _sid_of(id_token: str) -> str | None:
    """The `sid` of one of our ID tokens (an id_token_hint), unverified: only to say which
    provider session a logout ends."""
    try:
        payload = id_token.split(".")[1]
        claims = json.loads(urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    sid = claims.get("sid") if isinstance(claims, dict) else None
    return sid if isinstance(sid, str) else None


def _organization_claims(organization: str | None) -> dict[str, str]:
    """Auth0's claims for a login into an organization named by id (`org_...`) or name."""
    if not organization:
        return {}
    if organization.startswith("org_"):
        return {"org_id": organization, "org_name": organization.removeprefix("org_").lower()}
    return {"org_id": f"org_{organization.lower()}", "org_name": organization.lower()}


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = {**base, **changes}
    return {key: value for key, value in merged.items() if value is not None}


def _without_credentials(form: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in form.items() if key not in CLIENT_CREDENTIALS}


def _oauth_error(error: str, status_code: int = 400) -> JSONResponse:
    return JSONResponse({"error": error}, status_code=status_code)


_FORM_STYLE = """
body { font: 16px system-ui, sans-serif; max-width: 24rem; margin: 4rem auto; }
input, button { font: inherit; padding: .4rem; width: 100%; box-sizing: border-box; }
"""


def _login_form(params: dict[str, str]) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(key)}" value="{html.escape(value)}">'
        for key, value in params.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Development sign-in</title>
<style>{_FORM_STYLE}</style></head>
<body><h1>Development sign-in</h1>
<p>This local provider accepts any username. It is for development only.</p>
<form method="post" action="/authorize">{hidden}
<label for="username">Username</label>
<input id="username" name="username" value="alice" autofocus required>
<button type="submit">Sign in</button></form></body></html>"""
