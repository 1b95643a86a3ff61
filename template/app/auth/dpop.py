"""DPoP proofs (RFC 9449), checked: a client proves it holds the key its token is bound to.

A DPoP-bound access token carries the key's thumbprint (`cnf.jkt`). Each request with it
comes with a `DPoP` header: a fresh JWT signed with that key, naming the request's method
(`htm`) and URL (`htu`), when it was made (`iat`), a unique id (`jti`) and the token's
hash (`ath`). A stolen token is useless without the key. Free of I/O: `api_tokens.py`
remembers the ids to refuse a proof used twice.
"""

import hashlib
import hmac
from base64 import urlsafe_b64encode
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, OKPKey, RSAKey

from app.auth.bodies import parse_json
from app.auth.errors import InvalidToken
from app.auth.tokens import CLOCK_LEEWAY, SIGNING_ALGORITHMS

PROOF_LIFETIME = 60  # seconds a proof is accepted after its `iat` (and remembered)
MAX_PROOF_LENGTH = 4096
_registry = jws.JWSRegistry(algorithms=list(SIGNING_ALGORITHMS))


@dataclass(frozen=True, slots=True)
class Proof:
    jti: str
    expires_at: int  # until when a replay must be refused


def check_proof(
    proof: str, *, method: str, url: str, access_token: str, jkt: str, now: int
) -> Proof:
    """Check a DPoP proof for a request (`method`, `url` without query) with `access_token`,
    whose key thumbprint must be `jkt`."""
    if len(proof) > MAX_PROOF_LENGTH:
        raise InvalidToken("The DPoP proof is too large.")
    try:
        header = jws.extract_compact(proof.encode()).headers()
    except (JoseError, ValueError):
        raise InvalidToken("The DPoP proof is malformed.") from None
    alg, jwk = header.get("alg"), header.get("jwk")
    if header.get("typ") != "dpop+jwt" or alg not in SIGNING_ALGORITHMS:
        raise InvalidToken("The DPoP proof has the wrong type or algorithm.")
    key = _public_key(jwk)
    if not hmac.compare_digest(key.thumbprint(), jkt):
        raise InvalidToken("The DPoP proof is signed with another key than the token's.")
    try:
        payload = jws.deserialize_compact(proof, key, algorithms=[alg], registry=_registry).payload
        claims: Any = parse_json(payload)
    except (JoseError, ValueError):
        raise InvalidToken("The DPoP proof's signature is not valid.") from None
    if not isinstance(claims, dict):
        raise InvalidToken("The DPoP proof is malformed.")
    jti, iat = claims.get("jti"), claims.get("iat")
    if not isinstance(jti, str) or not 0 < len(jti) <= 256:
        raise InvalidToken("The DPoP proof has no valid jti.")
    if claims.get("htm") != method or not _same_url(claims.get("htu"), url):
        raise InvalidToken("The DPoP proof is for another request (htm, htu).")
    if isinstance(iat, bool) or not isinstance(iat, int | float):
        raise InvalidToken("The DPoP proof has no valid iat.")
    if iat > now + CLOCK_LEEWAY or iat < now - PROOF_LIFETIME:
        raise InvalidToken("The DPoP proof is too old or from the future.")
    ath = urlsafe_b64encode(hashlib.sha256(access_token.encode()).digest()).rstrip(b"=").decode()
    sent = claims.get("ath")
    if not isinstance(sent, str) or not hmac.compare_digest(sent, ath):
        raise InvalidToken("The DPoP proof is for another access token (ath).")
    return Proof(jti=jti, expires_at=int(iat) + PROOF_LIFETIME + CLOCK_LEEWAY)


def _public_key(jwk: Any) -> RSAKey | ECKey | OKPKey:
    if not isinstance(jwk, dict) or "d" in jwk or jwk.get("kty") not in ("RSA", "EC", "OKP"):
        raise InvalidToken("The DPoP proof carries no usable public key.")
    try:
        key = JWKRegistry.import_key(jwk)
    except (JoseError, ValueError, TypeError):
        raise InvalidToken("The DPoP proof carries no usable public key.") from None
    if not isinstance(key, RSAKey | ECKey | OKPKey) or key.is_private:
        raise InvalidToken("The DPoP proof carries no usable public key.")
    return key


def _same_url(htu: Any, url: str) -> bool:
    """RFC 9449 §4.3: `htu` without its query and fragment is the request's URL (compared
    after the normalizations of RFC 3986 §6.2.2-6.2.3: case, default ports, empty path)."""
    return isinstance(htu, str) and len(htu) <= MAX_PROOF_LENGTH and _normal(htu) == _normal(url)


def _normal(url: str) -> str:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if port is not None and (scheme, port) not in (("https", 443), ("http", 80)):
        host = f"{host}:{port}"
    return f"{scheme}://{host}{parts.path or '/'}"
