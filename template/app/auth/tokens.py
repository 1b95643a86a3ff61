"""Token checks, free of I/O: token responses and ID tokens (OpenID Connect Core 1.0 §3.1.3).

The functions here raise `InvalidToken` with a message that names the failed check;
`UnknownSigningKey` tells the caller to refetch the provider's keys once and retry.
"""

import hmac
import json
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

from app.auth.errors import InvalidToken

# Asymmetric algorithms only: never `none`, never an HMAC algorithm (which would let
# anyone holding the provider's public key sign tokens).
SIGNING_ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
)  # fmt: skip
CLOCK_LEEWAY = 60  # seconds of clock difference tolerated between us and the provider
MAX_TOKEN_LENGTH = 12_000
MAX_REFRESH_TOKEN_LENGTH = 4_000
MAX_SCOPE_LENGTH = 2_000
BEARER = "Bearer"

_KEY_TYPES: dict[str, type[RSAKey | ECKey | OKPKey]] = {"RS": RSAKey, "PS": RSAKey, "ES": ECKey}
_registry = jws.JWSRegistry(algorithms=list(SIGNING_ALGORITHMS))

PublicKey = RSAKey | ECKey | OKPKey


class UnknownSigningKey(InvalidToken):
    """The token names a key the cached key set does not have."""


@dataclass(frozen=True, slots=True)
class TokenSet:
    """What the token endpoint returned, checked."""

    id_token: str
    access_token: str
    token_type: str
    refresh_token: str | None
    expires_at: int | None
    scope: str | None


def parse_token_response(body: dict[str, Any], *, now: int) -> TokenSet:
    token_type = body.get("token_type")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise InvalidToken("The login service returned an unsupported token type.")
    expires_in = body.get("expires_in")
    if expires_in is not None and (
        isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or expires_in <= 0
    ):
        raise InvalidToken("The login service returned an invalid token lifetime.")
    return TokenSet(
        id_token=_bounded_str(body, "id_token", MAX_TOKEN_LENGTH, required=True) or "",
        access_token=_bounded_str(body, "access_token", MAX_TOKEN_LENGTH, required=True) or "",
        token_type=BEARER,
        refresh_token=_bounded_str(body, "refresh_token", MAX_REFRESH_TOKEN_LENGTH),
        expires_at=now + int(expires_in) if expires_in is not None else None,
        scope=_bounded_str(body, "scope", MAX_SCOPE_LENGTH),
    )


def _bounded_str(
    body: dict[str, Any], name: str, limit: int, *, required: bool = False
) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidToken(f"The login service's token response has no valid {name}.")
    if len(value) > limit:
        raise InvalidToken(f"The login service's {name} is too large.")
    return value


def validate_id_token(
    token: str,
    keys: KeySet,
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    algorithms: tuple[str, ...],
    now: int,
) -> dict[str, Any]:
    """Verify the signature and claims of an ID token; return its claims."""
    claims = verify_signature(token, keys, algorithms=algorithms)
    check_claims(claims, issuer=issuer, client_id=client_id, now=now)
    expected_nonce = claims.get("nonce")
    if not isinstance(expected_nonce, str) or not hmac.compare_digest(expected_nonce, nonce):
        raise InvalidToken("The ID token was not issued for this login (nonce mismatch).")
    return claims


def verify_signature(token: str, keys: KeySet, *, algorithms: tuple[str, ...]) -> dict[str, Any]:
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("The token is too large.")
    try:
        header = jws.extract_compact(token.encode()).headers()
    except (JoseError, ValueError):
        raise InvalidToken("The token is malformed.") from None
    alg = header.get("alg")
    if alg not in algorithms:
        raise InvalidToken(f"The token is signed with a disallowed algorithm ({alg!s:.20}).")
    typ = header.get("typ")
    if typ is not None and str(typ).lower() not in ("jwt", "application/jwt"):
        raise InvalidToken("The token has the wrong type.")

    kid = header.get("kid")
    candidates = [key for key in _keys_for(alg, keys) if kid is None or key.kid == kid]
    if not candidates:
        raise UnknownSigningKey(
            "The token is signed with a key the login service does not publish."
        )
    for key in candidates:
        try:
            payload = jws.deserialize_compact(
                token, key, algorithms=[alg], registry=_registry
            ).payload
        except (JoseError, ValueError):
            continue
        try:
            claims = json.loads(payload)
        except ValueError:
            break
        if isinstance(claims, dict):
            return claims
        break
    raise InvalidToken("The token's signature is not valid.")


def _keys_for(alg: str, keys: KeySet) -> list[PublicKey]:
    key_type = OKPKey if alg == "EdDSA" else _KEY_TYPES[alg[:2]]
    return [key for key in keys if isinstance(key, key_type)]


def check_claims(claims: dict[str, Any], *, issuer: str, client_id: str, now: int) -> None:
    """The registered claims every provider-signed token must carry (not the nonce)."""
    if claims.get("iss") != issuer:
        raise InvalidToken("The token was issued by another issuer.")
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or client_id not in audiences:
        raise InvalidToken("The token was issued for another application (audience).")
    azp = claims.get("azp")
    if (len(audiences) > 1 or azp is not None) and azp != client_id:
        raise InvalidToken("The token was issued for another application (azp).")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 255:
        raise InvalidToken("The token has no valid subject.")
    exp, iat = _number(claims, "exp"), _number(claims, "iat")
    if exp is None or exp + CLOCK_LEEWAY <= now:
        raise InvalidToken("The token has expired.")
    if iat is None or iat - CLOCK_LEEWAY > now:
        raise InvalidToken("The token's issue time is missing or in the future.")
    nbf = _number(claims, "nbf")
    if nbf is not None and nbf - CLOCK_LEEWAY > now:
        raise InvalidToken("The token is not valid yet.")


def _number(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToken(f"The token's {name} claim is not a number.")
    return float(value)
