"""The auth code's settings, read once from the environment and `.env`.

Every setting is an environment variable of the same name in upper case, e.g.
`AUTH0_DOMAIN`. Invalid configuration stops the app at startup with a list of
every problem (see `load_settings`); secrets never appear in that list. The session
store's own settings are defined next to it (`StoreSettings` in `app/auth/stores/`).
Template-owned: add your app's settings to `app/config.py`, which extends these.
"""

import math
import re
import warnings
from collections import Counter
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import SplitResult, urlsplit

from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import ECKey, RSAKey
from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.auth.cookies import CookieScope
from app.auth.provider import ProviderConfig
from app.auth.urls import AUTH_PREFIX, CALLBACK_PATH, PREFIX_PATTERN, is_loopback
from app.auth.variant import OFFLINE_ACCESS_NEEDED_BY, StoreSettings

MIN_SECRET_LENGTH = 32
# What the characters of a secret say about its strength at most (their Shannon entropy
# times its length): 32 random hex digits give about 120 bits, `token_urlsafe(48)` 350.
MIN_SECRET_BITS = 100
MIN_RSA_KEY_BITS = 2048
# How client assertions are signed (RFC 7518): RS256 with an RSA key, by curve with an EC key.
EC_KEY_ALGORITHMS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
KEY_SETTINGS = ("auth0_private_key", "auth0_private_key_file")
PLACEHOLDER_MARKERS = ("change", "replace", "your", "example", "placeholder", "secret")
S = TypeVar("S", bound="AuthSettings")


