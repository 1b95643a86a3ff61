"""Applies per-request auth state to the response (a pure ASGI middleware: cheap per request).

- The app's `Auth` is put into the request's scope (see `get_auth`), and the path of
  `APP_BASE_URL` (`/portal`) as the ASGI `root_path` the app is served under (urls.py).
- A response of a request that read the session gets `Cache-Control: no-store`
  (unless the route chose its own), so no cache keeps one user's page for another.
- The session cookies set while the request was handled (session_cookie.py) are added.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth import core
from app.auth.session_cookie import SCOPE_KEY, RequestState


class AuthStateMiddleware:
    def __init__(self, app: ASGIApp, auth: core.Auth) -> None:
        self.app = app
        self.auth = auth
        self.base_path = auth.settings.base_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.base_path and scope["type"] in ("http", "websocket"):
            scope["root_path"] = self.base_path
            if scope["path"] == self.base_path:  # `APP_BASE_URL` itself is the home page
                scope["path"] = f"{self.base_path}/"
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope[core.AUTH_SCOPE_KEY] = self.auth

        async def send_with_auth_state(message: Message) -> None:
            state: RequestState | None = scope.get(SCOPE_KEY)
            if state is not None and message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                if not isinstance(headers, list):
                    headers = message["headers"] = list(headers)
                # ASGI header names are lower-case.
                for name, _ in headers:
                    if name == b"cache-control":
                        break
                else:
                    headers.append((b"cache-control", b"no-store"))
                if state.cookies:
                    headers.extend(state.set_cookie_headers())
            await send(message)

        await self.app(scope, receive, send_with_auth_state)
