"""The answer sets the template tests render: shared by `conftest.py` (the `default_project` and
`store_project` fixtures) and `test_hostile_input.py`."""

DEFAULT_ANSWERS: dict[str, object] = {}
STORES = ("cookie", "redis", "sql")
# Answer sets rendered, linted, type-checked and tested: each store, plus the optional routes
# and each account linking mode (`test_combinations.py` lints and type-checks every other
# combination).
VARIANTS: dict[str, dict[str, object]] = {
    "cookie": {},
    "redis": {"session_store": "redis"},
    "sql": {"session_store": "sql"},
    # The optional routes, each with a store it has not been tried with elsewhere.
    "token-route-redis": {
        "access_token_route": True,
        "account_linking": "connected_accounts",
        "session_store": "redis",
    },
    "connect-sql": {"account_linking": "connect", "session_store": "sql"},
    "connected-accounts": {"account_linking": "connected_accounts"},
}
