"""Locate the shared real-data folder for the geo tests.

Tests fail (never skip) without it: a skipped real-data test looks green in CI while
testing nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_DEFAULT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def shared_data(*parts: str) -> Path:
    root = Path(os.environ.get("PLOWSHARE_SHARED_DATA", _DEFAULT)).resolve()
    path = root.joinpath(*parts)
    if not path.exists():
        pytest.fail(
            f"shared test data {path} not found; set PLOWSHARE_SHARED_DATA to the folder "
            "holding osm/, gps-truth/ and plow/ (default: ../shared/data next to the repo)",
            pytrace=False,
        )
    return path
