"""Token checks, free of I/O: token responses, ID tokens (OpenID Connect Core 1.0 §3.1.3),
logout tokens and the JWT access tokens of this app's APIs (RFC 9068).

The functions here raise `InvalidToken` with a message that names the failed check;
`UnknownSigningKey` tells the caller to refetch the provider's keys once and retry.
"""

import hmac
import warnings
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

from app.auth.bodies import parse_json
from app.auth.errors import InvalidToken
from app.auth.sessions import AccessToken

# Asymmetric algorithms only: never `none`, never an HMAC algorithm (which would let
# anyone holding the provider's public key sign tokens).
SIGNING_ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
    "EdDSA", "Ed25519", "Ed448",
)  # fmt: skip
EDWARDS_ALGORITHMS = ("EdDSA", "Ed25519", "Ed448")  # RFC 9864 names the last two
CLOCK_LEEWAY = 60  # seconds of clock difference tolerated between us and the provider
MAX_TOKEN_LENGTH = 12_000
MAX_REFRESH_TOKEN_LENGTH = 4_000
MAX_SCOPE_LENGTH = 2_000
JWT_TYPES = ("jwt", "application/jwt")
LOGOUT_TOKEN_TYPES = (*JWT_TYPES, "logout+jwt", "application/logout+jwt")
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_MAX_AGE = 600  # seconds: older logout tokens are refused, so jti records can expire

_KEY_TYPES: dict[str, type[RSAKey | ECKey | OKPKey]] = {"RS": RSAKey, "PS": RSAKey, "ES": ECKey}
_registry = jws.JWSRegistry(algorithms=list(SIGNING_ALGORITHMS))

PublicKey = RSAKey | ECKey | OKPKey


class UnknownSigningKey(InvalidToken):
    """The token names a key the cached key set does not have."""


@dataclass(frozen=True, slots=True)
class TokenSet:
    """What the token endpoint returned, checked."""

    id_token: str | None  # always there after a login; optional after a refresh
    access_token: str  # a Bearer token (anything else is refused)
    refresh_token: str | None
    expires_at: int | None
    scope: str | None

    def access_token_for(self, audience: str | None, *, asked: str | None = None) -> AccessToken:
        """The access token, for `audience`; without a `scope` in the response, the
        scopes asked for were granted (RFC 6749 §5.1)."""
        return AccessToken(self.access_token, self.expires_at, self.scope or asked, audience)


def parse_token_response(
    body: dict[str, Any], *, now: int, id_token_required: bool = True
) -> TokenSet:
    token_type = body.get("token_type")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise InvalidToken("The login service returned an unsupported token type.")
    expires_in = body.get("expires_in")
    if expires_in is not None and (
        isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or expires_in <= 0
    ):
        raise InvalidToken("The login service returned an invalid token lifetime.")
    return TokenSet(
        id_token=_bounded_str(body, "id_token", MAX_TOKEN_LENGTH, required=id_token_required),
        access_token=_bounded_str(body, "access_token", MAX_TOKEN_LENGTH, required=True) or "",
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
    algorithms: tuple[str, ...],
    now: int,
    nonce: str | None = None,
    sub: str | None = None,
    original: str | None = None,
) -> dict[str, Any]:
    """Verify the signature and claims of an ID token; return its claims.

    At login the `nonce` must be the one sent; an ID token from a refresh has none
    to check, but must be about the session's user, `sub` (Core §12.2), as must one
    from a flow that a logged-in user starts (account linking: both are checked). One
    from a refresh is also compared with the session's, `original` (see below).
    """
    claims = verify_signature(token, keys, algorithms=algorithms)
    check_claims(claims, issuer=issuer, client_id=client_id, now=now)
    if nonce is not None:
        sent = claims.get("nonce")
        if not isinstance(sent, str) or not hmac.compare_digest(sent, nonce):
            raise InvalidToken("The ID token was not issued for this login (nonce mismatch).")
    if sub is not None and claims.get("sub") != sub:
        raise InvalidToken("The ID token is about another user than the session's.")
    if original is not None:
        _check_same_login(claims, original)
    return claims


