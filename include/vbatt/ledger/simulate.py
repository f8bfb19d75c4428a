"""``vbatt simulate``: what would a battery have done for these readings?

Partners size offers with it. Both CSV files are checked completely before anything is
written; then they are loaded into an isolated pair of schemas, the same dbt models as
production compute the ledger, and the two result files are written atomically: each in
parts side by side (one session per range of batteries, ``_copy_out``), joined in order.

A big simulation is computed in slices side by side (``vbatt.ledger.slices``): each slice
gets its own raw schema with its meters' readings and its batteries, dbt runs once per
slice at the same time, and views in the simulation's marts schema put the slices
together again, so the files (and a kept schema) read as from one run.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, text

from vbatt.ingest.csv_inputs import InputFileError, read_batteries_csv
from vbatt.ingest.csv_stage import (
    STAGED,
    copy_readings_csv,
    estimate_rows,
    stage_readings_csv,
)
from vbatt.ingest.shards import plan_shards
from vbatt.ledger.dbt_runner import run_dbt
from vbatt.ledger.slices import Slice, default_slices, plan_slices
from vbatt.warehouse.loader import (
    append_staged_readings,
    begin_load,
    copy_readings_into_raw,
    copy_stored_readings,
    finish_load,
    is_big_load,
    upsert_batteries,
)
from vbatt.warehouse.migrate import migrate

# kWh to nine decimals, as round(x::numeric, 9) prints it. That conversion (PostgreSQL
# prints the double to 15 digits and parses them) was most of the files' cost; about two
# values in three of a simulation are exactly zero (no charge while discharging, no
# overflow, nothing forfeited), and those take the constant instead: the same bytes
# (negative zero too: numeric has none), a third of the conversions (docs/scaling.md).
KWH = "case when {col} = 0 then 0.000000000 else round({col}::numeric, 9) end"
INTERVALS_QUERY = """
select battery_id,
       to_char(interval_start at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') as interval_start,
       {import_kwh} as import_kwh, {export_kwh} as export_kwh,
       {charge_kwh} as charge_kwh, {discharge_kwh} as discharge_kwh,
       {overflow_kwh} as overflow_kwh, {shortfall_kwh} as shortfall_kwh,
       {forfeited_kwh} as forfeited_kwh, {level_kwh} as level_kwh,
       case when estimated then 'true' else 'false' end as estimated
from {schema}_marts.battery_intervals
{where}
order by battery_id, battery_intervals.interval_start
"""
DAILY_QUERY = """
select battery_id, local_date as date,
       {charge_kwh} as charge_kwh, {discharge_kwh} as discharge_kwh,
       {overflow_kwh} as overflow_kwh, {shortfall_kwh} as shortfall_kwh,
       {forfeited_kwh} as forfeited_kwh, {level_end_kwh} as level_end_kwh,
       {level_min_kwh} as level_min_kwh, {level_max_kwh} as level_max_kwh,
       intervals, estimated_intervals
from {schema}_marts.battery_daily
{where}
order by battery_id collate "C", local_date
"""
SUMMARY_QUERY = """
select battery_id, capacity_kwh, intervals, estimated_intervals, charged_total_kwh,
       discharged_total_kwh, overflow_total_kwh, shortfall_total_kwh, forfeited_total_kwh,
       level_kwh
from {schema}_marts.battery_registers order by battery_id collate "C"
"""
KWH_COLUMNS = (
    "import_kwh export_kwh charge_kwh discharge_kwh overflow_kwh shortfall_kwh forfeited_kwh"
    " level_kwh level_end_kwh level_min_kwh level_max_kwh"
).split()


@dataclass
class SimulationResult:
    intervals_csv: Path
    daily_csv: Path
    summary: list[dict]


def _query(template: str, schema: str, where: str = "") -> str:
    return template.format(
        schema=schema, where=where, **{c: KWH.format(col=c) for c in KWH_COLUMNS}
    )


def _battery_ranges(engine: Engine, schema: str, parts: int) -> list[str]:
    """``parts`` where-clauses, one per shard of the batteries (``plan_shards``: consecutive
    ranges in byte order); one clause if few batteries. The ranges are cut at the shards'
    last ids and the first and last are open, so together they take every id, whichever
    table an id is in. They compare in collation "C", the files' order: the ledger's ids
    are in it, but ``battery_daily``'s and ``battery_registers``' are in the database's
    (their contracts' text), which on a server set up with another locale orders
    differently; compared in that, byte-order cuts could give an id to two parts."""
    with engine.connect() as conn:
        ids = list(
            conn.execute(text(f"select battery_id from {schema}_marts.battery_registers")).scalars()
        )
        shards = plan_shards(ids, max(1, -(-len(ids) // parts)))
        if len(shards) < 2:
            return [""]
        cursor = conn.connection.dbapi_connection.cursor()
        cuts = [cursor.mogrify("%s", (s.last,)).decode() for s in shards[:-1]]
    pairs = zip(cuts, cuts[1:], strict=False)
    key = 'battery_id collate "C"'
    middle = [f"where {key} > {a} and {key} <= {b}" for a, b in pairs]
    return [f"where {key} <= {cuts[0]}", *middle, f"where {key} > {cuts[-1]}"]


# Each part reads its batteries' rows in the files' order through the marts' indexes, in
# its own session: the parts are the parallelism. Left to itself the planner sorts the
# formatted rows of a big simulation in parallel workers instead (measured at 200 x 365,
# three batteries per meter: 40 s in two parts that way, 30 s through the indexes).
IN_INDEX_ORDER = (
    "set local max_parallel_workers_per_gather = 0",
    "set local enable_sort = off",
)


def _copy_out(engine: Engine, queries: list[str], destination: Path) -> None:
    """COPY the queries' rows, one connection each at the same time (the server formats
    the numbers on as many cores), into temporary files beside the destination; then the
    parts are joined in order (the header from the first) and renamed: the file is the
    bytes one COPY would write, and never half-written."""
    temps: list[str] = []

    def copy_part(k: int) -> None:
        header = ", header" if k == 0 else ""
        with open(temps[k], "w", newline="") as handle, engine.connect() as conn:
            cursor = conn.connection.dbapi_connection.cursor()
            for setting in IN_INDEX_ORDER:
                cursor.execute(setting)
            cursor.copy_expert(f"copy ({queries[k]}) to stdout with (format csv{header})", handle)

    try:
        for k in range(len(queries)):  # inside the try: a part made before a failure goes too
            fd, name = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.{k}.")
            os.close(fd)
            temps.append(name)
        with ThreadPoolExecutor(max_workers=len(queries)) as pool:
            for done in [pool.submit(copy_part, k) for k in range(len(queries))]:
                done.result()
        with open(temps[0], "ab") as out:
            for part in temps[1:]:
                with open(part, "rb") as handle:
                    shutil.copyfileobj(handle, out, 1 << 20)
        os.replace(temps[0], destination)
    finally:
        for part in temps:
            Path(part).unlink(missing_ok=True)


def stored_meters(conn: Connection, raw_schema: str) -> set[str]:
    """The meters of the simulation's readings (for checking the batteries file against
    them): one step down the identity index per meter, not a pass over every reading."""
    return set(
        conn.execute(
            text(
                "with recursive meters as ("
                f" select min(meter_id) as meter_id from {raw_schema}.meter_readings"
                " union all select (select min(meter_id)"
                f" from {raw_schema}.meter_readings m where m.meter_id > meters.meter_id)"
                " from meters where meters.meter_id is not null"
                ") select meter_id from meters where meter_id is not null"
            )
        ).scalars()
    )


SUFFIXES = ("_raw", "", "_staging", "_intermediate", "_marts")


def slice_schema(schema: str, index: int) -> str:
    return f"{schema}_s{index}"


def drop_schemas(engine: Engine, schema: str) -> None:
    """The simulation's schemas, its slices' included."""
    with engine.begin() as conn:
        slices = conn.execute(
            text("select nspname from pg_namespace where nspname ~ :pattern order by 1"),
            {"pattern": f"^{schema}_s[0-9]+({'|'.join(SUFFIXES)})$"},
        ).scalars()
        for name in [*(f"{schema}{suffix}" for suffix in SUFFIXES), *slices]:
            conn.execute(text(f"drop schema if exists {name} cascade"))


def fill_slice_raw(engine: Engine, raw_schema: str, slice_raw: str, part: Slice) -> None:
    """A slice's raw schema: its meters' readings as the simulation stored them, and its
    batteries."""
    migrate(engine, slice_raw)
    with engine.begin() as conn:
        # as throw-away as the simulation's own raw table (simulate below)
        conn.execute(text(f"alter table {slice_raw}.meter_readings set unlogged"))
        copy_stored_readings(conn, raw_schema, slice_raw, sorted(part.meters))
    upsert_batteries(engine, part.batteries, raw_schema=slice_raw)


def run_slices(engine: Engine, url: str, schema: str, raw_schema: str, parts, target: Path):
    """dbt once per slice, all at the same time; then the marts of the slices as views in
    the simulation's marts schema. A failed slice fails the run once every slice stopped."""

    def run(index: int, part: Slice) -> None:
        name = slice_schema(schema, index)
        fill_slice_raw(engine, raw_schema, f"{name}_raw", part)
        run_dbt(["run"], url=url, schema=name, raw_schema=f"{name}_raw", target_dir=target / name)

    with ThreadPoolExecutor(max_workers=len(parts)) as pool:
        futures = [pool.submit(run, index, part) for index, part in enumerate(parts)]
    for future in futures:
        future.result()
    marts = [f"{slice_schema(schema, index)}_marts" for index in range(len(parts))]
    with engine.begin() as conn:
        relations = conn.execute(
            text(
                "select table_name from information_schema.tables"
                " where table_schema = :marts order by table_name"
            ),
            {"marts": marts[0]},
        ).scalars()
        conn.execute(text(f"create schema {schema}_marts"))
        for relation in relations:
            union = " union all ".join(f"select * from {m}.{relation}" for m in marts)
            conn.execute(text(f"create view {schema}_marts.{relation} as {union}"))


