"""The Jinja2 environment for pages and error pages (autoescaping on)."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates

from app.auth.urls import AUTH_PREFIX, app_path


def _paths(request: Request) -> dict[str, Any]:
    # Page templates start their links with these: `base` for the app's own pages (the
    # path APP_BASE_URL may have, or ""), `auth` for the auth routes (see index.html).
    base = app_path(request.scope, "")
    return {"base": base, "auth": base + AUTH_PREFIX}


def when(moment: str | float) -> str:
    """An ISO 8601 time or a Unix time as people read it: `6 Dec 2026, 21:05 UTC`."""
    at = _utc(moment)
    return f"{at.day} {at:%b %Y, %H:%M} UTC"


def iso(moment: str | float) -> str:
    """The machine-readable form for `<time datetime="...">`."""
    return _utc(moment).isoformat()


def _utc(moment: str | float) -> datetime:
    if isinstance(moment, str):
        return datetime.fromisoformat(moment).astimezone(UTC)
    return datetime.fromtimestamp(moment, UTC)


templates = Jinja2Templates(
    directory=Path(__file__).parent / "templates", context_processors=[_paths]
)
templates.env.filters["when"] = when
templates.env.filters["iso"] = iso
