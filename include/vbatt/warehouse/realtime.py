"""Storage of smart-me Realtime API pushes: append, live state, and reading them back.

Pushes arrive up to once a second per meter, so the layout is built for volume (migration
0009, docs/realtime.md): ``raw.realtime_values`` is partitioned by UTC day (partitions made
here on demand) and keeps every value answered 2xx, append-only; ``raw.realtime_quarters``
and ``raw.realtime_marks`` name the few readings step 1 needs (those bracketing each
quarter hour, those around counter drops, out-of-order arrivals and second versions);
``raw.meter_live`` holds each meter's latest live state. A batch is one transaction that
ends with ``pg_notify('vbatt_realtime', meter_id)`` per meter, so a listener wakes up the
moment the values are durable.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection, Engine, text

from vbatt.readings import Rejected
from vbatt.warehouse.loader import write_rejections
from vbatt.warehouse.migrate import check_schema_name

NOTIFY_CHANNEL = "vbatt_realtime"
SOURCE = "realtime"


@dataclass(frozen=True)
class LiveValue:
    """A meter's latest live state: the newest push's time and each register's newest value."""

    meter_id: str
    value_at: datetime
    power_kw: float | None  # 1-0:16.7.0, kW, + = import from the grid, - = export
    import_kwh: float | None  # 1-0:1.8.0, cumulative
    export_kwh: float | None  # 1-0:2.8.0, cumulative
    received_at: datetime


@dataclass(frozen=True, slots=True)
class PushedValue:
    """One pushed item of a known meter, as the receiver decoded it (registers may be None)."""

    meter_id: str
    value_at: datetime  # timezone-aware, whole microseconds
    import_kwh: float | None
    export_kwh: float | None
    power_kw: float | None

    @property
    def is_reading(self) -> bool:
        return self.import_kwh is not None and self.export_kwh is not None


@dataclass
class IntakeCounts:
    """What one batch took in; added to ``raw.realtime_intake`` for its minute."""

    bodies: int = 0
    items: int = 0
    unknown_devices: int = 0
    unused_values: int = 0
    rejected: int = 0
    rows_stored: int = 0
    rows_duplicate: int = 0
    readings: int = 0
    live_only: int = 0

    def add(self, other: IntakeCounts) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class _Partitions:
    known: dict[tuple[str, str], set[date]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


_PARTITIONS = _Partitions()


def partition_name(day: date) -> str:
    return f"realtime_values_{day:%Y%m%d}"


def _existing_partitions(conn: Connection, raw: str) -> set[date]:
    rows = conn.execute(
        text(
            "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid"
            " where i.inhparent = to_regclass(:parent)"
        ),
        {"parent": f"{raw}.realtime_values"},
    ).scalars()
    return {datetime.strptime(name.rsplit("_", 1)[1], "%Y%m%d").date() for name in rows}


def ensure_partitions(engine: Engine, days: Iterable[date], *, raw_schema: str = "raw") -> None:
    """Create the day partitions that are missing, each in a short transaction of its own
    (never inside a batch: creating a partition locks the parent)."""
    raw = check_schema_name(raw_schema)
    key = (str(engine.url), raw)
    wanted = set(days)
    with _PARTITIONS.lock:
        if wanted <= _PARTITIONS.known.get(key, set()):
            return
        with engine.begin() as conn:
            conn.execute(text("select pg_advisory_xact_lock(hashtext('vbatt-realtime-ddl'))"))
            existing = _existing_partitions(conn, raw)
            for day in sorted(wanted - existing):
                start = datetime(day.year, day.month, day.day, tzinfo=UTC)
                conn.exec_driver_sql(
                    f"create table if not exists {raw}.{partition_name(day)}"
                    f" partition of {raw}.realtime_values for values from"
                    f" ('{start.isoformat()}') to ('{(start + timedelta(days=1)).isoformat()}')"
                )
            _PARTITIONS.known[key] = existing | wanted


def forget_partitions() -> None:
    """Forget the partitions seen (after a schema was dropped and made again)."""
    with _PARTITIONS.lock:
        _PARTITIONS.known.clear()


def meter_guid(meter_id: str) -> str:
    """The device GUID (lower case) a meter's pushes carry: its id when that is a GUID (as
    smart-me's are), else a name-based UUID of it (meters of the simulated cloud, of files)."""
    try:
        return str(uuid.UUID(meter_id))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"vbatt:meter:{meter_id}"))


