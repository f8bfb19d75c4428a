"""Benchmark the ledger: a full rebuild and a one-day incremental run, against a floor.

Generates N batteries x D days of 15-minute readings in a throw-away embedded cluster and
measures, in the same run:
  floor       COPY of the same readings into a table plus one window SUM over them
  full        `dbt run --full-refresh`: raw readings through every mart
  incremental one more day of readings, then `dbt run`, on a 30-day and a D-day history
Prints rows/s and ratios and writes benchmarks/results/ledger.json.

    .venv/bin/python benchmarks/ledger.py                    # the targets: 1000 x 365
    .venv/bin/python benchmarks/ledger.py --batteries 50 --days 30   # a quick look
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from report import write_report
from rich.console import Console
from sqlalchemy import create_engine, text

from vbatt.ledger.dbt_runner import run_dbt
from vbatt.warehouse import embedded
from vbatt.warehouse.migrate import migrate

console = Console()
START = datetime(2025, 1, 1, tzinfo=UTC)
RESULTS = Path(__file__).parent / "results" / "ledger.json"

# Deterministic PV households: sun between 06:00 and 18:00 UTC, load all day, a per-meter
# size and a per-day cloudiness. Registers are running sums of the netted energies.
ENERGY = """
    greatest(0, sin(2 * pi() * ((k % 96) / 96.0 - 0.25)))
        * (0.35 + 0.2 * sin(m)) * (0.6 + 0.4 * cos((k / 96) * 0.9 + m))
    - (0.06 + 0.04 * (1 + sin(k * 0.7 + m)))
