"""The one place identifiers are quoted. Values never are: they go as $n parameters."""

from __future__ import annotations


def quote_ident(name: str) -> str:
    if not name or "\x00" in name:
        raise ValueError("invalid SQL identifier")
    return '"' + name.replace('"', '""') + '"'
