"""Write simulated drives as the offline coverage CLI's PINGS.csv, and their truth.

The pings file is exactly what ``plowshare coverage --pings`` reads (see
``app.offline_coverage``), so a simulated storm can be replayed offline and scored
against the truth file without a database.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from geo.simulate import SimFix
from geo.truth import TrueCoverage

PING_COLUMNS = ("vehicle_id", "time", "lat", "lon", "speed", "heading")


def iso_utc(when: datetime) -> str:
    """ISO 8601 in UTC with a Z; milliseconds only when the time has a fraction."""
    when = when.astimezone(UTC)
    if when.microsecond:
        return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@contextmanager
def atomic_text(path: Path) -> Iterator[IO[str]]:
    """Write to a temporary file beside ``path`` and rename it into place on success.

    A crash or a bad row half-way never leaves a truncated CSV that a later step would
    read as a complete, smaller storm.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_pings_csv(
    fixes_by_vehicle: Mapping[str, Sequence[SimFix]],
    path: Path,
    *,
    with_plow: bool = True,
) -> int:
    """Write all vehicles' fixes, interleaved in time order as a live feed would deliver them.

    Columns: vehicle_id,time,lat,lon,speed,heading[,plow]; speed in m/s, heading in
    degrees, plow 1/0. Returns the number of rows written.
    """
    rows = sorted(
        ((f.time, vehicle, f) for vehicle, fixes in fixes_by_vehicle.items() for f in fixes),
        key=lambda r: (r[0], r[1]),
    )
    header = [*PING_COLUMNS, "plow"] if with_plow else list(PING_COLUMNS)
    with atomic_text(path) as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(header)
        for when, vehicle, f in rows:
            row = [
                vehicle,
                iso_utc(when),
                f"{f.lat:.7f}",
                f"{f.lon:.7f}",
                f"{f.speed_mps:.2f}",
                f"{f.heading_deg:.1f}",
            ]
            if with_plow:
                row.append("1" if f.plow else "0")
            out.writerow(row)
    return len(rows)


def write_truth_csv(truth: Mapping[str, TrueCoverage], path: Path) -> int:
    """segment_id,true_fraction,serviced (1/0; empty when too close to call)."""
    with atomic_text(path) as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(["segment_id", "true_fraction", "serviced"])
        for sid, t in truth.items():
            serviced = "" if t.serviced is None else ("1" if t.serviced else "0")
            out.writerow([sid, f"{t.fraction:.4f}", serviced])
    return len(truth)
