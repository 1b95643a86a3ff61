"""Your app's settings: the auth code's (app/auth/settings.py) and your own.

Every setting is an environment variable of the same name in upper case (or a line
of `.env`). Add yours to `Settings`, e.g. `orders_api_url: str = "https://..."`; a
missing or invalid value stops the app at startup with a message naming it.
"""

from functools import lru_cache

from app.auth.settings import AuthSettings, ConfigurationError
from app.auth.settings import load_settings as load


class Settings(AuthSettings):
    """The app's settings. Template updates never change this class."""


def load_settings() -> Settings:
    """The settings from the environment and `.env`, or ConfigurationError."""
    return load(Settings)


@lru_cache
def get_settings() -> Settings:
    return load_settings()


__all__ = ["ConfigurationError", "Settings", "get_settings", "load_settings"]
