"""Keep secrets that travel in URLs out of the logs. OsmAnd / Traccar Client can only be
given a URL, so device tokens arrive as ?token=; so does the dispatcher's websocket token.
uvicorn logs request lines (and websocket handshakes) with their query strings."""

from __future__ import annotations

import logging
import re

_TOKEN = re.compile(r"(token=)[^&\s\"']+", re.IGNORECASE)
LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn")


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _TOKEN.sub(r"\1[redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def install() -> None:
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