"""


def readings_sql(
    raw: str, load_id: int, meters: int, k_from: int, k_to: int, seed_from: str
) -> str:
    return f"""
        insert into {raw}.meter_readings (meter_id, ts, import_kwh, export_kwh, source, load_id)
        select 'BM' || lpad(m::text, 5, '0'),
               timestamptz '{START.isoformat()}' + k * interval '15 minutes',
               base.import_kwh + sum(greatest(-e.net, 0)) over w,
               base.export_kwh + sum(greatest(e.net, 0)) over w,
               'benchmark', {load_id}
        from generate_series(1, {meters}) as m
        cross join generate_series({k_from}, {k_to}) as k
        cross join lateral (select {ENERGY} as net) as e
        cross join lateral ({seed_from}) as base
        window w as (partition by m order by k rows unbounded preceding)
    """


@contextmanager
def timed(label: str, results: dict, rows: int | None = None):
    started = time.perf_counter()
    with console.status(label):
        yield
    seconds = time.perf_counter() - started
    results[label] = {"seconds": round(seconds, 3)}
    if rows:
        results[label]["rows_per_s"] = round(rows / seconds)
    rate = f", {rows / seconds:,.0f} rows/s" if rows else ""
    console.log(f"{label}: {seconds:.1f} s{rate}")


def model_timings(target: Path) -> dict[str, float]:
    """Seconds per model of the last dbt run, from its run_results.json."""
    results = json.loads((target / "run_results.json").read_text())
    return {
        r["unique_id"].rsplit(".", 1)[-1]: round(r["execution_time"], 2) for r in results["results"]
    }


def new_load(conn, raw: str) -> int:
    return conn.execute(
        text(f"insert into {raw}.loads (source) values ('benchmark') returning load_id")
    ).scalar_one()


def setup_history(engine, url, schema: str, meters: int, days: int, target: Path) -> int:
    raw = f"{schema}_raw"
    migrate(engine, raw)
    intervals = days * 96
    with engine.begin() as conn:
        load_id = new_load(conn, raw)
        conn.execute(
            text(
                readings_sql(
                    raw,
                    load_id,
                    meters,
                    0,
                    intervals,
                    "select 1000.0 as import_kwh, 500.0 as export_kwh",
                )
            )
        )
        conn.execute(
            text(f"""
            insert into {raw}.batteries (battery_id, name, partner_id, customer_id, meter_id,
                capacity_kwh, start_date, reset_date, timezone)
            select 'BB' || lpad(m::text, 5, '0'), 'Battery ' || m, 'P' || (m % 2),
                   'C' || m, 'BM' || lpad(m::text, 5, '0'),
                   (array[0, 5, 10, 2.5])[1 + m % 4], date '2025-01-01',
                   case when m % 3 = 0 then date '2025-07-01' end, 'Europe/Zurich'
            from generate_series(1, {meters}) as m
        """)
        )
        conn.execute(text(f"analyze {raw}.meter_readings"))
    return intervals * meters


def add_day(engine, schema: str, meters: int, days: int) -> int:
    raw = f"{schema}_raw"
    k0 = days * 96
    seed = (
        f"select r.import_kwh, r.export_kwh from {raw}.meter_readings r where r.meter_id ="
        f" 'BM' || lpad(m::text, 5, '0') order by r.ts desc limit 1"
    )
    with engine.begin() as conn:
        load_id = new_load(conn, raw)
        conn.execute(text(readings_sql(raw, load_id, meters, k0 + 1, k0 + 96, seed)))
    return 96 * meters


def floor(engine, schema: str, rows: int, results: dict) -> float:
    raw = f"{schema}_raw"
    with tempfile.TemporaryDirectory() as tmp:
        dump = Path(tmp) / "readings.csv"
        with engine.connect() as conn:
            cursor = conn.connection.dbapi_connection.cursor()
            with dump.open("w") as handle:
                cursor.copy_expert(
                    f"copy (select meter_id, ts, import_kwh, export_kwh from {raw}.meter_readings)"
                    " to stdout with (format csv)",
                    handle,
                )
        with engine.begin() as conn:
            conn.execute(
                text(
                    "create table bench_floor (meter_id text, ts timestamptz,"
                    " import_kwh float8, export_kwh float8)"
                )
            )
        with timed("floor: COPY", results, rows), engine.begin() as conn, dump.open() as handle:
            cursor = conn.connection.dbapi_connection.cursor()
            cursor.copy_expert("copy bench_floor from stdin with (format csv)", handle)
    with timed("floor: window SUM", results, rows), engine.begin() as conn:
        conn.execute(
            text(
                "create table bench_floor_sum as select meter_id, ts, sum(import_kwh)"
                " over (partition by meter_id order by ts) as s from bench_floor"
            )
        )
    with engine.begin() as conn:
        conn.execute(text("drop table bench_floor, bench_floor_sum"))
    return results["floor: COPY"]["seconds"] + results["floor: window SUM"]["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batteries", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--short-days", type=int, default=30)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="vbatt-bench-"))
    url = embedded.start(data_dir)
    engine = create_engine(url)
    results: dict = {}
    try:
        with tempfile.TemporaryDirectory() as target:
            target = Path(target)
            rows = setup_history(engine, url, "bench", args.batteries, args.days, target)
            console.log(f"{args.batteries} batteries x {args.days} days = {rows:,} intervals")
            floor_s = floor(engine, "bench", rows, results)
            with timed("full rebuild", results, rows):
                run_dbt(
                    ["run", "--full-refresh"],
                    url=url,
                    schema="bench",
                    raw_schema="bench_raw",
                    target_dir=target,
                )
            results["full rebuild"]["models"] = model_timings(target)
            with timed(
                f"incremental day on {args.days}-day history",
                results,
                add_day(engine, "bench", args.batteries, args.days),
            ):
                run_dbt(["run"], url=url, schema="bench", raw_schema="bench_raw", target_dir=target)
            results[f"incremental day on {args.days}-day history"]["models"] = model_timings(target)

            setup_history(engine, url, "short", args.batteries, args.short_days, target)
            run_dbt(
                ["run", "--full-refresh"],
                url=url,
                schema="short",
                raw_schema="short_raw",
                target_dir=target,
            )
            with timed(
                f"incremental day on {args.short_days}-day history",
                results,
                add_day(engine, "short", args.batteries, args.short_days),
            ):
                run_dbt(["run"], url=url, schema="short", raw_schema="short_raw", target_dir=target)
            results[f"incremental day on {args.short_days}-day history"]["models"] = model_timings(
                target
            )
    finally:
        engine.dispose()
        embedded.stop(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)  # tens of GB at full size

    full_s = results["full rebuild"]["seconds"]
    long_inc = results[f"incremental day on {args.days}-day history"]["seconds"]
    short_inc = results[f"incremental day on {args.short_days}-day history"]["seconds"]
    summary = {
        "batteries": args.batteries,
        "days": args.days,
        "intervals": rows,
        "floor_seconds": round(floor_s, 3),
        "full_rebuild_seconds": full_s,
        "full_over_floor": round(full_s / floor_s, 2),
        "incremental_seconds": long_inc,
        "incremental_long_over_short": round(long_inc / short_inc, 2),
        "targets": {
            "full_over_floor": 3.0,
            "full_rebuild_seconds": 300,
            "incremental_seconds": 15,
            "incremental_long_over_short": 1.3,
        },
    }
    write_report(args.out, summary, console, steps=results)


if __name__ == "__main__":
    main()