class AuthSettings(StoreSettings, BaseSettings):
    """The settings of the auth code; `app.config.Settings` adds the app's own."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    # The provider. A bare host (`tenant.us.auth0.com`) means the issuer
    # `https://tenant.us.auth0.com/`; a full URL is taken as the issuer as written.
    # `ISSUER` names it for any OpenID provider; `AUTH0_DOMAIN` is the same setting.
    auth0_domain: str = Field(validation_alias=AliasChoices("auth0_domain", "issuer"))
    auth0_client_id: str = Field(min_length=1)
    # How the app proves who it is to the provider: a client secret, or a private key
    # (`private_key_jwt`, RFC 7523) as PEM text or as the path of a PEM file.
    # The secret comes after the key settings because its check looks at them.
    auth0_private_key: SecretStr | None = None
    auth0_private_key_file: str | None = None
    # Key id (`kid`) put in the header of client assertions, for providers that want it.
    auth0_private_key_id: str | None = None
    auth0_client_secret: SecretStr | None = Field(default=None, validate_default=True)
    # Send the login parameters to the provider first (Pushed Authorization Requests,
    # RFC 9126); done anyway when the provider requires it.
    auth0_use_par: bool = False
    auth0_audience: str | None = None
    auth0_scope: str = "openid profile email offline_access"
    # OIDC Core §11: a provider may ignore `offline_access` (and issue no refresh token)
    # unless the login also asks for consent. `consent` adds `prompt=consent` to logins that
    # ask for `offline_access`; `none` (the default; Auth0 needs no such prompt) does not.
    auth0_offline_access_prompt: Literal["consent", "none"] = "none"
    # How the API is named in token requests: Auth0 says `audience`, RFC 8707 `resource`.
    auth0_audience_parameter: Literal["audience", "resource"] = "audience"
    # Seconds before expiry at which an access token is refreshed.
    access_token_leeway: int = Field(default=60, ge=0, le=3600)
    # Seconds to wait for the provider before showing a "provider unavailable" page.
    auth0_timeout: float = Field(default=10.0, gt=0, le=60)
    # Auth0 Organizations: every login is into this organization (its id `org_...` or its
    # name), and the ID token must say so. Unset: a login may name one
    # (`/auth/login?organization=...`), which is then checked the same way.
    auth0_organization: str | None = None

    # The user's claims from the provider's UserInfo endpoint at login (OIDC Core §5.4),
    # merged under the ID token's: `auto` when the ID token lacks what the scopes ask for
    # (some providers put `profile`/`email` claims only there), `always`, or `never`.
    auth_userinfo: Literal["auto", "always", "never"] = "auto"

    # Authorization. The ID token claims that hold the user's roles and permissions
    # (kept in the session as `roles` and `permissions`): with Auth0, a namespaced claim
    # an Action adds, e.g. `https://app.example.com/roles`.
    auth_roles_claim: str = "roles"
    auth_permissions_claim: str = "permissions"

    # APIs: bearer access tokens (JWTs from the same provider) accepted for this audience;
    # unset, AUTH0_AUDIENCE. Token types accepted in the JWT header (RFC 9068 says
    # `at+jwt`; Auth0 marks its tokens `JWT` unless the API uses the RFC 9068 profile).
    api_audience: str | None = None
    api_token_types: tuple[str, ...] = ("at+jwt", "application/at+jwt", "JWT")

    # Where users reach this app, e.g. `https://app.example.com`; with a path
    # (`https://example.com/portal`) behind a proxy that routes that path to this app.
    app_base_url: str
    # Where the auth routes are mounted (read at import, see app/auth/urls.py).
    auth_prefix: str = AUTH_PREFIX
    # One secret, or several separated by commas: the first encrypts new cookies,
    # all of them decrypt (rotate without logging anyone out).
    session_secret: SecretStr
    # Seconds of inactivity after which a session ends (rolling expiry).
    session_inactivity_duration: int = Field(default=24 * 3600, gt=0)
    # Seconds after login after which a session ends, active or not.
    session_absolute_duration: int = Field(default=7 * 24 * 3600, gt=0)
    # Serve /docs, /redoc and /openapi.json; unset: only in development (APP_BASE_URL is
    # http:// on this machine).
    openapi_docs: bool | None = None
    # Fetch the provider's discovery document when the app starts (in the background;
    # a failure is logged, the app starts anyway).
    auth_startup_check: bool = True
    # Logs (app/logs.py): the level of the app's loggers, and `text` or `json` lines.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    @field_validator("auth0_domain")
    @classmethod
    def _issuer_url(cls, value: str) -> str:
        value = value.strip()
        if re.match(r"https?(:|//)", value, re.IGNORECASE) and "://" not in value:
            raise ValueError(
                f"{value!r} has a mistyped scheme: write https://host or just the host"
            )
        if "://" not in value:
            host_part = value.strip("/")
            if "/" in host_part:
                raise ValueError(
                    f"is a host name with a path ({value!r}): write the host alone "
                    "(your-tenant.us.auth0.com), or the whole issuer URL with https://"
                )
            value = f"https://{host_part}/"
        parts = _check_url(value, "must be an https:// URL or a host name")
        if parts.path.rstrip("/").endswith("/.well-known/openid-configuration"):
            raise ValueError("is the discovery URL: write the issuer, without /.well-known/...")
        if parts.scheme == "https" and parts.port == 443:
            raise ValueError("names port 443, which https:// uses anyway: leave out :443")
        host = parts.hostname or ""
        if any(label.startswith("your-") for label in host.split(".")):
            raise ValueError("is still the placeholder from .env.example")
        return value

    @field_validator(
        "auth0_private_key",
        "auth0_private_key_file",
        "auth0_private_key_id",
        "auth0_client_secret",
        "auth0_organization",
        "api_audience",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("auth0_private_key")
    @classmethod
    def _private_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            load_private_key(value.get_secret_value())
        return value

    @field_validator("auth0_private_key_file")
    @classmethod
    def _private_key_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            if info.data.get("auth0_private_key") is not None:
                raise ValueError("set either AUTH0_PRIVATE_KEY or AUTH0_PRIVATE_KEY_FILE, not both")
            load_private_key(_read_key_file(value))
        return value

    @field_validator("auth0_client_secret")
    @classmethod
    def _one_client_credential(
        cls, value: SecretStr | None, info: ValidationInfo
    ) -> SecretStr | None:
        if any(name not in info.data for name in KEY_SETTINGS):
            return value  # a key setting is invalid: that is reported on its own
        has_key = any(info.data[name] is not None for name in KEY_SETTINGS)
        if value is None and not has_key:
            raise ValueError(
                "is not set (nor is a private key: AUTH0_PRIVATE_KEY or AUTH0_PRIVATE_KEY_FILE)"
            )
        if value is not None and has_key:
            raise ValueError("set either a client secret or a private key, not both")
        return value

    @field_validator("auth0_scope")
    @classmethod
    def _openid_scope(cls, value: str) -> str:
        if "openid" not in value.split():
            raise ValueError("must include openid")
        if OFFLINE_ACCESS_NEEDED_BY and "offline_access" not in value.split():
            raise ValueError(
                f"must include offline_access: {OFFLINE_ACCESS_NEEDED_BY} need a refresh token"
            )
        return value

    @field_validator("app_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        parts = _check_url(value, "must be an absolute URL such as https://app.example.com")
        if parts.query or parts.fragment:
            raise ValueError("must be a URL such as https://app.example.com (no query)")
        if parts.path and not PREFIX_PATTERN.fullmatch(parts.path):
            raise ValueError("has a path with characters other than letters, digits, ._~-")
        return value

    @field_validator("auth_prefix")
    @classmethod
    def _auth_prefix(cls, value: str) -> str:
        value = value.rstrip("/")
        if not PREFIX_PATTERN.fullmatch(value):
            raise ValueError("must be a path such as /auth (letters, digits, ._~- only)")
        if value != AUTH_PREFIX:
            raise ValueError(
                f"is read once when the app is imported (it is {AUTH_PREFIX}): set it in "
                "the environment or .env, not in code"
            )
        return value

    @field_validator("session_secret")
    @classmethod
    def _strong_secrets(cls, value: SecretStr) -> SecretStr:
        secrets = _split_secrets(value.get_secret_value())
        if not secrets:
            raise ValueError("is empty: set it to a long random string (python -m devserver does)")
        for number, secret in enumerate(secrets, start=1):
            if len(secret) < MIN_SECRET_LENGTH:
                raise ValueError(f"secret #{number} is shorter than {MIN_SECRET_LENGTH} characters")
            lowered = secret.lower()
            if len(set(secret)) < 8 or any(marker in lowered for marker in PLACEHOLDER_MARKERS):
                raise ValueError(f"secret #{number} looks like a placeholder, not a random value")
            if _repeats(secret) or _entropy_bits(secret) < MIN_SECRET_BITS:
                raise ValueError(
                    f"secret #{number} is too predictable (a pattern, or too few different "
                    "characters): python -c 'import secrets; print(secrets.token_urlsafe(48))'"
                )
        return value

    @cached_property
    def issuer(self) -> str:
        return self.auth0_domain

    @cached_property
    def session_secrets(self) -> list[str]:
        return _split_secrets(self.session_secret.get_secret_value())

    @cached_property
    def client_private_key(self) -> RSAKey | ECKey | None:
        """The key that signs client assertions; None when the app uses a client secret.

        Read once: the app loads it at startup, never per request.
        """
        if self.auth0_private_key is not None:
            pem = self.auth0_private_key.get_secret_value()
        elif self.auth0_private_key_file is not None:
            pem = _read_key_file(self.auth0_private_key_file)
        else:
            return None
        return load_private_key(pem, kid=self.auth0_private_key_id)

    @cached_property
    def api_token_audience(self) -> str | None:
        """The audience bearer tokens must be for (None: the app takes no bearer tokens)."""
        return self.api_audience or self.auth0_audience

    @cached_property
    def docs_enabled(self) -> bool:
        if self.openapi_docs is not None:
            return self.openapi_docs
        base = urlsplit(self.app_base_url)
        return base.scheme == "http" and is_loopback(base.hostname or "")

    @cached_property
    def app_origin(self) -> str:
        """`APP_BASE_URL` without its path: what browsers send as `Origin`."""
        parts = urlsplit(self.app_base_url)
        return f"{parts.scheme}://{parts.netloc}".lower()

    @cached_property
    def base_path(self) -> str:
        """The path of `APP_BASE_URL` (`/portal`), or "" when the app is at the root."""
        return urlsplit(self.app_base_url).path

    @cached_property
    def secure_cookies(self) -> bool:
        return self.app_base_url.startswith("https://")

    @cached_property
    def cookie_scope(self) -> CookieScope:
        return CookieScope(secure=self.secure_cookies, base_path=self.base_path)

    @cached_property
    def redirect_uri(self) -> str:
        return self.app_base_url + CALLBACK_PATH

    def provider_config(self) -> ProviderConfig:
        """What the OpenID client needs of these settings (and nothing else)."""
        key = self.client_private_key
        return ProviderConfig(
            issuer=self.issuer,
            client_id=self.auth0_client_id,
            client_secret=self.auth0_client_secret,
            private_key=key,
            assertion_algorithm=signing_algorithm(key) if key is not None else None,
            redirect_uri=self.redirect_uri,
            scope=self.auth0_scope,
            audience=self.auth0_audience,
            audience_parameter=self.auth0_audience_parameter,
            use_par=self.auth0_use_par,
            timeout=self.auth0_timeout,
        )


def load_private_key(pem: str, *, kid: str | None = None) -> RSAKey | ECKey:
    """An RSA or EC private key from PEM text. Error messages never quote the key."""
    if "\\n" in pem and "\n" not in pem.strip():
        pem = pem.replace("\\n", "\n")  # a PEM squeezed onto one line, as some consoles store it
    for key_type in (RSAKey, ECKey):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SecurityWarning)  # small keys: refused below
                key: RSAKey | ECKey = key_type.import_key(
                    pem.strip(), {"kid": kid} if kid else None
                )
        except JoseError:
            continue  # another type of key
        except (ValueError, TypeError):
            break
        if not key.is_private:
            raise ValueError("is a public key: the private key is needed")
        signing_algorithm(key)  # refuses unusable keys
        return key
    raise ValueError("is not an unencrypted PEM-encoded RSA or EC private key")


def signing_algorithm(key: RSAKey | ECKey) -> str:
    """The JWS algorithm for client assertions signed with `key`."""
    if isinstance(key, RSAKey):
        if key.raw_value.key_size < MIN_RSA_KEY_BITS:
            raise ValueError(f"is an RSA key of fewer than {MIN_RSA_KEY_BITS} bits")
        return "RS256"
    algorithm = EC_KEY_ALGORITHMS.get(key.curve_name)
    if algorithm is None:
        raise ValueError("is an EC key on an unsupported curve (use P-256, P-384 or P-521)")
    return algorithm


def _entropy_bits(secret: str) -> float:
    counts = Counter(secret)
    return -sum(n * math.log2(n / len(secret)) for n in counts.values())


def _repeats(secret: str) -> bool:
    """Whether the secret is a shorter string repeated (`abcdefgh` four times)."""
    return any(
        secret == (secret[:period] * (len(secret) // period + 1))[: len(secret)]
        for period in range(1, len(secret) // 2 + 1)
    )


def _read_key_file(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot be read ({exc.strerror or 'error'})") from None
    except UnicodeDecodeError:
        raise ValueError("is not a PEM text file") from None


def _split_secrets(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _check_url(value: str, malformed: str) -> SplitResult:
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(malformed)
    if parts.username or parts.password:
        raise ValueError("must not contain credentials")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError("must use https:// (http:// is only for localhost)")
    return parts


class ConfigurationError(SystemExit):
    """Raised at startup when the settings are invalid; the message lists every problem."""


def load_settings(settings: type[S]) -> S:
    """`settings` read from the environment and `.env`, or ConfigurationError."""
    try:
        return settings()  # type: ignore[call-arg]  # values come from the environment
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            name = "_".join(str(part) for part in error["loc"]).upper() or "settings"
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "missing":
                message = "is not set"
            problems.append(f"  - {name}: {message}")
        raise ConfigurationError(
            "Invalid configuration (environment variables or .env):\n" + "\n".join(problems)
        ) from None
