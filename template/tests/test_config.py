"""Settings: defaults, normalisation, and startup refusing bad configuration."""

from pathlib import Path

import pytest

from app.config import ConfigurationError, load_settings

GOOD = {
    "AUTH0_DOMAIN": "tenant.us.auth0.com",
    "AUTH0_CLIENT_ID": "abc",
    "AUTH0_CLIENT_SECRET": "client-password-value",
    "APP_BASE_URL": "https://app.example.com/",
    "SESSION_SECRET": "Vt7Qm2Lx9Rk4Pz8Wn3Hj6Bc1Fd5Gs0Ya",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name, value in GOOD.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_a_bare_auth0_domain_means_an_https_issuer(env: pytest.MonkeyPatch) -> None:
    settings = load_settings()

    assert settings.issuer == "https://tenant.us.auth0.com/"
    assert settings.app_base_url == "https://app.example.com"
    assert settings.redirect_uri == "https://app.example.com/auth/callback"
    assert settings.secure_cookies
    assert settings.auth0_scope == "openid profile email offline_access"


def test_a_domain_with_a_trailing_slash_is_tidied(env: pytest.MonkeyPatch) -> None:
    env.setenv("AUTH0_DOMAIN", "tenant.us.auth0.com/")

    assert load_settings().issuer == "https://tenant.us.auth0.com/"


def test_a_full_issuer_url_is_kept_as_written(env: pytest.MonkeyPatch) -> None:
    env.setenv("AUTH0_DOMAIN", "http://127.0.0.1:4000")

    assert load_settings().issuer == "http://127.0.0.1:4000"


def test_several_secrets_rotate(env: pytest.MonkeyPatch) -> None:
    env.setenv(
        "SESSION_SECRET", "Vt7Qm2Lx9Rk4Pz8Wn3Hj6Bc1Fd5Gs0Ya, Kp4Ns8Xt2Mv6Qw1Lz9Rb3Hf7Jd5Gc0Ye"
    )

    assert len(load_settings().session_secrets) == 2


@pytest.mark.parametrize(
    ("name", "value", "complaint"),
    [
        ("SESSION_SECRET", "too-short", "shorter than 32"),
        ("SESSION_SECRET", "change-me-change-me-change-me-change-me", "placeholder"),
        ("SESSION_SECRET", "a" * 40, "placeholder"),
        ("SESSION_SECRET", "", "empty"),
        ("AUTH0_DOMAIN", "http://tenant.us.auth0.com", "https"),
        ("AUTH0_DOMAIN", "ftp://tenant", "https"),
        ("APP_BASE_URL", "http://app.example.com", "https"),
        ("APP_BASE_URL", "https://app.example.com/sub", "no path"),
        ("AUTH0_TIMEOUT", "0", "greater than 0"),
        ("AUTH0_SCOPE", "profile email", "openid"),
    ],
)
def test_bad_values_stop_startup_with_a_clear_message(
    env: pytest.MonkeyPatch, name: str, value: str, complaint: str
) -> None:
    env.setenv(name, value)

    with pytest.raises(ConfigurationError) as error:
        load_settings()

    message = str(error.value)
    assert name in message and complaint in message
    if name == "SESSION_SECRET" and value:
        assert value not in message  # secrets never end up in logs


def test_every_problem_is_listed_at_once(env: pytest.MonkeyPatch) -> None:
    env.delenv("AUTH0_CLIENT_ID")
    env.delenv("AUTH0_CLIENT_SECRET")
    env.setenv("SESSION_SECRET", "short")

    with pytest.raises(ConfigurationError) as error:
        load_settings()

    message = str(error.value)
    assert "AUTH0_CLIENT_ID: is not set" in message
    assert "AUTH0_CLIENT_SECRET: is not set" in message
    assert "SESSION_SECRET" in message
