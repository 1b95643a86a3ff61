"""Applies per-request auth state to the response (a pure ASGI middleware: cheap per request).

- A response of a request that read the session gets `Cache-Control: no-store`
  (unless the route chose its own), so no cache keeps one user's page for another.
- Cookies deferred by the session store (rolling-expiry renewals) are added.
"""

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth.sessions import SCOPE_KEY, RequestAuthState


class AuthStateMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_auth_state(message: Message) -> None:
            if message["type"] == "http.response.start":
                state: RequestAuthState | None = scope.get(SCOPE_KEY)
                if state is not None:
                    headers = MutableHeaders(scope=message)
                    if "cache-control" not in headers:
                        headers["Cache-Control"] = "no-store"
                    for name, value in state.deferred_headers:
                        headers.append(name.decode("latin-1"), value.decode("latin-1"))
            await send(message)

        await self.app(scope, receive, send_with_auth_state)
