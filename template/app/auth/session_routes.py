"""The user's sessions: see where you are logged in, and end sessions (GET/POST /auth/sessions).

    GET  /auth/sessions                 your sessions, newest first (JSON)
    POST /auth/sessions/{id}/end        end one of them (your current one: a logout here)
    POST /auth/sessions/end-others      end all but the current one

The POST routes refuse requests sent by other sites (see `require_same_origin`). Forms
may add `?returnTo=/path` to be sent back there; other clients get 204.
"""

import re
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.auth.core import get_auth
from app.auth.deps import CurrentSession
from app.auth.errors import NotFound
from app.auth.routes import NO_STORE, ReturnTo, SameOrigin
from app.auth.sessions import Session
from app.auth.urls import AUTH_PREFIX, redirect_within

LOGIN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what `Session.start` makes, and room


router = APIRouter(prefix=f"{AUTH_PREFIX}/sessions", tags=["auth"])


@router.get("")
async def list_sessions(request: Request, session: CurrentSession) -> list[dict[str, Any]]:
    """The logged-in user's sessions; 404 when they live in cookies and cannot be listed."""
    found = await get_auth(request).sessions.list(request)
    if found is None:
        raise NotFound(
            "Sessions kept in browser cookies cannot be listed. "
            "POST /auth/sessions/end-others still ends all but this one."
        )
    return [describe(other, current=other.login_id == session.login_id) for other in found]


@router.post("/end-others", status_code=204, dependencies=[SameOrigin])
async def end_other_sessions(
    request: Request, session: CurrentSession, return_to: ReturnTo = None
) -> Response:
    """End every session of the logged-in user except this one."""
    await get_auth(request).sessions.end_others(request)
    return _done(request, return_to)


@router.post("/{session_id}/end", status_code=204, dependencies=[SameOrigin])
async def end_session(
    request: Request, session: CurrentSession, session_id: str, return_to: ReturnTo = None
) -> Response:
    """End one of the logged-in user's sessions (404 when there is none by that id)."""
    sessions = get_auth(request).sessions
    if not LOGIN_ID.fullmatch(session_id) or not await sessions.end_login(request, session_id):
        raise NotFound("There is no session by that id.")
    return _done(request, return_to)


def describe(session: Session, *, current: bool) -> dict[str, Any]:
    """What a user sees of one of their sessions (never a cookie value or a token)."""
    return {
        "id": session.login_id,
        "created_at": _iso(session.created_at),
        "last_seen_at": _iso(session.touched_at),
        "user_agent": session.user_agent,
        "current": current,
    }


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(int(timestamp), UTC).isoformat()


def _done(request: Request, return_to: str | None) -> Response:
    if return_to is None:
        return Response(status_code=204, headers=NO_STORE)
    return redirect_within(request, return_to, headers=NO_STORE)
