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
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC

from sqlalchemy import Connection, Engine, text

from vbatt.battery_config import BATTERY_FIELDS, check_batteries
from vbatt.readings import Reading, Rejected
from vbatt.warehouse.migrate import check_schema_name
from vbatt.warehouse.versions import ImportSummary, import_batteries

BATTERY_COLUMNS = BATTERY_FIELDS  # the columns of raw.batteries and of the batteries CSV


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


def begin_load(conn: Connection, raw: str, source: str, origin: str) -> int:
    return conn.execute(
        text(f"insert into {raw}.loads (source, origin) values (:s, :o) returning load_id"),
        {"s": source, "o": origin},
    ).scalar_one()


def append_readings(
    conn: Connection, raw: str, load_id: int, source: str, readings: Iterable[Reading]
) -> tuple[int, int]:
    """COPY readings in; return (received, newly stored): the rest were already there."""
    rows = [_reading_row(r) for r in readings]
    conn.execute(
        text(
            "create temporary table if not exists incoming (position bigint, meter_id text,"
            " ts timestamptz, import_kwh float8, export_kwh float8) on commit drop"
        )
    )
    conn.execute(text("truncate incoming"))
    _copy(
        conn,
        "incoming",
        ("position", "meter_id", "ts", "import_kwh", "export_kwh"),
        ((i, *row) for i, row in enumerate(rows)),
    )
    return len(rows), append_staged_readings(conn, raw, load_id, source, "incoming")


def append_staged_readings(
    conn: Connection, raw: str, load_id: int, source: str, table: str
) -> int:
    """Append the readings of a (temporary) table with ``position, meter_id, ts, import_kwh,
    export_kwh`` in position order; return how many were new.

    In position order with ``on conflict do nothing``, the first of identical readings is
    stored and the others count as duplicates, within the batch as against the table.
    """
    return conn.execute(
        text(
            f"insert into {raw}.meter_readings"
            " (meter_id, ts, import_kwh, export_kwh, source, load_id)"
            f" select meter_id, ts, import_kwh, export_kwh, :source, :load_id from {table}"
            " order by position"
            " on conflict do nothing"
        ),
        {"source": source, "load_id": load_id},
    ).rowcount


def append_energies(
    conn: Connection, raw: str, load_id: int, source: str, energies: Iterable
) -> tuple[int, int]:
    """Load-profile energies (``IntervalEnergy``); identical re-sent values count once."""
    rows = [
        (
            i,
            e.meter_id,
            e.interval_start.astimezone(UTC).isoformat(),
            e.interval_end.astimezone(UTC).isoformat(),
            e.register,
            repr(float(e.kwh)),
            e.substitute,
        )
        for i, e in enumerate(energies)
    ]
    conn.execute(
        text(
            "create temporary table if not exists incoming_energies (position bigint,"
            " meter_id text, interval_start timestamptz, interval_end timestamptz,"
            " register text, kwh float8, substitute boolean) on commit drop"
        )
    )
    conn.execute(text("truncate incoming_energies"))
    _copy(
        conn,
        "incoming_energies",
        ("position", "meter_id", "interval_start", "interval_end", "register", "kwh", "substitute"),
        rows,
    )
    loaded = conn.execute(
        text(
            f"insert into {raw}.interval_energies (meter_id, interval_start, interval_end,"
            " register, kwh, substitute, source, load_id)"
            " select meter_id, interval_start, interval_end, register, kwh, substitute,"
            " :source, :load_id from incoming_energies order by position"
            " on conflict do nothing"
        ),
        {"source": source, "load_id": load_id},
    ).rowcount
    return len(rows), loaded


def finish_load(
    conn: Connection, raw: str, load_id: int, received: int, loaded: int, rejected: int
) -> LoadResult:
    conn.execute(
        text(
            f"update {raw}.loads set finished_at = clock_timestamp(), rows_received = :n,"
            " rows_loaded = :loaded, rows_duplicate = :dup, rows_rejected = :rej"
            " where load_id = :id"
        ),
        {
            "n": received + rejected,
            "loaded": loaded,
            "dup": received - loaded,
            "rej": rejected,
            "id": load_id,
        },
    )
    return LoadResult(load_id, received + rejected, loaded, received - loaded, rejected)


