"""Encrypted cookies: JWE payloads (`dir` + `A256GCM`) split into chunks browsers accept.

Keys are derived once, when the app starts, from `SESSION_SECRET` with HKDF; each
purpose (sessions, login transactions) gets its own key, so one kind of cookie can
never be replayed as the other. With several secrets the first encrypts and all
decrypt, tried in order. The JWE header names no key: an id derived from the key would
let anyone holding a cookie check guesses of a weak secret against it. (Cookies written
before carried such a `kid`; it still picks their key.)
"""

import json
import re
from base64 import urlsafe_b64decode
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fastapi.responses import Response
from joserfc import jwe
from joserfc.jwk import OctKey

# A whole `Set-Cookie` header line must stay within 4096 bytes; this leaves room
# for the name and the attributes.
CHUNK_SIZE = 3900
MAX_CHUNKS = 16
# Our headers are ~60 characters (with an earlier version's `kid`, ~80).
MAX_HEADER_LENGTH = 256

Purpose = Literal["session", "transaction"]


@dataclass(frozen=True, slots=True)
class CookieScope:
    """Names and paths of the app's cookies, from `APP_BASE_URL`.

    With https, cookies are Secure and their names say so to browsers: `__Host-...`
    (Path=/, no Domain: only this origin can set it, no sibling subdomain can plant one)
    when the app is at the root, `__Secure-...` under a base path (browsers take
    `__Host-` only with Path=/). Under a base path (`/portal`) cookies go only there, so
    other apps on the same host never see them.
    """

    secure: bool
    base_path: str = ""  # "" or e.g. "/portal"

    def name(self, name: str) -> str:
        if not self.secure:
            return name
        return ("__Secure-" if self.base_path else "__Host-") + name

    def path(self, path: str = "/") -> str:
        """The Path for a cookie meant for `path` of the app (the narrowest allowed)."""
        if self.secure and not self.base_path:
            return "/"  # what `__Host-` requires
        return self.base_path + path if path != "/" else self.base_path or "/"


def derive_key(secret: str, purpose: Purpose) -> OctKey:
    hkdf = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=f"{purpose} cookie v1".encode()
    )
    return OctKey.import_key(hkdf.derive(secret.encode()))


class CookieCipher:
    """Turns JSON-able dicts into opaque cookie values and back."""

    def __init__(self, secrets: Sequence[str], purpose: Purpose) -> None:
        self._keys = [derive_key(secret, purpose) for secret in secrets]
        self._header = {"alg": "dir", "enc": "A256GCM"}
        # The `kid` cookies of earlier versions carry: a thumbprint of their key.
        self._by_old_kid = {key.thumbprint()[:16]: key for key in self._keys}
        self._registry = jwe.JWERegistry(algorithms=["dir", "A256GCM"])

    def encrypt(self, payload: Mapping[str, Any]) -> str:
        plaintext = json.dumps(payload, separators=(",", ":")).encode()
        return jwe.encrypt_compact(self._header, plaintext, self._keys[0])

    def decrypt(self, value: str) -> dict[str, Any] | None:
        """The payload, or None for anything not encrypted by us (never raises)."""
        for key in self._keys_for(value):
            try:
                plaintext = jwe.decrypt_compact(value, key, registry=self._registry).plaintext
                payload = json.loads(plaintext or b"")
            except Exception:  # noqa: S112 - untrusted input: a failure means "not this key"
                continue
            return payload if isinstance(payload, dict) else None
        return None

    def _keys_for(self, value: str) -> list[OctKey]:
        header = _header_of(value)
        if header is None:  # untrusted input: anything unreadable is no cookie of ours
            return []
        kid = header.get("kid")
        if kid is None:
            return self._keys
        old = self._by_old_kid.get(kid) if isinstance(kid, str) else None
        return [old] if old is not None else []


def written_by_earlier_version(value: str) -> bool:
    """Whether an encrypted cookie value names its key (`kid`), as only cookies written
    before v0.2 do. The header is authenticated: nobody without the key can add one."""
    header = _header_of(value)
    return header is not None and isinstance(header.get("kid"), str)


def _header_of(value: str) -> dict[str, Any] | None:
    """The unverified JWE header of a cookie value, or None when it is not one."""
    protected = value.split(".", 1)[0]
    if len(protected) > MAX_HEADER_LENGTH:
        return None
    try:
        header = json.loads(urlsafe_b64decode(protected + "=" * (-len(protected) % 4)))
    except (ValueError, RecursionError):  # RecursionError: deeply nested JSON
        return None
    return header if isinstance(header, dict) else None


class ChunkedCookie:
    """One logical cookie stored as `name` or, when large, as `name.0`, `name.1`, ...

    `legacy_name` is a name it had before https cookies got their `__Host-` names: read
    when `name` is absent and the value was written before that change (deleted at the
    next write), so that the update logs nobody out. Anything written since under the
    plain name was planted (a sibling subdomain can set it, never `__Host-...`) and is
    ignored.
    """

    def __init__(
        self, name: str, *, path: str, secure: bool, legacy_name: str | None = None
    ) -> None:
        self.name = name
        self.path = path
        self.secure = secure
        self.legacy_name = legacy_name
        names = "|".join(re.escape(n) for n in (name, legacy_name) if n)
        self._pattern = re.compile(rf"({names})(\.(0|[1-9][0-9]?))?")

    def names_in(self, cookies: Iterable[str]) -> set[str]:
        return {name for name in cookies if self._pattern.fullmatch(name)}

    def read(self, cookies: Mapping[str, str]) -> str | None:
        value = _read_chunks(cookies, self.name)
        if value is None and self.legacy_name is not None:
            value = _read_chunks(cookies, self.legacy_name)
            if value is not None and not written_by_earlier_version(value):
                return None
        return value

    def write(
        self, response: Response, value: str, *, max_age: int, existing: Iterable[str]
    ) -> None:
        """Set the cookie and delete chunks left over from an earlier, larger value."""
        chunks = [value[i : i + CHUNK_SIZE] for i in range(0, len(value), CHUNK_SIZE)]
        if len(chunks) > MAX_CHUNKS:
            raise ValueError(f"cookie {self.name!r} would need {len(chunks)} chunks")
        names = (
            [self.name] if len(chunks) == 1 else [f"{self.name}.{i}" for i in range(len(chunks))]
        )
        for name, chunk in zip(names, chunks, strict=True):
            response.set_cookie(
                name,
                chunk,
                max_age=max_age,
                path=self.path,
                secure=self.secure,
                httponly=True,
                samesite="lax",
            )
        self.delete(response, self.names_in(existing) - set(names))

    def delete(self, response: Response, names: Iterable[str]) -> None:
        for name in sorted(names):
            response.delete_cookie(
                name, path=self.path, secure=self.secure, httponly=True, samesite="lax"
            )


def _read_chunks(cookies: Mapping[str, str], name: str) -> str | None:
    whole = cookies.get(name)
    if whole is not None:
        return whole
    parts = []
    for index in range(MAX_CHUNKS):
        part = cookies.get(f"{name}.{index}")
        if part is None:
            break
        parts.append(part)
    # A value that fits one cookie is never written as chunks.
    return "".join(parts) if len(parts) > 1 else None
