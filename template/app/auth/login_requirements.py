"""What a login asked the provider for, and the check that the answer satisfies it.

A login may ask for an organization (Auth0 Organizations), for a recent authentication
(`max_age`), for a particular strength of authentication (`acr_values`), or for no
interaction at all (`prompt=none`, a silent login). The transaction remembers what was
asked; the ID token must then say it happened (OpenID Connect Core §3.1.2.1, §3.1.3.7),
or the login fails with a page that says what did not match.
"""

from collections.abc import Mapping
from typing import Any

from app.auth.errors import InvalidToken, LoginFailed
from app.auth.tokens import CLOCK_LEEWAY
from app.auth.transactions import LoginTransaction

# Answers to `prompt=none` that mean "not without the user": the silent login found no
# usable session at the provider, and the user carries on without logging in.
SILENT_LOGIN_ERRORS = frozenset(
    {"login_required", "consent_required", "interaction_required", "account_selection_required"}
)
MAX_MAX_AGE = 10 * 365 * 24 * 3600


def login_params(
    asked: Mapping[str, str], *, organization: str | None = None, consent: bool = False
) -> dict[str, str]:
    """The login parameters to send, cleaned: an app-wide `organization` replaces the one
    asked for, a `max_age` that is not a number of seconds is left out, and `consent`
    asks for `prompt=consent` unless the login asks for another prompt."""
    params = dict(asked)
    if organization:
        params["organization"] = organization
    if consent:
        params.setdefault("prompt", "consent")
    max_age = params.get("max_age")
    if max_age is not None and not (max_age.isdigit() and int(max_age) <= MAX_MAX_AGE):
        del params["max_age"]
    return params


def check_login(claims: Mapping[str, Any], transaction: LoginTransaction, *, now: int) -> None:
    """Refuse an ID token that does not show what the login asked for."""
    if transaction.organization:
        _check_organization(claims, transaction.organization)
    if transaction.max_age is not None:
        auth_time = claims.get("auth_time")
        if isinstance(auth_time, bool) or not isinstance(auth_time, int | float):
            raise InvalidToken("The ID token does not say when you logged in (auth_time).")
        if auth_time - CLOCK_LEEWAY > now:
            raise InvalidToken("The ID token says you logged in in the future (auth_time).")
        if now - auth_time > transaction.max_age + CLOCK_LEEWAY:
            raise LoginFailed(
                "The login service did not ask you to log in again, as this page requires. "
                "Please try again."
            )
    if transaction.acr_values and claims.get("acr") not in transaction.acr_values.split():
        raise LoginFailed(
            "The login service did not confirm the kind of login this page requires "
            "(acr). Please try again, or ask your administrator."
        )


def _check_organization(claims: Mapping[str, Any], organization: str) -> None:
    """Auth0: an id (`org_...`) must equal `org_id`; a name, `org_name` (case-insensitively;
    Auth0 sends names in lower case)."""
    if organization.startswith("org_"):
        matches = claims.get("org_id") == organization
    else:
        name = claims.get("org_name")
        matches = isinstance(name, str) and name.lower() == organization.lower()
    if not matches:
        raise LoginFailed(
            "You logged in to another organization than the one this login was for. "
            "Please log in again and choose that organization."
        )


def authentication(claims: Mapping[str, Any]) -> dict[str, Any]:
    """How the user authenticated, for the session: `auth_time`, `acr`, `amr`."""
    auth_time, acr, amr = claims.get("auth_time"), claims.get("acr"), claims.get("amr")
    if isinstance(auth_time, bool) or not isinstance(auth_time, int | float):
        auth_time = None
    return {
        "auth_time": int(auth_time) if auth_time is not None else None,
        "acr": acr if isinstance(acr, str) else None,
        "amr": tuple(m for m in amr if isinstance(m, str)) if isinstance(amr, list) else (),
    }


# Claims a scope asks for that an ID token of the code flow may leave to UserInfo (Core
# §5.4): when one is missing, `auth_userinfo=auto` fetches them.
SCOPE_CLAIMS = {"profile": "name", "email": "email"}


def needs_userinfo(claims: Mapping[str, Any], *, scope: str, setting: str) -> bool:
    """Whether to fetch UserInfo at login (see `auth_userinfo`)."""
    if setting != "auto":
        return setting == "always"
    asked = scope.split()
    return any(name in asked and claim not in claims for name, claim in SCOPE_CLAIMS.items())