def _check_same_login(claims: dict[str, Any], original: str) -> None:
    """Core §12.2: an ID token from a refresh has the audiences of the session's (checked
    when it was stored), as it has its issuer and subject. Its nonce, if any, is that of
    the login that got the refresh token, which need not be the stored ID token's (account
    linking replaces the ID token and keeps the refresh token): it is not compared."""
    try:
        before = parse_json(jws.extract_compact(original.encode()).payload)
    except (JoseError, ValueError):
        raise InvalidToken("The session's ID token is unreadable.") from None
    if not isinstance(before, dict) or _audiences(claims) != _audiences(before):
        raise InvalidToken("The refreshed ID token is for other applications (aud).")


def _audiences(claims: dict[str, Any]) -> set[str]:
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    return {a for a in audiences if isinstance(a, str)} if isinstance(audiences, list) else set()


def verify_signature(
    token: str,
    keys: KeySet,
    *,
    algorithms: tuple[str, ...],
    types: tuple[str, ...] = JWT_TYPES,
    typ_required: bool = False,
) -> dict[str, Any]:
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
    if (typ is None and typ_required) or (typ is not None and str(typ).lower() not in types):
        raise InvalidToken("The token has the wrong type.")

    kid = header.get("kid")
    candidates = [key for key in _keys_for(alg, keys) if kid is None or key.kid == kid]
    if not candidates:
        raise UnknownSigningKey(
            "The token is signed with a key the login service does not publish."
        )
    for key in candidates:
        try:
            payload = _verified_payload(token, key, alg)
        except (JoseError, ValueError):
            continue
        try:
            claims = parse_json(payload)
        except ValueError:
            break
        if isinstance(claims, dict):
            return claims
        break
    raise InvalidToken("The token's signature is not valid.")


def _verified_payload(token: str, key: PublicKey, alg: str) -> bytes:
    if alg != "EdDSA":
        return jws.deserialize_compact(token, key, algorithms=[alg], registry=_registry).payload
    # RFC 9864 deprecates the name "EdDSA" (for "Ed25519" or "Ed448"), not the signatures:
    # providers still sign with it, so it is accepted without joserfc's warning per token.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        return jws.deserialize_compact(token, key, algorithms=[alg], registry=_registry).payload


def _keys_for(alg: str, keys: KeySet) -> list[PublicKey]:
    key_type = OKPKey if alg in EDWARDS_ALGORITHMS else _KEY_TYPES[alg[:2]]
    return [key for key in keys if isinstance(key, key_type)]


def check_claims(claims: dict[str, Any], *, issuer: str, client_id: str, now: int) -> None:
    """The claims every ID token must carry, checked (all but the nonce)."""
    audiences = _check_issued_for_us(claims, issuer=issuer, client_id=client_id)
    azp = claims.get("azp")
    if (len(audiences) > 1 or azp is not None) and azp != client_id:
        raise InvalidToken("The token was issued for another application (azp).")
    if _string(claims, "sub") is None:
        raise InvalidToken("The token has no valid subject.")
    _check_times(claims, now=now, exp_required=True)


def _check_issued_for_us(claims: dict[str, Any], *, issuer: str, client_id: str) -> list[Any]:
    if claims.get("iss") != issuer:
        raise InvalidToken("The token was issued by another issuer.")
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or client_id not in audiences:
        raise InvalidToken("The token was issued for another application (audience).")
    return audiences


