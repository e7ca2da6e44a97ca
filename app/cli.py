"""``plowshare`` command line. Each sub-command reads settings when it runs."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import asyncpg
from pydantic import ValidationError
from pydantic_settings import SettingsError

from app.errors import PlowshareError
from app.settings import Settings, load_settings

log = logging.getLogger("plowshare")


def _setting_error(exc: ValidationError | SettingsError) -> str:
    if isinstance(exc, SettingsError):
        return str(exc)
    return "; ".join(
        f"{exc.title} {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Database-free commands keep their own parsers (their CLI is a contract scripts use).
    if argv[:1] == ["coverage"]:
        from app import offline_coverage

        return offline_coverage.main(argv[1:])
    if argv[:1] == ["simulate"] and any(a == "--csv" or a.startswith("--csv=") for a in argv):
        from app import sim_offline

        return sim_offline.main(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except (ValidationError, SettingsError) as exc:
        # A setting from the environment (or .env) is wrong: say which, no traceback.
        print(f"plowshare: bad setting: {_setting_error(exc)}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.general.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        result: int = args.func(settings, args)
    except KeyboardInterrupt:
        return 130
    except (CliError, LookupError, PlowshareError) as exc:
        print(f"plowshare: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"plowshare: cannot reach a service: {exc}", file=sys.stderr)
        return 1
    except asyncpg.PostgresError as exc:
        hint = (" (is the database migrated? run `plowshare migrate`)"
                if isinstance(exc, asyncpg.UndefinedTableError) else "")
        print(f"plowshare: database error: {exc}{hint}", file=sys.stderr)
        return 1
    return result


class CliError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="plowshare", description=__doc__)
    sub = p.add_subparsers(required=True, metavar="COMMAND")

    m = sub.add_parser("migrate", help="apply pending database migrations")
    m.add_argument("--create-database", action="store_true",
                   help="create the database first if it does not exist")
    m.set_defaults(func=_migrate)

    s = sub.add_parser("serve", help="run the API and map server")
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.set_defaults(func=_serve)

    i = sub.add_parser("ingest", help="run an MQTT ingest worker")
    i.set_defaults(func=_ingest)

    t = sub.add_parser("towns", help="manage towns").add_subparsers(required=True,
                                                                    metavar="ACTION")
    ta = t.add_parser("add", help="add a town (or rename it)")
    ta.add_argument("slug")
    ta.add_argument("--name", required=True)
    ta.add_argument("--timezone", default="UTC")
    ta.set_defaults(func=_towns_add)
    tl = t.add_parser("list", help="list towns")
    tl.set_defaults(func=_towns_list)

    st = sub.add_parser("streets", help="street network").add_subparsers(required=True,
                                                                         metavar="ACTION")
    si = st.add_parser("import", help="import OSM (.osm.pbf/.osm[.gz]) or GeoJSON streets")
    si.add_argument("--town", required=True)
    si.add_argument("file", type=Path)
    si.add_argument("--split", action="store_true",
                    help="GeoJSON: features are whole streets; split them into blocks")
    si.add_argument("--id-property", help="GeoJSON: property holding the segment id")
    si.add_argument("--name-property", default="name",
                    help="GeoJSON: property holding the street name")
    si.set_defaults(func=_streets_import)
    sa = st.add_parser("addresses",
                       help="load address ranges (L_F_ADD, L_T_ADD, R_F_ADD, R_T_ADD) "
                            "from a GeoJSON of the town's segments")
    sa.add_argument("--town", required=True)
    sa.add_argument("file", type=Path)
    sa.add_argument("--id-property", default="id",
                    help="property holding the segment id used at import")
    sa.set_defaults(func=_streets_addresses)

    sm = sub.add_parser("storm", help="start or end a town's storm").add_subparsers(
        required=True, metavar="ACTION")
    ss = sm.add_parser("start", help="start a storm: status counts from now")
    ss.add_argument("--town", required=True)
    ss.add_argument("--name")
    ss.set_defaults(func=_storm_start)
    se = sm.add_parser("end", help="end the running storm")
    se.add_argument("--town", required=True)
    se.set_defaults(func=_storm_end)

    from app import cli_vehicles

    cli_vehicles.register(sub)

    rt = sub.add_parser("retention", help="drop raw pings older than N days now")
    rt.add_argument("--days", type=int, required=True)
    rt.set_defaults(func=_retention)

    sub.add_parser("coverage", add_help=False,
                   help="offline: which streets did these pings service? "
                        "(--streets FILE --pings CSV --out CSV; no database)")
    sim = sub.add_parser("simulate",
                         help="drive simulated plows and publish over MQTT "
                              "(with --csv: write pings + truth CSVs instead; no database)")
    sim.add_argument("--town", required=True)
    sim.add_argument("--vehicles", type=int, default=5)
    sim.add_argument("--interval", type=float, default=2.0, help="seconds between fixes")
    sim.add_argument("--speedup", type=float, default=1.0,
                     help="simulated seconds per real second")
    sim.add_argument("--duration", type=float, default=None,
                     help="simulated seconds to run (default: until stopped)")
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--state-dir", type=Path, default=None,
                     help="keep each device's buffer and sequence numbers here")
    sim.set_defaults(func=_simulate)

    d = sub.add_parser("demo", help="set up a demo town and run everything")
    d.add_argument("--osm", type=Path, required=True, help="street network of the town")
    d.add_argument("--town", default="kouvola")
    d.add_argument("--name", default="Kouvola")
    d.add_argument("--vehicles", type=int, default=8)
    # Real time by default: fixes then carry speeds a plow really drives, which the
    # coverage engine checks against the distance between fixes.
    d.add_argument("--speedup", type=float, default=1.0)
    d.set_defaults(func=_demo)
    return p


def _run(coro: Coroutine[Any, Any, int | None]) -> int:
    return int(asyncio.run(coro) or 0)


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from app.commands import migrate

    return _run(migrate(settings, create=args.create_database))


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from app.main import create_app

    server = settings.server
    uvicorn.run(
        create_app(settings),
        host=args.host or server.host,
        port=args.port if args.port is not None else server.port,
        # Deflate per websocket costs a lot of memory per client for small JSON frames.
        ws_per_message_deflate=False,
        proxy_headers=True,
        forwarded_allow_ips=server.forwarded_allow_ips,
        log_level=settings.general.log_level.lower(),
    )
    return 0


def _ingest(settings: Settings, _args: argparse.Namespace) -> int:
    from ingest.service import Ingester

    async def run() -> None:
        ingester = Ingester(settings)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, ingester.stop)
        await ingester.run()

    return _run(run())


def _towns_add(settings: Settings, args: argparse.Namespace) -> int:
    from app.commands import add_town

    return _run(add_town(settings, args.slug, args.name, args.timezone))


def _towns_list(settings: Settings, _args: argparse.Namespace) -> int:
    from app.commands import list_towns

    return _run(list_towns(settings))


def _streets_import(settings: Settings, args: argparse.Namespace) -> int:
    from app.commands import import_streets

    if not args.file.is_file():
        raise CliError(f"no such file: {args.file}")
    options: dict[str, Any] = {}
    if args.file.name.lower().endswith((".geojson", ".geojson.gz", ".json", ".json.gz")):
        options = {"split": args.split, "id_property": args.id_property,
                   "name_property": args.name_property}
    return _run(import_streets(settings, args.town, args.file, **options))


def _streets_addresses(settings: Settings, args: argparse.Namespace) -> int:
    from app.commands import import_addresses

    if not args.file.is_file():
        raise CliError(f"no such file: {args.file}")
    return _run(import_addresses(settings, args.town, args.file, args.id_property))


def _storm_start(settings: Settings, args: argparse.Namespace) -> int:
    from app.commands import storm

    return _run(storm(settings, args.town, start=True, name=args.name))


def _storm_end(settings: Settings, args: argparse.Namespace) -> int:
    from app.commands import storm

    return _run(storm(settings, args.town, start=False))


def _retention(settings: Settings, args: argparse.Namespace) -> int:
    from app.commands import retention

    if args.days < 1:
        raise CliError("--days must be at least 1")
    return _run(retention(settings, args.days))


def _simulate(settings: Settings, args: argparse.Namespace) -> int:
    from app.simulator import run_simulation

    return _run(run_simulation(settings, town=args.town, vehicles=args.vehicles,
                               interval_s=args.interval, speedup=args.speedup,
                               duration_s=args.duration, seed=args.seed,
                               state_dir=args.state_dir))


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from app.demo import run_demo

    if not args.osm.is_file():
        raise CliError(f"no such file: {args.osm}")
    return run_demo(settings, osm=args.osm, town=args.town, name=args.name,
                    vehicles=args.vehicles, speedup=args.speedup)