def record_account(conn: Connection, raw: str, load_id: int, account: dict) -> None:
    """Keep a load's value account (used per register, ignored and quarantined per reason)
    on its ``raw.loads`` row; the caller builds it (``vbatt.ingest.accounting``)."""
    conn.execute(
        text(
            f"update {raw}.loads set values_ignored = :ignored, account = cast(:account as jsonb)"
            " where load_id = :id"
        ),
        {
            "ignored": sum(account.get("ignored", {}).values()),
            "account": json.dumps(account, sort_keys=True),
            "id": load_id,
        },
    )


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
    rejected = list(rejected)
    with engine.begin() as conn:
        load_id = begin_load(conn, raw, source, origin)
        received, loaded = append_readings(conn, raw, load_id, source, readings)
        if rejected:
            write_rejections(conn, rejected, source=source, load_id=load_id, raw_schema=raw)
        return finish_load(conn, raw, load_id, received, loaded, len(rejected))


def write_rejections(
    conn: Connection,
    rejected: Iterable[Rejected],
    *,
    source: str,
    load_id: int | None,
    raw_schema: str = "raw",
    skip_recorded: bool = False,
) -> int:
    """Quarantine rejected records; returns how many were written.

    ``skip_recorded``: leave out a record this source already quarantined for the meter
    with the same reason. A source that fetches again what it could not take (the smart-me
    ingest re-reads a meter from where it was complete) would otherwise write the same
    rejection on every run for as long as the cloud keeps sending the bad value. Only
    earlier loads count: a bad record sent twice within this load is quarantined twice,
    as the load reports it.
    """
    raw = check_schema_name(raw_schema)
    rows = [(r.meter_id, r.raw, r.reason, r.where) for r in rejected]
    if skip_recorded and rows:
        meters = sorted({m for m, *_ in rows if m is not None})
        known = {
            (m, record, reason)
            for m, record, reason in conn.execute(
                text(
                    f"select meter_id, record, reason from {raw}.rejected_readings"
                    " where source = :s and meter_id = any(:m)"
                ),
                {"s": source, "m": meters},
            )
        }
        rows = [row for row in rows if row[:3] not in known]
    _copy(
        conn,
        f"{raw}.rejected_readings",
        ("load_id", "source", "location", "meter_id", "record", "reason"),
        ((load_id, source, where, meter, record, reason) for meter, record, reason, where in rows),
    )
    return len(rows)


def upsert_batteries(
    engine: Engine,
    batteries: Iterable[dict],
    raw_schema: str = "raw",
    *,
    recorded_by: str = "upsert_batteries",
    reason: str | None = None,
    backdate: bool = False,
) -> int:
    """Record battery configurations: new batteries, and new versions of known ones.

    Every row is checked first (vbatt.battery_config): one bad battery refuses the lot
    with a message naming it and the field, and nothing is stored. Several rows of a
    battery are its versions (``valid_from``; none = the start_date); rows equal to what
    is stored record nothing (vbatt.warehouse.versions.import_batteries). A change that
    reaches into periods already issued to the partner is refused unless ``backdate``.
    Returns the number of rows.
    """
    return len(
        list(
            record_batteries(
                engine,
                batteries,
                raw_schema,
                recorded_by=recorded_by,
                reason=reason,
                backdate=backdate,
            ).rows
        )
    )


@dataclass(frozen=True)
class RecordedBatteries:
    rows: list[dict]
    summary: ImportSummary


def record_batteries(
    engine: Engine,
    batteries: Iterable[dict],
    raw_schema: str = "raw",
    *,
    recorded_by: str,
    reason: str | None = None,
    backdate: bool = False,
) -> RecordedBatteries:
    """:func:`upsert_batteries` with what it recorded (one transaction; all or nothing)."""
    raw = check_schema_name(raw_schema)
    rows = check_batteries(batteries)
    with engine.begin() as conn:
        summary = import_batteries(
            conn, rows, recorded_by=recorded_by, reason=reason, backdate=backdate, raw_schema=raw
        )
    return RecordedBatteries(rows, summary)
