"""Keep secrets that travel in URLs out of the logs. OsmAnd / Traccar Client can only be
given a URL, so device tokens arrive as ?token=; so does the dispatcher's websocket token.
uvicorn logs request lines (and websocket handshakes) with their query strings."""

from __future__ import annotations

import logging
import re

_TOKEN = re.compile(r"(token=)[^&\s\"']+", re.IGNORECASE)
LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn")


def _redact(value: object) -> object:
    return _TOKEN.sub(r"\1[redacted]", value) if isinstance(value, str) else value


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # Redact inside the arguments, keeping their shape: uvicorn's access formatter
        # unpacks them (client, method, path, version, status).
        if isinstance(record.args, tuple):
            record.args = tuple(_redact(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redact(v) for k, v in record.args.items()}
        record.msg = _redact(record.msg)
        return True


def install() -> None:
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
