"""The Jinja2 environment for pages and error pages (autoescaping on)."""

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates

from app.auth.urls import AUTH_PREFIX, app_path


def _paths(request: Request) -> dict[str, Any]:
    # Page templates link through these: `href="{{ base }}/profile"` (the app's own pages,
    # under the path APP_BASE_URL may have) and `href="{{ auth }}/logout"` (auth routes).
    base = app_path(request.scope, "")
    return {"base": base, "auth": base + AUTH_PREFIX}


templates = Jinja2Templates(
    directory=Path(__file__).parent / "templates", context_processors=[_paths]
)
