"""Address ranges of blocks, for "123 Oak St" searches. Read from the same GeoJSON that
carried the blocks, keyed by the town's segment id (source_id) so a re-import of the
streets keeps them. Field names default to the Esri/TIGER style Syracuse publishes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import asyncpg

RANGE_FIELDS = ("L_F_ADD", "L_T_ADD", "R_F_ADD", "R_T_ADD")


def _number(value: Any) -> int | None:
    """House numbers as published: float, int or text; 0 or blank means none."""
    try:
        n = int(float(value))
    except (TypeError, ValueError):
        return None
    return n if n > 0 else None


def address_rows(features: Iterable[Mapping[str, Any]], id_property: str,
                 fields: tuple[str, str, str, str] = RANGE_FIELDS
                 ) -> list[tuple[str, int | None, int | None, int | None, int | None]]:
    rows = []
    for feature in features:
        props = feature.get("properties") or {}
        source = props.get(id_property, feature.get("id"))
        if source is None:
            continue
        lf, lt, rf, rt = (_number(props.get(f)) for f in fields)
        # A side needs both ends; a block with neither side has no addresses.
        left = (lf, lt) if lf and lt else (None, None)
        right = (rf, rt) if rf and rt else (None, None)
        if left[0] or right[0]:
            rows.append((str(source), *left, *right))
    return rows


async def import_address_ranges(
    conn: asyncpg.Connection, town: int, features: Iterable[Mapping[str, Any]],
    id_property: str = "id", fields: tuple[str, str, str, str] = RANGE_FIELDS,
) -> int:
    """Replace the town's address ranges with those in ``features``; returns how many."""
    rows = address_rows(features, id_property, fields)
    async with conn.transaction():
        await conn.execute("DELETE FROM segment_addresses WHERE town_id = $1", town)
        await conn.copy_records_to_table(
            "segment_addresses", records=[(town, *r) for r in rows],
            columns=["town_id", "source_id", "left_from", "left_to", "right_from",
                     "right_to"])
    return len(rows)
