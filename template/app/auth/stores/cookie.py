"""Sessions kept entirely in an encrypted, chunked cookie: no server-side state at all."""

from collections.abc import Sequence

from fastapi import Request
from fastapi.responses import Response

from app.auth.cookies import CHUNK_SIZE, MAX_CHUNKS, ChunkedCookie, CookieCipher
from app.auth.sessions import Session, SessionLifetime, now, request_state

SESSION_COOKIE = "app_session"
DECODED_CACHE_SIZE = 1024


class CookieSessionStore:
    def __init__(self, secrets: Sequence[str], lifetime: SessionLifetime, *, secure: bool) -> None:
        self.lifetime = lifetime
        self._cipher = CookieCipher(secrets, "session")
        self._cookie = ChunkedCookie(SESSION_COOKIE, path="/", secure=secure)
        # Decrypting is the costliest part of reading a session, and an authenticated
        # ciphertext always holds the same session: remember recently seen ones.
        # Sessions are immutable; expiry is still checked on every request.
        self._decoded: dict[str, Session] = {}

    async def load(self, request: Request) -> Session | None:
        value = self._cookie.read(request.cookies)
        if value is None or len(value) > CHUNK_SIZE * MAX_CHUNKS:
            return None
        session = self._decoded.get(value) or self._decode(value)
        if session is None or self.lifetime.is_expired(session, now()):
            return None
        return session

    def _decode(self, value: str) -> Session | None:
        payload = self._cipher.decrypt(value)
        session = Session.from_payload(payload) if payload is not None else None
        if session is not None:
            if len(self._decoded) >= DECODED_CACHE_SIZE:
                del self._decoded[next(iter(self._decoded))]
            self._decoded[value] = session
        return session

    async def save(self, request: Request, response: Response, session: Session) -> None:
        request_state(request).deferred_headers.clear()
        max_age = self.lifetime.ends_at(session) - now()
        value = self._cipher.encrypt(session.to_payload())
        self._cookie.write(response, value, max_age=max_age, existing=request.cookies)

    async def touch(self, request: Request, session: Session) -> None:
        scratch = Response()
        await self.save(request, scratch, self.lifetime.touched(session, now()))
        cookies = [(k, v) for k, v in scratch.raw_headers if k == b"set-cookie"]
        request_state(request).deferred_headers.extend(cookies)

    async def delete(self, request: Request, response: Response) -> None:
        request_state(request).deferred_headers.clear()
        self._cookie.delete(response, self._cookie.names_in(request.cookies))