def known_meters(conn: Connection, *, raw_schema: str = "raw") -> dict[str, str]:
    """Meters some battery uses, by the device GUID their pushes carry (meter_guid)."""
    raw = check_schema_name(raw_schema)
    rows = conn.execute(text(f"select distinct meter_id from {raw}.batteries")).scalars()
    return {meter_guid(m): m for m in rows}


def _marks(
    values: Sequence[PushedValue], cursors: dict[str, tuple[datetime, float, float]]
) -> tuple[list[tuple[str, datetime, str]], dict[str, tuple[datetime, float, float]]]:
    """Reading instants step 1 must look at with their neighbours, and the new cursors.

    A reading newer than the meter's newest stored one is compared with it (a drop is
    marked); one at or before it is marked as out of order or as a second version. Every
    drop between neighbours in time then has a marked end (docs/realtime.md, "Why the
    ledger needs only some readings").
    """
    marks: list[tuple[str, datetime, str]] = []
    cursors = dict(cursors)
    order = sorted(
        (i for i, v in enumerate(values) if v.is_reading),
        key=lambda i: (values[i].meter_id, values[i].value_at, i),
    )
    for i in order:
        v = values[i]
        cursor = cursors.get(v.meter_id)
        now = (v.value_at, v.import_kwh, v.export_kwh)
        if cursor is None:
            cursors[v.meter_id] = now
        elif v.value_at > cursor[0]:
            if v.import_kwh < cursor[1] or v.export_kwh < cursor[2]:
                marks.append((v.meter_id, v.value_at, "drop"))
            cursors[v.meter_id] = now
        elif v.value_at == cursor[0]:
            if (v.import_kwh, v.export_kwh) != cursor[1:]:
                marks.append((v.meter_id, v.value_at, "version"))
                cursors[v.meter_id] = now
        else:
            marks.append((v.meter_id, v.value_at, "out_of_order"))
    return marks, cursors