def _check_times(claims: dict[str, Any], *, now: int, exp_required: bool) -> None:
    exp, iat = _number(claims, "exp"), _number(claims, "iat")
    if (exp is None and exp_required) or (exp is not None and exp + CLOCK_LEEWAY <= now):
        raise InvalidToken("The token has expired.")
    if iat is None or iat - CLOCK_LEEWAY > now:
        raise InvalidToken("The token's issue time is missing or in the future.")
    nbf = _number(claims, "nbf")
    if nbf is not None and nbf - CLOCK_LEEWAY > now:
        raise InvalidToken("The token is not valid yet.")


def _string(claims: dict[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return value if isinstance(value, str) and 0 < len(value) <= 255 else None


@dataclass(frozen=True, slots=True)
class LogoutToken:
    """A checked back-channel logout token: which sessions to end, and its replay key."""

    jti: str
    sub: str | None
    sid: str | None
    expires_at: int  # until when the token could be replayed: remember its jti that long


def validate_logout_token(
    token: str,
    keys: KeySet,
    *,
    issuer: str,
    client_id: str,
    algorithms: tuple[str, ...],
    now: int,
) -> LogoutToken:
    """Back-Channel Logout 1.0 §2.6: signature, iss, aud, iat/exp, jti, events, sid/sub, nonce."""
    claims = verify_signature(token, keys, algorithms=algorithms, types=LOGOUT_TOKEN_TYPES)
    _check_issued_for_us(claims, issuer=issuer, client_id=client_id)
    _check_times(claims, now=now, exp_required=False)
    iat = _number(claims, "iat") or 0
    if iat + LOGOUT_TOKEN_MAX_AGE + CLOCK_LEEWAY < now:
        raise InvalidToken("The logout token is too old.")
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(LOGOUT_EVENT), dict):
        raise InvalidToken("The token is not a logout token (events).")
    if "nonce" in claims:
        raise InvalidToken("A logout token must not contain a nonce.")
    jti = _string(claims, "jti")
    if jti is None:
        raise InvalidToken("The logout token has no jti.")
    sub, sid = _string(claims, "sub"), _string(claims, "sid")
    if sub is None and sid is None:
        raise InvalidToken("The logout token names neither a user (sub) nor a session (sid).")
    for name in ("sub", "sid"):
        if name in claims and _string(claims, name) is None:
            raise InvalidToken(f"The logout token's {name} is not valid.")
    exp = _number(claims, "exp")
    valid_until = (
        iat + LOGOUT_TOKEN_MAX_AGE if exp is None else min(exp, iat + LOGOUT_TOKEN_MAX_AGE)
    )
    return LogoutToken(jti=jti, sub=sub, sid=sid, expires_at=int(valid_until) + CLOCK_LEEWAY)


def validate_access_token(
    token: str, keys: KeySet, *, issuer: str, audience: str, types: tuple[str, ...], now: int
) -> dict[str, Any]:
    """A JWT access token for an API of this app (RFC 9068 §4): signed by the provider
    with an asymmetric algorithm, of one of `types` (lower case), from `issuer`, for
    `audience`, within its validity, about a subject. Returns its claims."""
    claims = verify_signature(
        token, keys, algorithms=SIGNING_ALGORITHMS, types=types, typ_required=True
    )
    if claims.get("iss") != issuer:
        raise InvalidToken("The token was issued by another issuer.")
    aud = claims.get("aud")
    if audience not in ([aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []):
        raise InvalidToken("The token is for another API (audience).")
    _check_times(claims, now=now, exp_required=True)
    if _string(claims, "sub") is None:
        raise InvalidToken("The token has no valid subject.")
    scope = claims.get("scope")
    if scope is not None and (not isinstance(scope, str) or len(scope) > MAX_SCOPE_LENGTH):
        raise InvalidToken("The token's scope is not valid.")
    permissions = claims.get("permissions")
    if permissions is not None and not (
        isinstance(permissions, list) and all(isinstance(p, str) for p in permissions)
    ):
        raise InvalidToken("The token's permissions are not valid.")
    return claims


def _number(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToken(f"The token's {name} claim is not a number.")
    return float(value)
