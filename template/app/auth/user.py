"""The session's user: the ID token claims `policy.session_user` keeps, plus the user's
roles and permissions under plain names, from the claims the settings name.

Auth0 puts roles into ID tokens only through an Action, under a namespaced claim such as
`https://app.example.com/roles`: set `AUTH_ROLES_CLAIM` to it, and routes read
`user["roles"]` (or use `require_roles`, in `authorization.py`).
"""

from dataclasses import dataclass
from typing import Any

from app.auth import policy

MAX_GRANTS = 100  # roles or permissions kept per user; more is a misconfiguration
MAX_GRANT_LENGTH = 256  # characters of one role or permission; longer ones are left out


@dataclass(frozen=True, slots=True)
class UserClaims:
    """Which ID token claims hold the user's roles and permissions."""

    roles_claim: str = "roles"
    permissions_claim: str = "permissions"

    def user(self, claims: dict[str, Any]) -> dict[str, Any]:
        """The user kept in the session for these (validated) ID token claims."""
        user = policy.session_user(claims)
        for name, claim in (("roles", self.roles_claim), ("permissions", self.permissions_claim)):
            values = _strings(claims.get(claim))
            if values is not None:
                user[name] = values
        return user


def _strings(value: Any) -> list[str] | None:
    """A list of strings, as providers send roles (or one space-separated string)."""
    if isinstance(value, str):
        value = value.split()
    if not isinstance(value, list):
        return None
    grants = [item for item in value if isinstance(item, str) and len(item) <= MAX_GRANT_LENGTH]
    return grants[:MAX_GRANTS]
