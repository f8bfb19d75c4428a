"""Fast, append-only loading of readings, rejections and battery configuration.

Readings go through COPY into a temporary table and then into ``raw.meter_readings`` with
``on conflict do nothing`` against the identity index: the same reading loaded twice is
one row, a different value at the same instant is kept as a second row (a conflict that
the dbt layer resolves and reports). Every load is recorded in ``raw.loads`` with its
counts, in the same transaction as its rows, so a failed load leaves nothing behind.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC

from sqlalchemy import Connection, Engine, text

from vbatt.readings import Reading, Rejected
from vbatt.warehouse.migrate import check_schema_name

BATTERY_COLUMNS = (
    "battery_id",
    "name",
    "partner_id",
    "customer_id",
    "meter_id",
    "capacity_kwh",
    "start_date",
    "reset_date",
    "reset_repeat",
    "end_date",
    "timezone",
    "initial_level_kwh",
)


@dataclass(frozen=True)
class LoadResult:
    load_id: int
    received: int
    loaded: int
    duplicate: int
    rejected: int


def _copy(conn: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(rows)
    buffer.seek(0)
    cursor = conn.connection.dbapi_connection.cursor()
    cursor.copy_expert(
        f"copy {table} ({', '.join(columns)}) from stdin with (format csv, null '')", buffer
    )


def _reading_row(r: Reading) -> tuple:
    ts = r.ts.astimezone(UTC).isoformat()
    return (r.meter_id, ts, repr(float(r.import_kwh)), repr(float(r.export_kwh)))


def load_readings(
    engine: Engine,
    readings: Iterable[Reading],
    rejected: Iterable[Rejected] = (),
    *,
    source: str,
    origin: str = "",
    raw_schema: str = "raw",
) -> LoadResult:
    """Append readings (and the rejections found while reading them) as one load."""
    raw = check_schema_name(raw_schema)
    rows = [_reading_row(r) for r in readings]
    rejected = list(rejected)
    with engine.begin() as conn:
        load_id = conn.execute(
            text(f"insert into {raw}.loads (source, origin) values (:s, :o) returning load_id"),
            {"s": source, "o": origin},
        ).scalar_one()
        conn.execute(
            text(
                "create temporary table incoming (position bigint, meter_id text,"
                " ts timestamptz, import_kwh float8, export_kwh float8) on commit drop"
            )
        )
        _copy(
            conn,
            "incoming",
            ("position", "meter_id", "ts", "import_kwh", "export_kwh"),
            ((i, *row) for i, row in enumerate(rows)),
        )
        loaded = conn.execute(
            text(
                f"insert into {raw}.meter_readings"
                " (meter_id, ts, import_kwh, export_kwh, source, load_id)"
                " select meter_id, ts, import_kwh, export_kwh, :source, :load_id from ("
                "  select distinct on (meter_id, ts, import_kwh, export_kwh) *"
                "  from incoming order by meter_id, ts, import_kwh, export_kwh, position"
                " ) as first_seen order by position"
                " on conflict do nothing"
            ),
            {"source": source, "load_id": load_id},
        ).rowcount
        if rejected:
            write_rejections(conn, rejected, source=source, load_id=load_id, raw_schema=raw)
        conn.execute(
            text(
                f"update {raw}.loads set finished_at = clock_timestamp(), rows_received = :n,"
                " rows_loaded = :loaded, rows_duplicate = :dup, rows_rejected = :rej"
                " where load_id = :id"
            ),
            {
                "n": len(rows) + len(rejected),
                "loaded": loaded,
                "dup": len(rows) - loaded,
                "rej": len(rejected),
                "id": load_id,
            },
        )
    return LoadResult(load_id, len(rows) + len(rejected), loaded, len(rows) - loaded, len(rejected))


def write_rejections(
    conn: Connection,
    rejected: Iterable[Rejected],
    *,
    source: str,
    load_id: int | None,
    raw_schema: str = "raw",
) -> None:
    raw = check_schema_name(raw_schema)
    _copy(
        conn,
        f"{raw}.rejected_readings",
        ("load_id", "source", "location", "meter_id", "record", "reason"),
        ((load_id, source, r.where, r.meter_id, r.raw, r.reason) for r in rejected),
    )


def upsert_batteries(engine: Engine, batteries: Iterable[dict], raw_schema: str = "raw") -> int:
    """Insert or replace battery configurations (the ledger notices changed ones)."""
    raw = check_schema_name(raw_schema)
    cols = ", ".join(BATTERY_COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in BATTERY_COLUMNS[1:])
    changed = " or ".join(
        f"{raw}.batteries.{c} is distinct from excluded.{c}" for c in BATTERY_COLUMNS[1:]
    )
    rows = list(batteries)
    with engine.begin() as conn:
        conn.execute(
            text(
                f"insert into {raw}.batteries ({cols}) values"
                f" ({', '.join(':' + c for c in BATTERY_COLUMNS)})"
                f" on conflict (battery_id) do update set {updates}, updated_at = now()"
                f" where {changed}"
            ),
            rows,
        )
    return len(rows)
