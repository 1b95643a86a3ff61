"""Settings: defaults, normalisation, and startup refusing bad configuration."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, RSAKey

from app.auth.urls import CALLBACK_PATH
from app.config import ConfigurationError, load_settings
from app.main import create_app


def test_a_bare_auth0_domain_means_an_https_issuer(env: pytest.MonkeyPatch) -> None:
    settings = load_settings()

    assert settings.issuer == "https://tenant.us.auth0.com/"
    assert settings.app_base_url == "https://app.example.com"
    assert settings.redirect_uri == f"https://app.example.com{CALLBACK_PATH}"
    assert settings.secure_cookies
    assert settings.auth0_scope == "openid profile email offline_access"


def test_any_providers_issuer_may_be_set_as_issuer(env: pytest.MonkeyPatch) -> None:
    env.delenv("AUTH0_DOMAIN")
    env.setenv("ISSUER", "https://login.example.org/realms/main")

    assert load_settings().issuer == "https://login.example.org/realms/main"


def test_without_an_issuer_startup_names_the_setting(env: pytest.MonkeyPatch) -> None:
    env.delenv("AUTH0_DOMAIN")

    with pytest.raises(ConfigurationError, match="AUTH0_DOMAIN: is not set"):
        load_settings()


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
        ("SESSION_SECRET", "Qx7Lm2Vz" * 5, "predictable"),  # a pattern
        ("SESSION_SECRET", "abcdefghhgfedcba" * 2, "predictable"),  # 8 letters, 32 of them
        ("SESSION_SECRET", "", "empty"),
        ("AUTH0_DOMAIN", "http://tenant.us.auth0.com", "https"),
        ("AUTH0_DOMAIN", "ftp://tenant", "https"),
        ("AUTH0_DOMAIN", "https//tenant.us.auth0.com", "mistyped scheme"),
        ("AUTH0_DOMAIN", "https:/tenant.us.auth0.com", "mistyped scheme"),
        ("AUTH0_DOMAIN", "tenant.us.auth0.com/authorize", "host alone"),
        ("AUTH0_DOMAIN", "tenant.us.auth0.com:443", "leave out :443"),
        ("AUTH0_DOMAIN", "https://tenant.us.auth0.com:443/", "leave out :443"),
        ("AUTH0_DOMAIN", "https://t.example/.well-known/openid-configuration", "discovery URL"),
        ("APP_BASE_URL", "http://app.example.com", "https"),
        ("APP_BASE_URL", "https://app.example.com/sub?x=1", "no query"),
        ("APP_BASE_URL", "https://app.example.com/a%20b", "a path with characters"),
        ("AUTH_PREFIX", "auth", "must be a path such as /auth"),
        ("AUTH_PREFIX", "/elsewhere", "read once when the app is imported"),
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


# -- client authentication: a secret or a private key ---------------------------


def rsa_pem(bits: int = 2048) -> str:
    return RSAKey.generate_key(bits).as_pem(private=True).decode()


def test_a_private_key_can_replace_the_client_secret(env: pytest.MonkeyPatch) -> None:
    pem = rsa_pem()
    env.setenv("AUTH0_CLIENT_SECRET", "")  # as left blank in .env.example
    env.setenv("AUTH0_PRIVATE_KEY", pem.replace("\n", "\\n"))  # as some consoles store it
    env.setenv("AUTH0_PRIVATE_KEY_ID", "key-1")

    settings = load_settings()

    assert settings.auth0_client_secret is None
    key = settings.client_private_key
    assert isinstance(key, RSAKey) and key.is_private and key.kid == "key-1"
    assert key.as_pem(private=True).decode() == pem


def test_a_private_key_file_is_read_at_startup(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key = ECKey.generate_key("P-256")
    path = tmp_path / "key.pem"
    path.write_bytes(key.as_pem(private=True))
    env.delenv("AUTH0_CLIENT_SECRET")
    env.setenv("AUTH0_PRIVATE_KEY_FILE", str(path))

    loaded = load_settings().client_private_key

    assert isinstance(loaded, ECKey) and loaded.thumbprint() == key.thumbprint()


@pytest.mark.parametrize(
    ("key", "name", "complaint"),
    [
        ("none", "AUTH0_CLIENT_SECRET", "is not set"),
        ("both", "AUTH0_CLIENT_SECRET", "either a client secret or a private key, not both"),
        ("inline and file", "AUTH0_PRIVATE_KEY_FILE", "either AUTH0_PRIVATE_KEY or"),
        ("unparsable", "AUTH0_PRIVATE_KEY", "not an unencrypted PEM-encoded RSA or EC"),
        ("public", "AUTH0_PRIVATE_KEY", "is a public key"),
        ("small", "AUTH0_PRIVATE_KEY", "fewer than 2048 bits"),
        ("secp256k1", "AUTH0_PRIVATE_KEY", "unsupported curve"),
        ("missing file", "AUTH0_PRIVATE_KEY_FILE", "cannot be read"),
    ],
)
def test_client_authentication_problems_stop_startup(
    env: pytest.MonkeyPatch, tmp_path: Path, key: str, name: str, complaint: str
) -> None:
    pem = rsa_pem()
    if key == "none":
        env.delenv("AUTH0_CLIENT_SECRET")
    elif key == "both":
        env.setenv("AUTH0_PRIVATE_KEY", pem)
    elif key == "inline and file":
        (tmp_path / "key.pem").write_text(pem)
        env.setenv("AUTH0_PRIVATE_KEY", pem)
        env.setenv("AUTH0_PRIVATE_KEY_FILE", str(tmp_path / "key.pem"))
    elif key == "unparsable":
        pem = "-----BEGIN PRIVATE KEY-----\nTm90QUtleUF0QWxsU2VjcmV0\n-----END PRIVATE KEY-----\n"
        env.setenv("AUTH0_PRIVATE_KEY", pem)
    elif key == "public":
        env.setenv("AUTH0_PRIVATE_KEY", RSAKey.import_key(pem).as_pem(private=False).decode())
    elif key == "small":
        with pytest.warns(SecurityWarning):
            pem = rsa_pem(1024)
        env.setenv("AUTH0_PRIVATE_KEY", pem)
    elif key == "secp256k1":
        pem = ECKey.generate_key("secp256k1").as_pem(private=True).decode()
        env.setenv("AUTH0_PRIVATE_KEY", pem)
    else:
        env.setenv("AUTH0_PRIVATE_KEY_FILE", str(tmp_path / "missing.pem"))
    if key not in ("none", "both"):
        env.delenv("AUTH0_CLIENT_SECRET")

    with pytest.raises(ConfigurationError) as error:
        load_settings()

    message = str(error.value)
    [problem] = [line for line in message.splitlines() if line.startswith("  - ")]
    assert problem.startswith(f"  - {name}: ") and complaint in problem
    body = [line for line in pem.splitlines() if "-----" not in line]
    assert not any(line in message for line in body)  # keys never end up in logs


@pytest.mark.parametrize(
    "secret",
    [secrets.token_hex(16), secrets.token_urlsafe(32), secrets.token_urlsafe(48)],
    ids=["token_hex(16)", "token_urlsafe(32)", "token_urlsafe(48)"],  # the same on every run
)
def test_secrets_as_the_usual_commands_make_them_are_accepted(
    env: pytest.MonkeyPatch, secret: str
) -> None:
    env.setenv("SESSION_SECRET", secret)

    assert load_settings().session_secrets == [secret]


@pytest.mark.parametrize(
    ("base_url", "setting", "served"),
    [
        ("http://127.0.0.1:8000", None, True),
        ("https://app.example.com", None, False),
        ("https://app.example.com", "true", True),
        ("http://localhost:8000", "false", False),
    ],
)
def test_api_docs_are_served_in_development_only_unless_asked(
    env: pytest.MonkeyPatch, base_url: str, setting: str | None, served: bool
) -> None:
    env.setenv("APP_BASE_URL", base_url)
    if setting is not None:
        env.setenv("OPENAPI_DOCS", setting)

    with TestClient(create_app(load_settings())) as client:
        answers = [client.get(path).status_code for path in ("/docs", "/redoc", "/openapi.json")]

    assert answers == ([200, 200, 200] if served else [404, 404, 404])


@pytest.mark.parametrize("where", ["environment", ".env"])
def test_the_auth_prefix_setting_moves_the_routes(tmp_path: Path, where: str) -> None:
    """AUTH_PREFIX is read when the app is imported, from the environment or from `.env`."""
    env = {k: v for k, v in os.environ.items() if k != "AUTH_PREFIX"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    if where == ".env":
        (tmp_path / ".env").write_text("AUTH_PREFIX=/account/\n")
    else:
        env["AUTH_PREFIX"] = "/account/"
    code = "from app.auth import urls; print(urls.AUTH_PREFIX, urls.LOGIN_PATH)"

    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
        check=True,
    )  # fmt: skip

    assert result.stdout.split() == ["/account", "/account/login"]
