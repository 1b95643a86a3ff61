"""Install an `Auth` into a FastAPI app: its routes, error pages and middleware."""

from fastapi import FastAPI

from app.auth.api_token_checks import ApiTokenError, api_token_error_handler
from app.auth.core import Auth
from app.auth.errors import AuthError, auth_error_handler
from app.auth.middleware import AuthStateMiddleware
from app.auth.routes import router
from app.auth.session_routes import router as session_router
from app.auth.variant import feature_routers


def install_auth(app: FastAPI, auth: Auth) -> None:
    """Mount /auth/*, the error pages and the session middleware on `app`."""
    app.state.auth = auth
    app.add_middleware(AuthStateMiddleware, auth=auth)
    app.add_exception_handler(AuthError, auth_error_handler)
    app.add_exception_handler(ApiTokenError, api_token_error_handler)
    app.include_router(router)
    app.include_router(session_router)
    for extra in feature_routers():
        app.include_router(extra)
