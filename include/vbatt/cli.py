"""The ``vbatt`` command: everything a DAG does can be run and debugged by hand."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from vbatt.csv_inputs import InputFileError

console = Console(width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True)

EXIT_BAD_INPUT = 2


def _warehouse(args: argparse.Namespace) -> int:
    from vbatt.settings import get_settings
    from vbatt.warehouse import embedded

    settings = get_settings()
    if args.action == "url":
        print(embedded.warehouse_url(start_embedded=not settings.embedded or embedded.is_running()))
        return 0
    if not settings.embedded:
        console.print(f"WAREHOUSE_URL is set: the warehouse is external ({args.action} does nothing)")
        return 0
    if args.action == "up":
        url = embedded.start()
        from vbatt.warehouse.db import get_engine
        from vbatt.warehouse.migrate import migrate

        applied = migrate(get_engine(url))
        console.print(f"warehouse running in {settings.warehouse_dir}")
        if applied:
            console.print(f"migrations applied: {', '.join(applied)}")
        console.print(f"url: {url}")
    elif args.action == "down":
        stopped = embedded.stop()
        console.print("warehouse stopped" if stopped else "warehouse was not running")
    elif args.action == "status":
        running = embedded.is_running()
        console.print(f"warehouse in {settings.warehouse_dir}: {'running' if running else 'stopped'}")
        return 0 if running else 1
    return 0


def _summary_table(rows: list[dict]) -> Table:
    table = Table(title="Battery summary (kWh)")
    for column in ("battery", "capacity", "intervals", "estimated", "charged", "discharged",
                   "overflow", "shortfall", "forfeited", "level"):
        table.add_column(column, justify="left" if column == "battery" else "right")
    for r in rows:
        capacity = "unlimited" if r["capacity_kwh"] == 0 else f"{r['capacity_kwh']:.1f}"
        table.add_row(
            r["battery_id"], capacity, f"{r['intervals']:,}", f"{r['estimated_intervals']:,}",
            *(f"{r[c]:.3f}" for c in ("charged_total_kwh", "discharged_total_kwh",
                                       "overflow_total_kwh", "shortfall_total_kwh",
                                       "forfeited_total_kwh", "level_kwh")),
        )
    return table


def _simulate(args: argparse.Namespace) -> int:
    from vbatt.simulate import simulate
    from vbatt.warehouse.db import get_engine
    from vbatt.warehouse.embedded import warehouse_url

    with console.status("starting") as status:
        def step(message: str) -> None:
            status.update(message)
            console.log(message)

        url = warehouse_url()
        result = simulate(get_engine(url), url, Path(args.readings), Path(args.batteries),
                          Path(args.out), step=step, keep_schema=args.keep_schema)
    console.print(_summary_table(result.summary))
    console.print(f"wrote {result.intervals_csv} and {result.daily_csv}")
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from vbatt.warehouse.db import get_engine
    from vbatt.warehouse.migrate import migrate

    applied = migrate(get_engine())
    console.print(f"applied: {', '.join(applied)}" if applied else "raw layer is up to date")
    return 0


def _dbt(args: argparse.Namespace) -> int:
    from vbatt.transform import run_dbt
    from vbatt.warehouse.embedded import warehouse_url

    run_dbt(args.dbt_args, url=warehouse_url(), capture=False)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vbatt", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    wh = sub.add_parser("warehouse", help="the embedded PostgreSQL warehouse")
    wh.add_argument("action", choices=["up", "down", "status", "url"])
    wh.set_defaults(func=_warehouse)

    mig = sub.add_parser("migrate", help="apply pending migrations of the raw layer")
    mig.set_defaults(func=_migrate)

    sim = sub.add_parser("simulate", help="compute batteries for a readings CSV, offline")
    sim.add_argument("--readings", required=True, help="CSV: meter_id,timestamp,import_kwh,export_kwh")
    sim.add_argument("--batteries", required=True, help="CSV of battery configurations")
    sim.add_argument("--out", required=True, help="folder for battery_intervals.csv and battery_daily.csv")
    sim.add_argument("--keep-schema", action="store_true", help="keep the isolated schemas to query")
    sim.set_defaults(func=_simulate)

    dbt = sub.add_parser("dbt", help="run dbt against the warehouse, e.g. vbatt dbt build")
    dbt.add_argument("dbt_args", nargs=argparse.REMAINDER)
    dbt.set_defaults(func=_dbt)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except InputFileError as exc:
        err.print(f"[red]The input was refused; nothing was written.[/red]\n{exc}", highlight=False)
        return EXIT_BAD_INPUT
    except FileNotFoundError as exc:
        err.print(f"[red]{exc.strerror}: {exc.filename}[/red]")
        return EXIT_BAD_INPUT
    except Exception as exc:  # noqa: BLE001 - a person reads this, not a traceback
        from vbatt.transform import DbtError
        from vbatt.warehouse.embedded import WarehouseError

        if isinstance(exc, DbtError | WarehouseError):
            err.print(f"[red]{exc}[/red]", highlight=False)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
