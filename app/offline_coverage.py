"""``plowshare coverage``: street coverage from a CSV of pings, offline, no database.

    plowshare coverage --streets STREETS --pings PINGS.csv --out COVERAGE.csv
                       [--min-fraction 0.8] [--set NAME=VALUE ...]

STREETS is an OSM file (.osm.pbf, .osm, .osm.gz) or GeoJSON. GeoJSON features are
taken as ready-made segments: LineStrings with an ``id`` (property or feature id),
optional ``name``, ``highway`` and ``oneway`` (yes/no/-1), joined where their end
points coincide and reported under their own id. OSM ways are cut into blocks.

PINGS.csv has a header with at least ``vehicle_id,time,lat,lon``; ``time`` is ISO
8601 (UTC; a time without offset is read as UTC) or epoch seconds. Optional columns:
``speed`` (m/s), ``heading`` (degrees), ``accuracy`` (m), ``plow`` and ``spreader``
(1/0). Rows may come in any order. A row with any unreadable field is reported on
stderr with its line number and skipped; the rest are still used.

COVERAGE.csv gets one row per segment:
``segment_id,covered,covered_fraction,passes,first_service,last_service`` with
covered 1/0, the fraction to 4 decimals and times as ISO 8601 UTC with a Z (empty
when never serviced).

``--set`` changes one of the matcher's settable knobs (``geo.matchtypes.SETTABLE``,
e.g. ``--set map_gap_m=0``), as a town can through the dispatcher API.

Exit status: 0 on success (also when some rows were skipped), 2 when an input file is
missing or unreadable, a required column is missing, or an argument is invalid.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from app.sim_csv import atomic_text
from app.streets.load import load_segments
from geo.coverage import SegmentCoverage, compute_coverage
from geo.matchtypes import SETTABLE, MatchConfig, Ping
from geo.network import Segment

REQUIRED = ("vehicle_id", "time", "lat", "lon")
OPTIONAL = ("speed", "heading", "accuracy", "plow", "spreader")
OUT_COLUMNS = (
    "segment_id",
    "covered",
    "covered_fraction",
    "passes",
    "first_service",
    "last_service",
)
# Listing every bad row of a badly broken file buries the summary; past this many the
# rest are only counted.
MAX_LISTED_BAD_ROWS = 100
# Epoch seconds beyond this (year 5138) are almost surely milliseconds.
_MAX_EPOCH_S = 1e11
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class InputError(Exception):
    """A problem with the whole input (exit status 2), not with one row."""


class RowError(ValueError):
    """One unreadable field; the row is skipped."""


@dataclass(slots=True)
class PingFile:
    pings: list[Ping]
    rows: int  # data rows seen (blank lines not counted)
    bad: list[tuple[int, str]]  # (line number, why)
    duplicates: int


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="plowshare coverage",
        description="Compute street coverage from a CSV of GPS pings (no database).",
    )
    parser.add_argument("--streets", required=True, type=Path, help=".osm.pbf, .osm[.gz], GeoJSON")
    parser.add_argument("--pings", required=True, type=Path, help="PINGS.csv")
    parser.add_argument("--out", required=True, type=Path, help="COVERAGE.csv to write")
    parser.add_argument(
        "--min-fraction",
        type=float,
        default=0.8,
        help="share of a segment one pass must cover to count as serviced (default 0.8)",
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", dest="changes",
        help=f"change a matcher setting ({', '.join(sorted(SETTABLE))}); repeatable",
    )
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage error already
        return int(exc.code or 0)
    try:
        config = _config(args.changes)
        return _run(args.streets, args.pings, args.out, args.min_fraction, sys.stderr, config)
    except InputError as exc:
        print(f"plowshare coverage: {exc}", file=sys.stderr)
        return 2


def _config(changes: Sequence[str]) -> MatchConfig:
    values: dict[str, object] = {}
    for item in changes:
        name, sep, text = item.partition("=")
        try:
            if not sep:
                raise ValueError("expected NAME=VALUE")
            values[name.strip()] = float(text)
        except ValueError as exc:
            raise InputError(f"--set {item}: {exc}") from exc
    try:
        return MatchConfig().changed(values)
    except ValueError as exc:
        raise InputError(f"--set: {exc}") from exc


def _run(streets: Path, pings_path: Path, out: Path, min_fraction: float, err: TextIO,
         config: MatchConfig | None = None) -> int:
    if not (0.0 < min_fraction <= 1.0):
        raise InputError(f"--min-fraction must be in (0, 1], got {min_fraction}")
    # Check every input before the slow work, so a typo fails in a second.
    for label, path in (("streets", streets), ("pings", pings_path)):
        if not path.is_file():
            raise InputError(f"{label} file {path} not found")
    if not out.parent.is_dir():
        raise InputError(f"output folder {out.parent} does not exist")
    parsed = read_pings(pings_path)
    segments = _load_streets(streets)

    for line, why in parsed.bad[:MAX_LISTED_BAD_ROWS]:
        print(f"{pings_path}:{line}: {why}; row skipped", file=err)
    if len(parsed.bad) > MAX_LISTED_BAD_ROWS:
        print(
            f"{pings_path}: {len(parsed.bad) - MAX_LISTED_BAD_ROWS} more bad rows not listed",
            file=err,
        )
    if not parsed.pings:
        print(f"{pings_path}: no usable pings; every segment is reported uncovered", file=err)

    coverage = compute_coverage(segments, parsed.pings, min_fraction=min_fraction, config=config)
    try:
        write_coverage_csv(segments, coverage, out)
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc}") from exc

    covered = [s for s in segments if _covered(coverage.get(s.source_id))]
    vehicles = len({p.vehicle for p in parsed.pings})
    bad = len(parsed.bad)
    notes = [f"{bad} bad row{'' if bad == 1 else 's'} skipped"] if bad else []
    if parsed.duplicates:
        notes.append(f"{parsed.duplicates} repeated vehicle/time rows ignored")
    print(
        f"{len(parsed.pings)} pings from {vehicles} vehicle{'' if vehicles == 1 else 's'}"
        + (f" ({'; '.join(notes)})" if notes else "")
        + f"; {len(covered)} of {len(segments)} segments covered "
        f"({sum(s.length_m for s in covered) / 1000:.1f} of "
        f"{sum(s.length_m for s in segments) / 1000:.1f} km) -> {out}",
        file=err,
    )
    return 0


def _covered(cov: SegmentCoverage | None) -> bool:
    return cov is not None and cov.covered


def _load_streets(path: Path) -> list[Segment]:
    try:
        segments = load_segments(path)
    except (OSError, ValueError, RuntimeError) as exc:
        # osmium reports unreadable files as RuntimeError, orjson/ours as ValueError.
        raise InputError(f"cannot read streets {path}: {exc}") from exc
    if not segments:
        raise InputError(f"streets {path}: no drivable street segments found")
    return segments


def read_pings(path: Path) -> PingFile:
    """Parse PINGS.csv into pings sorted by vehicle and time; bad rows are collected."""
    try:
        # utf-8-sig: spreadsheet exports often start with a byte-order mark, which
        # would otherwise turn the first column into "\ufeffvehicle_id".
        fh = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read pings {path}: {exc}") from exc
    with fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise InputError(f"pings {path} is empty; expected a header row") from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InputError(f"pings {path}: unreadable header: {exc}") from exc
        columns = [h.strip().lower() for h in header]
        missing = [c for c in REQUIRED if c not in columns]
        if missing:
            raise InputError(
                f"pings {path}: missing required column(s) {', '.join(missing)} "
                f"(header has: {', '.join(columns) or 'nothing'}; "
                f"need {','.join(REQUIRED)})"
            )
        repeated = sorted({c for c in columns if c and columns.count(c) > 1})
        if repeated:
            raise InputError(f"pings {path}: column(s) {', '.join(repeated)} appear twice")
        index = {c: i for i, c in enumerate(columns)}

        pings: list[tuple[Ping, int]] = []
        bad: list[tuple[int, str]] = []
        rows = 0
        line = reader.line_num
        while True:
            start = line + 1  # a record may span lines (quoted newlines): report its first
            try:
                row = next(reader)
            except StopIteration:
                break
            except (csv.Error, UnicodeDecodeError) as exc:
                line = reader.line_num
                rows += 1
                bad.append((start, f"unreadable CSV ({exc})"))
                continue
            line = reader.line_num
            if not row or all(not f.strip() for f in row):
                continue
            rows += 1
            try:
                pings.append((_ping(row, index, len(columns)), start))
            except RowError as exc:
                bad.append((start, str(exc)))

    # Rows may come in any order; the matcher needs each vehicle's track in time order.
    pings.sort(key=lambda pl: (pl[0].vehicle, pl[0].t, pl[1]))
    out: list[Ping] = []
    duplicates = 0
    for ping, _line in pings:
        if out and out[-1].vehicle == ping.vehicle and out[-1].t == ping.t:
            # Trackers resend on reconnect; a second fix at the same instant adds
            # nothing and would make a zero-length step.
            duplicates += 1
            continue
        out.append(ping)
    return PingFile(out, rows, sorted(bad), duplicates)


def _ping(row: Sequence[str], index: Mapping[str, int], width: int) -> Ping:
    if len(row) != width:
        raise RowError(f"{len(row)} fields, header has {width}")

    def field(name: str) -> str:
        i = index.get(name)
        return "" if i is None else row[i].strip()

    vehicle = field("vehicle_id")
    if not vehicle:
        raise RowError("empty vehicle_id")
    lat = _number(field("lat"), "lat")
    lon = _number(field("lon"), "lon")
    if not -90.0 <= lat <= 90.0:
        raise RowError(f"lat {lat} outside -90..90")
    if not -180.0 <= lon <= 180.0:
        raise RowError(f"lon {lon} outside -180..180")
    speed = _optional_number(field("speed"), "speed")
    if speed is not None and speed < 0:
        raise RowError(f"negative speed {speed}")
    heading = _optional_number(field("heading"), "heading")
    accuracy = _optional_number(field("accuracy"), "accuracy")
    if accuracy is not None and accuracy < 0:
        raise RowError(f"negative accuracy {accuracy}")
    return Ping(
        vehicle=vehicle,
        t=parse_time(field("time")),
        lon=lon,
        lat=lat,
        speed_mps=speed,
        heading_deg=None if heading is None else heading % 360.0,
        accuracy_m=accuracy,
        plow=_flag(field("plow"), "plow"),
        spreader=_flag(field("spreader"), "spreader"),
    )


def parse_time(text: str) -> float:
    """Epoch seconds from ISO 8601 (offset-less means UTC) or a plain epoch number."""
    if not text:
        raise RowError("empty time")
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value) or value < 0:
            raise RowError(f"bad time {text!r}")
        if value > _MAX_EPOCH_S:
            raise RowError(f"time {text!r} too large for epoch seconds (milliseconds?)")
        return value
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise RowError(f"bad time {text!r} (expected ISO 8601 UTC or epoch seconds)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def format_time(epoch_s: float | None) -> str:
    if epoch_s is None:
        return ""
    when = datetime.fromtimestamp(epoch_s, UTC)
    if when.microsecond:
        return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _number(text: str, name: str) -> float:
    if not text:
        raise RowError(f"empty {name}")
    try:
        value = float(text)
    except ValueError:
        raise RowError(f"bad {name} {text!r}") from None
    if not math.isfinite(value):
        raise RowError(f"bad {name} {text!r}")
    return value


def _optional_number(text: str, name: str) -> float | None:
    return None if not text else _number(text, name)


def _flag(text: str, name: str) -> bool | None:
    if not text:
        return None
    low = text.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise RowError(f"bad {name} {text!r} (expected 1 or 0)")


def write_coverage_csv(
    segments: Sequence[Segment], coverage: Mapping[str, SegmentCoverage], path: Path
) -> None:
    """One row per segment in network order; segments the engine skipped are uncovered."""
    with atomic_text(path) as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(OUT_COLUMNS)
        for seg in segments:
            cov = coverage.get(seg.source_id)
            if cov is None:
                out.writerow([seg.source_id, 0, "0.0000", 0, "", ""])
                continue
            out.writerow(
                [
                    seg.source_id,
                    1 if cov.covered else 0,
                    f"{cov.covered_fraction:.4f}",
                    cov.passes,
                    format_time(cov.first_service),
                    format_time(cov.last_service),
                ]
            )


if __name__ == "__main__":
    sys.exit(main())
