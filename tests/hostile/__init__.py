"""Hostile input against every route of a generated app (runs inside the generated project).

The template's `tests/test_hostile_input.py` copies this package into a scratch copy of a
rendered project, as `tests/hostile/`, and runs it with the project's own interpreter: it
uses the project's fixtures (`client`, `provider`, `client_for`, the autouse `store`), so the
app is built with `create_app(settings, provider_transport=provider.transport)`, talks to the
in-process fake provider and keeps sessions in the project's own store. Most requests go
straight to the ASGI app (bytes no HTTP client would send, and fast enough for hypothesis);
flows that need the browser's cookie jar use the test client.

The rules for every answer (`rules.check`): a 4xx or the documented success (303 for login
and logout, 200 for the home page), never a 5xx (server errors are re-raised); HTML shows
input only as escaped text; every redirect stays on APP_BASE_URL's origin (or goes to the
provider, for login and logout); no cookie, header or URL is built from the request's Host
or X-Forwarded-* headers.

- `rules.py`: the app's routes and what it may answer (`check`);
- `inputs.py`: hypothesis settings, hostile values and strategies;
- `sending.py`: raw ASGI calls, the test client, logging in;
- `conftest.py`: the `route` fixture (each route the per-route tests go through);
- `test_fuzzed_input.py`: fuzzed queries, headers, bodies, cookies, paths and methods;
- `test_oversized_and_duplicated.py`: oversized input, parameters given twice;
- `test_callback_parameters.py`: hostile provider answers to a real login;
- `test_tampered_cookies.py`: tampered, truncated, re-ordered and foreign cookies;
- `test_open_redirects.py`: `returnTo` at login and logout;
- `test_forwarding_headers.py`: Host and X-Forwarded-* headers.

Test modules import only the helper modules here, never one another; test names are unique
across the package (the template's test reports each by its name).
"""
