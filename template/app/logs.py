"""Log lines you can see: the app's loggers (`app`, `app.auth`, yours under `app.`) write
to stderr with time, level and logger name, as text or as JSON lines (`LOG_FORMAT=json`,
for log collectors), at `LOG_LEVEL` (default INFO: every login, logout, refresh and
refused request).

`create_app` installs this unless logging is configured already (uvicorn's
`--log-config`, or your own `logging.config.dictConfig(...)` before the app is built):
then nothing here changes it.
"""

import json
import logging
from typing import Literal
from urllib.parse import unquote_plus

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Query parameters whose values stay out of the access log: an authorization code that a
# failed login left unused still works (with its PKCE verifier), and so on.
SECRET_PARAMS = frozenset(
    {
        *("code", "connect_code", "state", "session_state", "sid", "request_uri"),
        *("id_token_hint", "logout_token", "invitation", "login_hint"),
    }
)


class JsonLines(logging.Formatter):
    """One JSON object per line: time (ISO 8601), level, logger, message."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(level: str = "INFO", form: Literal["text", "json"] = "text") -> None:
    """Send the `app` loggers' records to stderr, unless logging is set up elsewhere."""
    logger = logging.getLogger("app")
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines() if form == "json" else logging.Formatter(TEXT_FORMAT))
    logger.addHandler(handler)
    logger.setLevel(level)


class RedactedQueries(logging.Filter):
    """uvicorn's access log lines (`"GET /auth/callback?code=... HTTP/1.1" 303`) without
    the values of `SECRET_PARAMS`."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) > 2 and "?" in str(args[2]):
            record.args = (*args[:2], redact_query(str(args[2])), *args[3:])
        return True


def redact_query(target: str) -> str:
    """`/path?code=abc&x=1` as `/path?code=[redacted]&x=1`."""
    path, _, query = target.partition("?")
    pairs = query.split("&")
    kept = [
        f"{pair.partition('=')[0]}=[redacted]"
        if "=" in pair and unquote_plus(pair.partition("=")[0]) in SECRET_PARAMS
        else pair
        for pair in pairs
    ]
    return f"{path}?{'&'.join(kept)}"


def redact_access_log() -> None:
    """Install `RedactedQueries` on uvicorn's access logger (once)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactedQueries) for f in access.filters):
        access.addFilter(RedactedQueries())
