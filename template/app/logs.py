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

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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
