"""Auth0 connection names, as the account features take them from a query (`?connection=`)."""

import re

from app.auth.errors import InvalidRequest

# Letters, digits and inner hyphens, at most 128 characters.
CONNECTION_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,126}[A-Za-z0-9])?")


def connection_name(value: str | None) -> str:
    """`value` if it is an Auth0 connection name; otherwise the request is refused (400)."""
    if not value:
        raise InvalidRequest("Say which connection to use: ?connection=NAME.")
    if not CONNECTION_NAME.fullmatch(value):
        raise InvalidRequest("That is not a connection name.")
    return value
