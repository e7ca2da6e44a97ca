"""Tokens in URLs never reach the logs."""

from __future__ import annotations

import logging

import pytest

from app.logredact import RedactTokens


@pytest.mark.parametrize("args", [
    ('127.0.0.1:5 - "%s %s HTTP/1.1" %d',
     ("GET", "/api/devices/osmand?id=p1&token=pst_abc_S3cr3t&lat=1", 200)),
    ('%s - "WebSocket %s" [accepted]', ("127.0.0.1:6", "/ws/towns/kouvola?token=d1sp4tch")),
])
def test_token_values_are_redacted(args: tuple[str, tuple[object, ...]]) -> None:
    msg, values = args
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, msg, values, None)
    assert RedactTokens().filter(record)
    # uvicorn's access formatter unpacks the arguments: their shape must stay.
    assert isinstance(record.args, tuple) and len(record.args) == len(values)
    text = record.getMessage()
    assert "S3cr3t" not in text and "d1sp4tch" not in text and "token=[redacted]" in text
    assert "/api/devices/osmand" in text or "/ws/towns/kouvola" in text
