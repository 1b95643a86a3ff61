"""The answer sets the template tests render: shared by `conftest.py` (the `default_project` and
`store_project` fixtures) and `test_hostile_input.py`."""

DEFAULT_ANSWERS: dict[str, object] = {}
STORES = ("cookie", "redis", "sql")
# Answer sets rendered, linted, type-checked and tested: each store, plus the optional routes
# and each account linking mode.
VARIANTS: dict[str, dict[str, object]] = {
    "cookie": {},
    "redis": {"session_store": "redis"},
    "sql": {"session_store": "sql"},
    "token-route": {"access_token_route": True},
    "connect": {"account_linking": "connect"},
    "connected-accounts": {"account_linking": "connected_accounts"},
}
