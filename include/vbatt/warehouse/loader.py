"""Fast, append-only loading of readings, rejections and battery configuration.

Readings go through COPY into a temporary table and then into ``raw.meter_readings``,
deduplicated against the identity index: the same reading loaded twice is one row, a
different value at the same instant is kept as a second row (a conflict that the dbt
layer resolves and reports). A load bigger than the table goes straight in by COPY while
the table's indexes are dropped, and they are built once afterwards (``is_big_load``).
Every load is recorded in ``raw.loads`` with its counts, in the same transaction as its
rows, so a failed load leaves nothing behind; the table stays logged, so a committed load
survives a crash of the server.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import TypeVar

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from vbatt.battery_config import BATTERY_FIELDS, MAX_LENGTHS, check_batteries
from vbatt.readings import Reading, Rejected
from vbatt.warehouse.migrate import check_schema_name
from vbatt.warehouse.versions import ImportSummary, import_batteries

BATTERY_COLUMNS = BATTERY_FIELDS  # the columns of raw.batteries and of the batteries CSV
T = TypeVar("T")


@dataclass(frozen=True)
class LoadResult:
    load_id: int
    received: int
    loaded: int
    duplicate: int
    rejected: int


def _copy(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence],
    text_columns: Sequence[str] = (),
) -> None:
    """COPY ``rows`` in as CSV: an empty field is NULL, except in ``text_columns``, where it
    is the empty text it was (a quarantined record may be an empty line)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(rows)
    buffer.seek(0)
    keep = f", force_not_null ({', '.join(text_columns)})" if text_columns else ""
    cursor = conn.connection.dbapi_connection.cursor()
    cursor.copy_expert(
        f"copy {table} ({', '.join(columns)}) from stdin with (format csv, null ''{keep})", buffer
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
    return len(rows), append_staged_readings(conn, raw, load_id, source, "incoming", len(rows))


def append_staged_readings(
    conn: Connection, raw: str, load_id: int, source: str, table: str, rows: int | None = None
) -> int:
    """Append the readings of a (temporary) table with ``position, meter_id, ts, import_kwh,
    export_kwh`` (``rows`` of them, counted when not given); return how many were new.

    Identical readings count once, within the batch (the first in position order is kept)
    as against the table; the dedupe against the table looks only at the batch's meters
    and time range, through the identity index. The new rows go in with one insert ordered
    by the table's key (``position`` keeps the file's order within an instant, so the
    newest version of a conflict still wins). Should another load insert the same rows
    between the check and the insert, the insert is retried with ``on conflict do
    nothing``. A big load (``is_big_load``) drops the indexes and foreign keys around the
    insert and builds them again, when it can lock the table at once.
    """
    if rows is None:
        rows = conn.execute(text(f"select count(*) from {table}")).scalar_one()
    if not rows:
        return 0
    rebuild = _drop_indexes(conn, raw) if is_big_load(conn, raw, rows) else None
    bounds = conn.execute(
        text(f"select array_agg(distinct meter_id), min(ts), max(ts) from {table}")
    ).one()
    insert = (
        f"insert into {raw}.meter_readings"
        " (meter_id, ts, import_kwh, export_kwh, source, load_id)"
        " select meter_id, ts, import_kwh, export_kwh, :source, :load_id from ("
        "   select distinct on (meter_id, ts, import_kwh, export_kwh) *"
        f"  from {table} order by meter_id, ts, import_kwh, export_kwh, position"
        " ) as batch"
        " where not exists ("
        f"  select from {raw}.meter_readings as stored"
        "   where stored.meter_id = batch.meter_id and stored.ts = batch.ts"
        "   and stored.import_kwh = batch.import_kwh and stored.export_kwh = batch.export_kwh"
        "   and stored.meter_id = any(:meters) and stored.ts between :first and :last"
        " )"
        " order by meter_id, ts, position"
    )
    params = {
        "source": source,
        "load_id": load_id,
        "meters": bounds[0],
        "first": bounds[1],
        "last": bounds[2],
    }
    savepoint = conn.begin_nested()
    try:
        loaded = conn.execute(text(insert), params).rowcount
        savepoint.commit()
    except IntegrityError as exc:  # a concurrent load stored some of them meanwhile
        savepoint.rollback()
        if getattr(exc.orig, "pgcode", None) != UNIQUE_VIOLATION:
            raise
        loaded = conn.execute(text(insert + " on conflict do nothing"), params).rowcount
    if rebuild is not None:
        _rebuild_indexes(conn, raw, rebuild)
    return loaded


# --- big loads: indexes and foreign keys built once after the rows, not row by row ------

BIG_LOAD = 100_000  # rows; below this, maintaining the indexes row by row costs little
UNIQUE_VIOLATION, LOCK_NOT_AVAILABLE = "23505", "55P03"
INSUFFICIENT_PRIVILEGE = "42501"


def stored_readings(conn: Connection, raw: str) -> int:
    """About how many rows ``meter_readings`` holds (the planner's count, else its size)."""
    return int(
        conn.execute(
            text(
                "select case when reltuples >= 0 then reltuples"
                " else pg_relation_size(oid) / 64 end from pg_class"
                " where oid = cast(:t as regclass)"
            ),
            {"t": f"{raw}.meter_readings"},
        ).scalar_one()
    )


def is_big_load(conn: Connection, raw: str, rows: int) -> bool:
    """At least ``BIG_LOAD`` rows that at least double the table: then building the
    indexes and checking the foreign key once, after the rows, is cheaper than doing it
    for every row (measured: 4 times cheaper for 1.75M rows into an empty table)."""
    return rows >= BIG_LOAD and rows >= stored_readings(conn, raw)


def _drop_indexes(conn: Connection, raw: str, *, foreign_keys: bool = True) -> list[str] | None:
    """Lock ``meter_readings`` (and ``loads``, which its foreign key ties to it) without
    waiting, drop its indexes (and its foreign keys, unless ``foreign_keys`` is False), and
    return the statements that create them again, unique indexes first; None (nothing
    changed) when another session holds a lock.

    Every index and constraint is read from the catalog, so what is built again is what
    the migrations made. The lock keeps readers out until the transaction ends: only
    for loads bigger than the table, where that time is the load's own."""
    table = f"{raw}.meter_readings"
    savepoint = conn.begin_nested()
    try:
        conn.execute(text(f"lock table {table}, {raw}.loads in access exclusive mode nowait"))
    except OperationalError as exc:
        savepoint.rollback()
        if getattr(exc.orig, "pgcode", None) != LOCK_NOT_AVAILABLE:
            raise
        return None
    savepoint.commit()  # the locks stay with the transaction
    indexes = conn.execute(
        text(
            "select i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) from pg_index i"
            " where i.indrelid = cast(:t as regclass) and not exists"
            " (select from pg_constraint c where c.conindid = i.indexrelid)"
            " order by i.indisunique desc, i.indexrelid"
        ),
        {"t": table},
    ).all()
    keys = (
        conn.execute(
            text(
                "select format('%I', conname), pg_get_constraintdef(oid) from pg_constraint"
                " where conrelid = cast(:t as regclass) and contype = 'f' order by oid"
            ),
            {"t": table},
        ).all()
        if foreign_keys
        else []
    )
    for name, _ in keys:
        conn.execute(text(f"alter table {table} drop constraint {name}"))
    for name, _ in indexes:
        conn.execute(text(f"drop index {name}"))
    return [d for _, d in indexes] + [
        f"alter table {table} add constraint {name} {d}" for name, d in keys
    ]


def _rebuild_indexes(conn: Connection, raw: str, statements: list[str]) -> None:
    """Build the dropped indexes and foreign keys again, and give the planner statistics
    for the grown table (the models read it right after)."""
    for statement in statements:
        conn.execute(text(statement))
    conn.execute(text(f"analyze {raw}.meter_readings"))


def _new_file_if_empty(conn: Connection, table: str) -> None:
    """Give an empty ``table`` (locked by the caller) a new file in this transaction, so
    that with ``wal_level = minimal`` (the embedded warehouse) the COPY and the index builds
    after it write no WAL: PostgreSQL syncs the file at commit instead, as crash-safe. The
    first load of a warehouse, a backfill or a simulation is the load this saves most on
    (docs/scaling.md). Nothing is lost: the table holds no row, and a rollback brings back
    the old file. With another ``wal_level`` it would save nothing, so nothing is done."""
    if conn.execute(
        text(
            f"select current_setting('wal_level') = 'minimal' and not exists (select from {table})"
        )
    ).scalar_one():
        conn.execute(text(f"truncate {table}"))


def copy_readings_into_raw(
    conn: Connection, raw: str, load_id: int, source: str, copy: Callable[[str], T]
) -> T | None:
    """A big load straight into ``meter_readings``: ``copy(table)`` COPYs the checked rows
    (``meter_id, ts, import_kwh, export_kwh``) into it while it has no indexes, then they
    are built again. The unique index proves every row new, so all copied rows count as
    loaded. None, with nothing changed, when the table is busy or a row is not new (a
    duplicate in the file or a reading already stored): then the caller stages the rows
    and ``append_staged_readings`` sorts them out. The rows go in as logged as ever
    (crash safety); only the index maintenance per row is saved, and a staging copy."""
    table = f"{raw}.meter_readings"
    savepoint = conn.begin_nested()
    try:
        keys_hold = _may_skip_row_triggers(conn, table)
        rebuild = _drop_indexes(conn, raw, foreign_keys=not keys_hold)
        if rebuild is None:
            savepoint.rollback()
            return None
        _new_file_if_empty(conn, table)
        restore_cache = _draw_identity_in_blocks(conn, table)
        # COPY fills only the file's columns: the load's own come from defaults, set
        # for this transaction (no one else sees the table until it ends)
        defaults = conn.execute(
            text(
                "select format('alter table %s alter source set default %L,"
                " alter load_id set default %s', cast(:t as regclass), :s, cast(:l as bigint))"
            ),
            {"t": table, "s": source, "l": load_id},
        ).scalar_one()
        conn.execute(text(defaults))
        if keys_hold:
            conn.execute(text("select set_config('session_replication_role', 'replica', true)"))
        result = copy(table)
        if keys_hold:
            conn.execute(text("select set_config('session_replication_role', 'origin', true)"))
        conn.execute(
            text(f"alter table {table} alter source drop default, alter load_id drop default")
        )
        if restore_cache is not None:
            conn.execute(text(restore_cache))
        try:
            _rebuild_indexes(conn, raw, rebuild)
        except IntegrityError as exc:
            if getattr(exc.orig, "pgcode", None) != UNIQUE_VIOLATION:
                raise
            savepoint.rollback()
            return None
    except BaseException:
        if savepoint.is_active:
            savepoint.rollback()
        raise
    savepoint.commit()
    return result


def copy_stored_readings(conn: Connection, source_raw: str, raw: str, meters: Sequence[str]) -> int:
    """Copy the stored readings of ``meters`` from ``source_raw``, where they were checked
    and loaded, into the empty raw layer ``raw`` (a slice of ``vbatt simulate``), with the
    loads they name: as stored, their ingestion time and order (``reading_seq``) included,
    so the models pick the same version of every reading. The indexes and the foreign key
    are built once after the rows, as for a big load. Returns the rows copied."""
    table = f"{raw}.meter_readings"
    rebuild = _drop_indexes(conn, raw)
    if rebuild is None:
        raise RuntimeError(f"{table} is in use by another session: copy into a new schema")
    _new_file_if_empty(conn, table)
    conn.execute(text(f"insert into {raw}.loads select * from {source_raw}.loads"))
    copied = conn.execute(
        text(
            f"insert into {table} overriding system value"
            f" select readings.* from {source_raw}.meter_readings as readings"
            " where readings.meter_id in (select unnest(cast(:meters as text[])))"
        ),
        {"meters": list(meters)},
    ).rowcount
    # later loads into this layer come after the copied ones, as they would in the source
    for sequence_table, column in ((table, "reading_seq"), (f"{raw}.loads", "load_id")):
        conn.execute(
            text(
                f"select setval(pg_get_serial_sequence(:t, :c), max({column}))"
                f" from {sequence_table} having max({column}) is not null"
            ),
            {"t": sequence_table, "c": column},
        )
    _rebuild_indexes(conn, raw, rebuild)
    return copied


def _may_skip_row_triggers(conn: Connection, table: str) -> bool:
    """Whether this session may switch off the foreign key's check per row for the COPY
    (``session_replication_role``: a superuser, as in the embedded warehouse, or a role
    granted SET on it), so the key need not be dropped and checked again over the whole
    table afterwards (0.7 s for 7.0M rows; docs/scaling.md).

    The key holds by construction: the COPY writes the file's four columns only, and every
    row's ``load_id`` is the column default, the load this transaction recorded in
    ``raw.loads`` (locked until it ends); the check constraints are not triggers and
    apply as ever. Others may not: the key is dropped and added back (checked) instead.
    Nor when the table has a trigger of its own (none today): it would be skipped too."""
    if conn.execute(
        text(
            "select exists (select from pg_trigger where tgrelid = cast(:t as regclass)"
            " and not tgisinternal)"
        ),
        {"t": table},
    ).scalar_one():
        return False
    savepoint = conn.begin_nested()
    try:
        conn.execute(
            text(
                "select set_config('session_replication_role',"
                " current_setting('session_replication_role'), true)"
            )
        )
    except ProgrammingError as exc:
        savepoint.rollback()
        if getattr(exc.orig, "pgcode", None) != INSUFFICIENT_PRIVILEGE:
            raise
        return False
    savepoint.commit()
    return conn.execute(text("show session_replication_role")).scalar_one() == "origin"


IDENTITY_BLOCK = 100_000  # reading_seq values a big load draws at a time
SEQUENCE_LOCK_WAIT = "500ms"  # below deadlock_timeout (1 s): this load gives way first


def _draw_identity_in_blocks(conn: Connection, table: str) -> str | None:
    """Let this transaction draw ``reading_seq`` values ``IDENTITY_BLOCK`` at a time, and
    return the statement that sets the sequence back; None (nothing changed) when another
    session holds the sequence for longer than ``SEQUENCE_LOCK_WAIT``.

    One value per row from the shared sequence is about a seventh of a big load's COPY
    (measured: 7.0M rows, 1.2 s of 8.5 s; docs/scaling.md). Ingestion order still holds:
    ``alter sequence`` locks the sequence until this transaction ends, so the realtime
    receiver's ``nextval`` waits (as readers of ``meter_readings`` already do for a big
    load) and every value drawn after the load is above every value of it. The values
    drawn ahead and left unused leave a gap (the sequence orders rows, it does not count
    them); no later row of this session gets one: the ``alter sequence`` rewrites the
    sequence, and PostgreSQL drops a session's values drawn ahead from a sequence
    rewritten since, whether by the statement that sets it back or by a rollback."""
    sequence, cache = conn.execute(
        text(
            "select s.seqrelid::regclass::text, s.seqcache from pg_sequence s"
            " where s.seqrelid = cast(pg_get_serial_sequence(:t, 'reading_seq') as regclass)"
        ),
        {"t": table},
    ).one()
    if cache >= IDENTITY_BLOCK:
        return None
    waited = conn.execute(text("select current_setting('lock_timeout')")).scalar_one()
    savepoint = conn.begin_nested()
    try:
        conn.execute(text("select set_config('lock_timeout', :w, true)"), {"w": SEQUENCE_LOCK_WAIT})
        conn.execute(text(f"alter sequence {sequence} cache {IDENTITY_BLOCK}"))
    except OperationalError as exc:
        savepoint.rollback()  # also sets lock_timeout back
        if getattr(exc.orig, "pgcode", None) != LOCK_NOT_AVAILABLE:
            raise
        return None
    conn.execute(text("select set_config('lock_timeout', :w, true)"), {"w": waited})
    savepoint.commit()  # the sequence stays locked until the transaction ends
    return f"alter sequence {sequence} cache {cache}"


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
        quarantine_once(conn, rejected, source=source, load_id=load_id, raw_schema=raw)
        return finish_load(conn, raw, load_id, received, loaded, len(rejected))


# a refused record's where, what and why are text even when empty; no meter id is NULL
_REJECTION_TEXT = ("location", "record", "reason")


def write_rejections(
    conn: Connection,
    rejected: Iterable[Rejected],
    *,
    source: str,
    load_id: int | None,
    raw_schema: str = "raw",
) -> int:
    """Quarantine rejected records, every one as it comes; returns how many were written.
    Loads quarantine a value once instead (``quarantine_once``); this is for the realtime
    intake, which has no loads to tell earlier refusals by.

    What PostgreSQL cannot hold is made storable, so that quarantining never fails on the
    very record it quarantines: control characters are written escaped (``\\x00``; a NUL
    cannot be stored in text at all, and the others would act on the terminal of whoever
    lists the quarantine; tab and line ends stay), and a meter id longer than a battery's
    may be (``battery_config.MAX_LENGTHS``) is left out of the meter_id column (its index
    takes no key of kilobytes): the record keeps it whole.
    """
    raw = check_schema_name(raw_schema)
    rows = _storable_rejections(rejected)
    _copy(
        conn,
        f"{raw}.rejected_readings",
        ("load_id", "source", "location", "meter_id", "record", "reason"),
        ((load_id, source, where, meter, record, reason) for meter, record, reason, where in rows),
        _REJECTION_TEXT,
    )
    return len(rows)


@dataclass(frozen=True)
class Quarantined:
    """What a load's refused records did in the quarantine: ``stored`` new, ``already``
    held by earlier loads of the same source (``earlier_loads``), not stored again."""

    stored: int
    already: int = 0
    earlier_loads: tuple[int, ...] = ()


# One statement: the records an earlier load of the source quarantined (same meter, record
# and reason: the record holds the value and its instant) are counted, the others inserted
# in their order. Only earlier loads count: the insert does not see its own rows, so a bad
# record sent twice within a load is quarantined twice, as the load reports it.
_QUARANTINE_ONCE = """
with held as (
    select i.position, min(k.load_id) as load_id
    from incoming_rejections i
    join {raw}.rejected_readings k
      on k.record = i.record and k.reason = i.reason and k.source = :source
     and k.meter_id is not distinct from i.meter_id
    group by i.position
), stored as (
    insert into {raw}.rejected_readings (load_id, source, location, meter_id, record, reason)
    select :load_id, :source, i.location, i.meter_id, i.record, i.reason
    from incoming_rejections i
    where not exists (select from held h where h.position = i.position)
    order by i.position
    returning 1
)
select (select count(*) from stored) as stored, (select count(*) from held) as already,
    (select array_agg(distinct load_id order by load_id) from held
     where load_id is not null) as earlier_loads
"""


def quarantine_once(
    conn: Connection,
    rejected: Iterable[Rejected],
    *,
    source: str,
    load_id: int | None,
    raw_schema: str = "raw",
) -> Quarantined:
    """Quarantine refused records that the source has not quarantined before.

    A file re-sent with other bytes (other line ends, another row order, a row more) and a
    smart-me value the cloud keeps sending badly would otherwise be held once per load;
    the first record stays (append-only) and the load counts the others as quarantined
    already. The records go by COPY into a temporary table and are checked and inserted
    by one statement (through the hash index on the record, migration 0016): a load
    without refused records pays nothing.
    """
    raw = check_schema_name(raw_schema)
    rows = _storable_rejections(rejected)
    if not rows:
        return Quarantined(0)
    conn.execute(
        text(
            "create temporary table if not exists incoming_rejections (position bigint,"
            " location text not null, meter_id text, record text not null, reason text not null)"
            " on commit drop"
        )
    )
    conn.execute(text("truncate incoming_rejections"))
    _copy(
        conn,
        "incoming_rejections",
        ("position", "location", "meter_id", "record", "reason"),
        (
            (i, where, meter, record, reason)
            for i, (meter, record, reason, where) in enumerate(rows)
        ),
        _REJECTION_TEXT,
    )
    result = conn.execute(
        text(_QUARANTINE_ONCE.format(raw=raw)), {"source": source, "load_id": load_id}
    ).one()
    return Quarantined(result.stored, result.already, tuple(result.earlier_loads or ()))


def _storable_rejections(rejected: Iterable[Rejected]) -> list[tuple]:
    """(meter_id, record, reason, where) of each record, storable (``_escaped``)."""
    return [
        (_storable_meter(r.meter_id), _escaped(r.raw), _escaped(r.reason), _escaped(r.where))
        for r in rejected
    ]


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _escaped(value: str | None) -> str | None:
    """``value`` with control characters (but tab, CR, LF) written as ``\\xNN``."""
    if value is None or not _CONTROL.search(value):
        return value
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", value)


def _storable_meter(meter_id: str | None) -> str | None:
    if meter_id is None or len(meter_id) > MAX_LENGTHS["meter_id"]:
        return None
    return _escaped(meter_id)


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
