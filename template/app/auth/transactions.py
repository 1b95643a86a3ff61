"""Login transactions: what a login must remember between `/auth/login` and `/auth/callback`.

Each login attempt gets its own short-lived encrypted cookie named after its `state`,
so several tabs can log in at once. The cookie is only sent to `/auth/...` paths (with
https, to every path: see SECURE_COOKIE_PREFIX) and is removed by the callback,
whatever the outcome: every transaction is used at most once.
Other flows that send the browser to the provider and back keep theirs the same way,
marked with their `kind`.
"""

import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from fastapi import Request
from fastapi.responses import Response

from app.auth.cookies import CookieCipher, CookieScope
from app.auth.urls import AUTH_PREFIX

TRANSACTION_LIFETIME = 3600  # seconds: long enough for sign-up, MFA or a password reset
MAX_PENDING = 8  # older pending logins are dropped when a browser starts more than this
COOKIE_PREFIX = "app_tx."
# With https the cookies are `__Host-app_tx.<state>` (see `CookieScope`): no sibling
# subdomain can plant a login of its own (login CSRF) in a user's browser.
STATE_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,128}")


@dataclass(frozen=True, slots=True)
class LoginTransaction:
    state: str
    nonce: str
    code_verifier: str
    return_to: str
    created_at: float  # Unix time, sub-second: orders a browser's pending logins
    # The flow: "login", or another one that comes back through the provider. Cookies
    # written before this field existed are logins.
    kind: str = "login"
    # The provider's id for its part of the flow, when it has one (Auth0's `auth_session`).
    auth_session: str | None = None
    # What this login asked the provider for, which its answer must then satisfy
    # (`login_requirements.py`): an organization, a recent or a stronger authentication,
    # or no interaction at all (`prompt=none`, a silent login).
    organization: str | None = None
    max_age: int | None = None
    acr_values: str | None = None
    prompt: str | None = None

    @classmethod
    def start(
        cls, return_to: str, *, kind: str = "login", asked: Mapping[str, str] | None = None
    ) -> "LoginTransaction":
        """A new transaction; `asked` holds the login parameters sent to the provider."""
        asked = asked or {}
        max_age = asked.get("max_age")
        return cls(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            code_verifier=secrets.token_urlsafe(48),
            return_to=return_to,
            created_at=time.time(),
            kind=kind,
            organization=asked.get("organization"),
            max_age=int(max_age) if max_age is not None else None,
            acr_values=asked.get("acr_values"),
            prompt=asked.get("prompt"),
        )


class TransactionCookies:
    def __init__(self, secrets: Sequence[str], *, cookies: CookieScope) -> None:
        self._cipher = CookieCipher(secrets, "transaction")
        self._secure = cookies.secure
        self._prefix = cookies.name(COOKIE_PREFIX)
        self._path = cookies.path(AUTH_PREFIX)

    def save(self, request: Request, response: Response, transaction: LoginTransaction) -> None:
        self._drop_oldest(request, response)
        response.set_cookie(
            self._prefix + transaction.state,
            self._cipher.encrypt(asdict(transaction)),
            max_age=TRANSACTION_LIFETIME,
            path=self._path,
            secure=self._secure,
            httponly=True,
            samesite="lax",
        )

    def pop(self, request: Request, response: Response, state: str) -> LoginTransaction | None:
        """The transaction for `state` (removing its cookie), or None if there is none valid."""
        if not STATE_PATTERN.fullmatch(state):
            return None
        name = self._prefix + state
        value = request.cookies.get(name)
        if value is None:
            return None
        self._delete(response, name)
        payload = self._cipher.decrypt(value)
        try:
            transaction = LoginTransaction(**payload) if payload is not None else None
        except TypeError:
            return None
        if transaction is None or not secrets.compare_digest(transaction.state, state):
            return None
        if time.time() - transaction.created_at > TRANSACTION_LIFETIME:
            return None
        return transaction

    def _drop_oldest(self, request: Request, response: Response) -> None:
        """Keep at most MAX_PENDING logins in progress, dropping unreadable ones first."""
        pending = []
        for name, value in request.cookies.items():
            if not name.startswith(self._prefix):
                continue
            payload = self._cipher.decrypt(value)
            created_at = payload.get("created_at") if payload is not None else None
            known = isinstance(created_at, int | float)
            pending.append((created_at if known else -1.0, name))
        pending.sort()
        for _, name in pending[: max(0, len(pending) - MAX_PENDING + 1)]:
            self._delete(response, name)

    def _delete(self, response: Response, name: str) -> None:
        response.delete_cookie(
            name, path=self._path, secure=self._secure, httponly=True, samesite="lax"
        )