def append_values(
    conn: Connection,
    values: Sequence[PushedValue],
    *,
    rejected: Sequence[Rejected] = (),
    counts: IntakeCounts | None = None,
    raw_schema: str = "raw",
) -> IntakeCounts:
    """Store one batch in the caller's transaction (partitions must exist: ensure_partitions).

    Values are kept in arrival order (a later version of an instant wins); identical rows
    are stored once. The transaction notifies ``vbatt_realtime`` once per meter. Three
    round trips whatever the batch's size: the cursors, the values with their quarter
    hours, then marks, cursors, live state, counts and notifications together.
    """
    raw = check_schema_name(raw_schema)
    counts = counts or IntakeCounts()
    received_at = datetime.now(UTC)
    meters = sorted({v.meter_id for v in values})
    if rejected:
        write_rejections(conn, rejected, source=SOURCE, load_id=None, raw_schema=raw)
    counts.rejected += len(rejected)
    params: dict = {"received_at": received_at, "minute_at": received_at}
    statements = []
    if meters:
        # one writer per meter at a time: the cursor comparison needs the latest state
        stored_cursors = {
            r[0]: (r[1], r[2], r[3])
            for r in conn.exec_driver_sql(
                "select pg_advisory_xact_lock(hashtext(%(key)s || m))"
                " from unnest(%(meters)s::text[]) as m order by m;"
                " select meter_id, reading_at, import_kwh, export_kwh"
                f" from {raw}.realtime_cursor where meter_id = any(%(meters)s::text[])",
                {"key": f"{raw}.realtime:", "meters": meters},
            )
        }
        marks, cursors = _marks(values, stored_cursors)
        stored, readings = conn.exec_driver_sql(
            "with incoming as ("
            " select * from unnest(%(m)s::text[], %(t)s::timestamptz[], %(i)s::float8[],"
            " %(e)s::float8[], %(p)s::float8[]) with ordinality as v(m, t, i, e, p, n)"
            "), stored as ("
            f" insert into {raw}.realtime_values (meter_id, value_at, import_kwh,"
            " export_kwh, power_kw, received_at, reading_seq)"
            " select m, t, i, e, p, %(received_at)s,"
            f" nextval(pg_get_serial_sequence('{raw}.meter_readings', 'reading_seq'))"
            " from incoming order by n"
            " on conflict do nothing"
            " returning meter_id, value_at, import_kwh, export_kwh"
            "), quarters as ("
            f" insert into {raw}.realtime_quarters as q"
            " (meter_id, interval_start, first_at, last_at, readings)"
            " select meter_id, date_bin(interval '15 minutes', value_at,"
            " timestamptz '2000-01-01 00:00:00+00'), min(value_at), max(value_at), count(*)"
            " from stored where import_kwh is not null and export_kwh is not null"
            " group by 1, 2"
            " on conflict (meter_id, interval_start) do update set"
            " first_at = least(q.first_at, excluded.first_at),"
            " last_at = greatest(q.last_at, excluded.last_at),"
            " readings = q.readings + excluded.readings,"
            " changed_xid = pg_current_xact_id()"
            " returning 1"
            ")"
            " select count(*), count(*) filter ("
            "  where import_kwh is not null and export_kwh is not null)"
            " from stored where (select count(*) from quarters) >= 0",
            {
                "received_at": received_at,
                "m": [v.meter_id for v in values],
                "t": [v.value_at for v in values],
                "i": [v.import_kwh for v in values],
                "e": [v.export_kwh for v in values],
                "p": [v.power_kw for v in values],
            },
        ).one()
        counts.rows_stored += stored
        counts.rows_duplicate += len(values) - stored
        counts.readings += readings
        counts.live_only += stored - readings
        if marks:
            statements.append(
                f"insert into {raw}.realtime_marks (meter_id, value_at, reason)"
                " select * from unnest(%(mark_m)s::text[], %(mark_t)s::timestamptz[],"
                " %(mark_r)s::text[])"
            )
            params |= {
                "mark_m": [m[0] for m in marks],
                "mark_t": [m[1] for m in marks],
                "mark_r": [m[2] for m in marks],
            }
        changed = {m: c for m, c in cursors.items() if stored_cursors.get(m) != c}
        if changed:
            statements.append(
                f"insert into {raw}.realtime_cursor as c"
                " select * from unnest(%(cur_m)s::text[], %(cur_t)s::timestamptz[],"
                " %(cur_i)s::float8[], %(cur_e)s::float8[])"
                " on conflict (meter_id) do update set reading_at = excluded.reading_at,"
                " import_kwh = excluded.import_kwh, export_kwh = excluded.export_kwh"
            )
            params |= {
                "cur_m": list(changed),
                "cur_t": [c[0] for c in changed.values()],
                "cur_i": [c[1] for c in changed.values()],
                "cur_e": [c[2] for c in changed.values()],
            }
        statements.append(_live_statement(raw, values, params))
    statements.append(_counts_statement(raw, counts, params))
    if meters:
        statements.append("select pg_notify(%(channel)s, m) from unnest(%(notify)s::text[]) as m")
        params |= {"channel": NOTIFY_CHANNEL, "notify": meters}
    conn.exec_driver_sql(";\n".join(statements), params)
    return counts


def _live_statement(raw: str, values: Sequence[PushedValue], params: dict) -> str:
    live: dict[str, list] = {}
    for v in sorted(values, key=lambda v: v.value_at):  # stable: arrival order within an instant
        state = live.setdefault(v.meter_id, [v.value_at, None, None, None])
        state[0] = v.value_at
        state[1] = v.power_kw if v.power_kw is not None else state[1]
        state[2] = v.import_kwh if v.import_kwh is not None else state[2]
        state[3] = v.export_kwh if v.export_kwh is not None else state[3]
    meters = sorted(live)
    params |= {
        "live_m": meters,
        "live_t": [live[m][0] for m in meters],
        "live_p": [live[m][1] for m in meters],
        "live_i": [live[m][2] for m in meters],
        "live_e": [live[m][3] for m in meters],
    }
    return (
        f"insert into {raw}.meter_live as l"
        " (meter_id, value_at, power_kw, import_kwh, export_kwh, received_at)"
        " select m, t, p, i, e, %(received_at)s from unnest(%(live_m)s::text[],"
        " %(live_t)s::timestamptz[], %(live_p)s::float8[], %(live_i)s::float8[],"
        " %(live_e)s::float8[]) as v(m, t, p, i, e)"
        " on conflict (meter_id) do update set value_at = excluded.value_at,"
        " power_kw = coalesce(excluded.power_kw, l.power_kw),"
        " import_kwh = coalesce(excluded.import_kwh, l.import_kwh),"
        " export_kwh = coalesce(excluded.export_kwh, l.export_kwh),"
        " received_at = excluded.received_at"
        " where excluded.value_at >= l.value_at"
    )


