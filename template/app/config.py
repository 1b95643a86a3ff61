"""Runtime configuration, read once from the environment and `.env`.

Every setting is an environment variable of the same name in upper case, e.g.
`AUTH0_DOMAIN`. Invalid configuration stops the app at startup with a list of
every problem (see `load_settings`); secrets never appear in that list.
"""

from functools import cached_property, lru_cache
from ipaddress import ip_address
from urllib.parse import SplitResult, urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_SECRET_LENGTH = 32
PLACEHOLDER_MARKERS = ("change", "replace", "your", "example", "placeholder", "secret")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    # The provider. A bare host (`tenant.us.auth0.com`) means the issuer
    # `https://tenant.us.auth0.com/`; a full URL is taken as the issuer as written.
    auth0_domain: str
    auth0_client_id: str = Field(min_length=1)
    auth0_client_secret: SecretStr = Field(min_length=1)
    auth0_audience: str | None = None
    auth0_scope: str = "openid profile email offline_access"
    # Seconds to wait for the provider before showing a "provider unavailable" page.
    auth0_timeout: float = Field(default=10.0, gt=0, le=60)

    # Where users reach this app, e.g. `https://app.example.com`.
    app_base_url: str
    # One secret, or several separated by commas: the first encrypts new cookies,
    # all of them decrypt (rotate without logging anyone out).
    session_secret: SecretStr
    # Seconds of inactivity after which a session ends (rolling expiry).
    session_inactivity_duration: int = Field(default=24 * 3600, gt=0)
    # Seconds after login after which a session ends, active or not.
    session_absolute_duration: int = Field(default=7 * 24 * 3600, gt=0)

    @field_validator("auth0_domain")
    @classmethod
    def _issuer_url(cls, value: str) -> str:
        value = value.strip()
        if "://" not in value:
            value = f"https://{value.strip('/')}/"
        _check_url(value, "the issuer")
        return value

    @field_validator("auth0_scope")
    @classmethod
    def _openid_scope(cls, value: str) -> str:
        if "openid" not in value.split():
            raise ValueError("must include openid")
        return value

    @field_validator("app_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        parts = _check_url(value, "APP_BASE_URL")
        if parts.path or parts.query or parts.fragment:
            raise ValueError("must be an origin such as https://app.example.com (no path)")
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
        return value

    @cached_property
    def issuer(self) -> str:
        return self.auth0_domain

    @cached_property
    def session_secrets(self) -> list[str]:
        return _split_secrets(self.session_secret.get_secret_value())

    @cached_property
    def secure_cookies(self) -> bool:
        return self.app_base_url.startswith("https://")

    @cached_property
    def redirect_uri(self) -> str:
        return f"{self.app_base_url}/auth/callback"


def _split_secrets(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _check_url(value: str, what: str) -> SplitResult:
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{what} must be an https:// URL or a host name")
    if parts.username or parts.password:
        raise ValueError(f"{what} must not contain credentials")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError(f"{what} must use https:// (http:// is only for localhost)")
    return parts


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


class ConfigurationError(SystemExit):
    """Raised at startup when the settings are invalid; the message lists every problem."""


def load_settings() -> Settings:
    try:
        return Settings()  # type: ignore[call-arg]  # values come from the environment
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


@lru_cache
def get_settings() -> Settings:
    return load_settings()
