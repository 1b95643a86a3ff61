"""The FastAPI application: `uvicorn app.main:app`."""

import httpx
from fastapi import FastAPI

from app import api, pages
from app.auth import Auth, install_auth
from app.config import Settings, get_settings
from app.variant import PROJECT_NAME


def create_app(
    settings: Settings | None = None, *, provider_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """Build the app. Tests pass their own settings and an in-process provider transport."""
    auth = Auth.from_settings(settings or get_settings(), transport=provider_transport)
    app = FastAPI(
        title=PROJECT_NAME,
        lifespan=auth.lifespan,
        redirect_slashes=False,  # its redirects would be built from the request's Host header
    )
    install_auth(app, auth)
    app.include_router(pages.router)
    app.include_router(api.router)
    return app


app = create_app()