def _counts_statement(raw: str, counts: IntakeCounts, params: dict) -> str:
    names = list(IntakeCounts.__dataclass_fields__)
    params |= {f"n_{n}": getattr(counts, n) for n in names}
    return (
        f"insert into {raw}.realtime_intake as k (minute, {', '.join(names)})"
        " values (date_trunc('minute', %(minute_at)s::timestamptz),"
        f" {', '.join(f'%(n_{n})s' for n in names)})"
        " on conflict (minute) do update set "
        + ", ".join(f"{n} = k.{n} + excluded.{n}" for n in names)
    )


def store_batch(
    engine: Engine,
    values: Sequence[PushedValue],
    *,
    rejected: Sequence[Rejected] = (),
    counts: IntakeCounts | None = None,
    raw_schema: str = "raw",
) -> IntakeCounts:
    """Make the batch durable: partitions first, then one transaction (see append_values)."""
    ensure_partitions(
        engine, {v.value_at.astimezone(UTC).date() for v in values}, raw_schema=raw_schema
    )
    with engine.begin() as conn:
        return append_values(conn, values, rejected=rejected, counts=counts, raw_schema=raw_schema)


def latest_live(
    conn: Connection, meter_ids: list[str], *, raw_schema: str = "raw"
) -> dict[str, LiveValue]:
    """The latest live state of the meters that have one, by meter id."""
    raw = check_schema_name(raw_schema)
    if not meter_ids:
        return {}
    rows = conn.execute(
        text(
            "select meter_id, value_at, power_kw, import_kwh, export_kwh, received_at"
            f" from {raw}.meter_live where meter_id = any(cast(:m as text[]))"
        ),
        {"m": list(meter_ids)},
    )
    return {r.meter_id: LiveValue(*r) for r in rows}


def readings_between(
    conn: Connection, meter_id: str, start: datetime, end: datetime, *, raw_schema: str = "raw"
) -> list[tuple[datetime, float, float]]:
    """Every reading of the meter in [start, end] from all sources, ordered by time: one per
    instant, the newest ingested version (identical copies are one), quarantined ones
    left out unless released (as stg_raw__meter_readings and int_meter_readings do).
    Counters are as received (not rebased over drops)."""
    spans = readings_in_spans(conn, [(meter_id, start, end)], raw_schema=raw_schema)
    return spans[(meter_id, start, end)]


def readings_in_spans(
    conn: Connection,
    spans: Sequence[tuple[str, datetime, datetime]],
    *,
    raw_schema: str = "raw",
) -> dict[tuple[str, datetime, datetime], list[tuple[datetime, float, float]]]:
    """:func:`readings_between` for many (meter, start, end) spans in one query (the live
    view of a list of batteries); every span is a key of the answer."""
    raw = check_schema_name(raw_schema)
    spans = list(dict.fromkeys(spans))
    out: dict[tuple[str, datetime, datetime], list] = {span: [] for span in spans}
    if not spans:
        return out
    rows = conn.execute(
        text(
            "with spans as ("
            " select * from unnest(cast(:m as text[]), cast(:s as timestamptz[]),"
            " cast(:e as timestamptz[])) with ordinality as x(meter_id, s, e, k)"
            "), candidates as ("
            " select x.k, r.ts, r.import_kwh, r.export_kwh, r.reading_seq, r.meter_id"
            f" from spans x join {raw}.meter_readings r"
            " on r.meter_id = x.meter_id and r.ts between x.s and x.e"
            " union all"
            " select x.k, v.value_at, v.import_kwh, v.export_kwh, v.reading_seq, v.meter_id"
            f" from spans x join {raw}.realtime_values v"
            " on v.meter_id = x.meter_id and v.value_at between x.s and x.e"
            " where v.import_kwh is not null and v.export_kwh is not null"
            "), kept as ("
            " select * from candidates c where not exists ("
            f"  select 1 from {raw}.quarantined_readings q where q.meter_id = c.meter_id"
            "   and q.ts = c.ts and q.import_kwh = c.import_kwh"
            "   and q.export_kwh = c.export_kwh and q.released_at is null)"
            "), identical as ("
            " select k, ts, import_kwh, export_kwh, min(reading_seq) as reading_seq"
            " from kept group by k, ts, import_kwh, export_kwh"
            ")"
            " select distinct on (k, ts) k, ts, import_kwh, export_kwh from identical"
            " order by k, ts, reading_seq desc"
        ),
        {
            "m": [m for m, _, _ in spans],
            "s": [start for _, start, _ in spans],
            "e": [end for _, _, end in spans],
        },
    )
    for r in rows:
        out[spans[r.k - 1]].append((r.ts, r.import_kwh, r.export_kwh))
    return out


