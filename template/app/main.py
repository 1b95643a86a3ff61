"""The FastAPI application: `uvicorn app.main:app`."""

import importlib
import pkgutil

import httpx
from fastapi import APIRouter, FastAPI
from starlette.exceptions import HTTPException

from app import api, health, pages, routers
from app.auth import Auth, install_auth
from app.auth.telemetry import carries_secrets
from app.config import Settings, get_settings
from app.error_pages import http_error_page
from app.logs import configure_logging, redact_access_log
from app.variant import PROJECT_NAME


def create_app(
    settings: Settings | None = None, *, provider_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """Build the app. Tests pass their own settings and an in-process provider transport."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_format)
    redact_access_log()
    auth = Auth.from_settings(settings, transport=provider_transport)
    docs = settings.docs_enabled  # in development, or when OPENAPI_DOCS=true
    app = FastAPI(
        title=PROJECT_NAME,
        lifespan=auth.lifespan,
        redirect_slashes=False,  # its redirects would be built from the request's Host header
        telemetry={"exclude": carries_secrets},  # no login codes in FastAPI's own spans
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    install_auth(app, auth)
    app.add_exception_handler(HTTPException, http_error_page)  # 404 & co. as pages
    app.include_router(health.router)
    app.include_router(pages.router)
    app.include_router(api.router)
    for router in your_routers():
        app.include_router(router)
    return app


def your_routers() -> list[APIRouter]:
    """The `router` of each module in app/routers/ (yours: the template never writes there)."""
    found = []
    for module in sorted(pkgutil.iter_modules(routers.__path__), key=lambda m: m.name):
        router = getattr(
            importlib.import_module(f"{routers.__name__}.{module.name}"), "router", None
        )
        if isinstance(router, APIRouter):
            found.append(router)
    return found


app = create_app()