def simulate(
    engine: Engine,
    url: str,
    readings_csv: Path,
    batteries_csv: Path,
    out_dir: Path,
    *,
    step: Callable[[str], None] = lambda _: None,
    keep_schema: bool = False,
    slices: int | None = None,
) -> SimulationResult:
    """``slices``: how many dbt runs side by side (None: ``default_slices``; 1: one run).

    ``out_dir`` that exists as a file is refused (ValueError) before anything is loaded:
    else the run would fail at its very end, after the whole ledger was computed."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(
            f"--out {out_dir}: is a file; --out must be a folder (for battery_intervals.csv"
            " and battery_daily.csv)"
        )
    step("checking and loading the readings")
    schema = f"sim_{secrets.token_hex(4)}"
    raw_schema = f"{schema}_raw"
    try:
        migrate(engine, raw_schema)
        # one transaction: the readings are checked on their way in, and the load commits
        # only when both files are good (a bad file leaves nothing behind)
        with engine.begin() as conn:
            # a throw-away schema that nothing reads after this run: no WAL for its rows
            conn.execute(text(f"alter table {raw_schema}.meter_readings set unlogged"))
            load_id = begin_load(conn, raw_schema, "simulate", str(readings_csv))
            copied = None
            if is_big_load(conn, raw_schema, estimate_rows(readings_csv)):
                copied = copy_readings_into_raw(
                    conn,
                    raw_schema,
                    load_id,
                    "simulate",
                    lambda table: copy_readings_csv(conn, readings_csv, table),
                )
            staged = copied or stage_readings_csv(conn, readings_csv)
            if staged.problems:
                raise InputFileError([problem for problem, _ in staged.problems])
            received = loaded = staged.received
            if copied is None:
                loaded = append_staged_readings(
                    conn, raw_schema, load_id, "simulate", STAGED, staged.received
                )
                conn.execute(text(f"analyze {raw_schema}.meter_readings"))
            finish_load(conn, raw_schema, load_id, staged.received, loaded, 0)
            batteries = read_batteries_csv(
                batteries_csv, known_meters=stored_meters(conn, raw_schema)
            )
            out_dir.mkdir(parents=True, exist_ok=True)
            count = len({b["battery_id"] for b in batteries})
            versions = f" ({len(batteries)} versions)" if len(batteries) > count else ""
            step(
                f"loaded {staged.received:,} readings ({staged.way}) and {count} batteries"
                f"{versions} into {schema}"
            )
        upsert_batteries(engine, batteries, raw_schema=raw_schema)
        parts = plan_slices(batteries, default_slices(received) if slices is None else slices)
        with tempfile.TemporaryDirectory(prefix="vbatt-dbt-") as target:
            if len(parts) == 1:
                step("computing the ledger with dbt")
                run_dbt(
                    ["run"], url=url, schema=schema, raw_schema=raw_schema, target_dir=Path(target)
                )
            else:
                sizes = ", ".join(f"{len(part.battery_ids):,}" for part in parts)
                step(
                    f"computing the ledger with dbt in {len(parts)} slices side by side"
                    f" ({sizes} batteries)"
                )
                run_slices(engine, url, schema, raw_schema, parts, Path(target))
        step("writing the result files")
        intervals_csv = out_dir / "battery_intervals.csv"
        daily_csv = out_dir / "battery_daily.csv"
        ranges = _battery_ranges(engine, schema, parts=min(os.cpu_count() or 1, 4))
        _copy_out(engine, [_query(INTERVALS_QUERY, schema, r) for r in ranges], intervals_csv)
        _copy_out(engine, [_query(DAILY_QUERY, schema, r) for r in ranges], daily_csv)
        with engine.connect() as conn:
            summary = [dict(r._mapping) for r in conn.execute(text(_query(SUMMARY_QUERY, schema)))]
    finally:
        if not keep_schema:
            drop_schemas(engine, schema)
    return SimulationResult(intervals_csv, daily_csv, summary)