def compact_old_days(
    engine: Engine,
    retention_days: int,
    *,
    raw_schema: str = "raw",
    dbt_schema: str = "analytics",
    today: date | None = None,
) -> list[str]:
    """Replace full-resolution day partitions older than ``retention_days`` by the readings
    the ledger needs: those it took in (brackets, drops and their neighbours, every version
    of those instants) and the first and last of every quarter hour. A day is compacted
    only once the readings model has taken up every change to it (its realtime watermark
    is past the day's last change); live-only values (power without both registers) of
    such a day are not kept. Returns one line per day for people."""
    raw = check_schema_name(raw_schema)
    readings = f"{check_schema_name(dbt_schema + '_intermediate')}.int_meter_readings"
    today = today or datetime.now(UTC).date()
    cutoff = today - timedelta(days=retention_days)
    lines = []
    with engine.begin() as conn:
        if conn.execute(text("select to_regclass(:t)"), {"t": readings}).scalar() is None:
            return ["the ledger has not run yet: nothing is compacted"]
        watermark = conn.execute(
            text(f"select realtime_xmin from {readings} order by computed_at desc limit 1")
        ).scalar()
        days = sorted(d for d in _existing_partitions(conn, raw) if d < cutoff)
    for day in days:
        with engine.begin() as conn:
            conn.execute(text("select pg_advisory_xact_lock(hashtext('vbatt-realtime-ddl'))"))
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            span = {"s": start, "e": start + timedelta(days=1), "w": str(watermark or 0)}
            pending = conn.execute(
                text(
                    f"select count(*) from {raw}.realtime_quarters where interval_start >= :s"
                    " and interval_start < :e and changed_xid >= cast(:w as xid8)"
                ),
                span,
            ).scalar()
            if pending:
                lines.append(f"{day}: {pending} quarter hours not yet in the ledger, kept as is")
                continue
            part = f"{raw}.{partition_name(day)}"
            total = conn.execute(text(f"select count(*) from {part}")).scalar()
            conn.execute(
                text(
                    f"create temporary table kept on commit drop as select v.* from {part} v"
                    " where exists (select 1 from ("
                    f"  select meter_id, reading_at as at from {readings}"
                    "   where reading_at >= :s and reading_at < :e"
                    f"  union all select meter_id, first_at from {raw}.realtime_quarters"
                    "   where interval_start >= :s and interval_start < :e"
                    f"  union all select meter_id, last_at from {raw}.realtime_quarters"
                    "   where interval_start >= :s and interval_start < :e"
                    f"  union all select meter_id, value_at from {raw}.realtime_marks"
                    "   where value_at >= :s and value_at < :e"
                    " ) as needed where needed.meter_id = v.meter_id and needed.at = v.value_at)"
                    " and v.import_kwh is not null and v.export_kwh is not null"
                ),
                span,
            )
            kept = conn.execute(text("select count(*) from kept")).scalar()
            conn.exec_driver_sql(f"alter table {raw}.realtime_values detach partition {part}")
            conn.exec_driver_sql(f"drop table {part}")
            conn.exec_driver_sql(
                f"create table {part} partition of {raw}.realtime_values for values from"
                f" ('{start.isoformat()}') to ('{(start + timedelta(days=1)).isoformat()}')"
            )
            conn.execute(text(f"insert into {part} select * from kept"))
            lines.append(f"{day}: {total:,} realtime rows, {kept:,} kept for the ledger")
    return lines
