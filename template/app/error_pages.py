"""Pages for HTTP errors outside the auth code (an unknown address, a wrong method), for
browsers; API clients keep FastAPI's JSON (`{"detail": ...}`). The auth code's own
errors have their pages in app/auth/errors.py. Template-owned: restyle the page in
`templates/error.html`.
"""

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from app.auth.errors import wants_html
from app.templating import templates

TITLES = {404: "Page not found", 405: "This page cannot do that"}
MESSAGES = {
    404: "There is no page at this address. It may have moved, or the link may be mistyped.",
    405: "This address does not take that kind of request.",
}


async def http_error_page(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):  # pragma: no cover - registered for it only
        raise exc
    if not wants_html(request) or exc.status_code < 400:
        return await http_exception_handler(request, exc)
    context = {
        "title": TITLES.get(exc.status_code, "Something went wrong"),
        "message": MESSAGES.get(exc.status_code, "This request could not be answered."),
        "code": f"http_{exc.status_code}",
        "login_url": None,
    }
    return templates.TemplateResponse(
        request, "error.html", context, status_code=exc.status_code, headers=exc.headers
    )
