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
QUARTER = timedelta(minutes=15)


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


def _floor_quarter(ts: datetime) -> datetime:
    return ts.replace(minute=ts.minute - ts.minute % 15, second=0, microsecond=0)


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
    are stored once. The transaction notifies ``vbatt_realtime`` once per meter.
    """
    raw = check_schema_name(raw_schema)
    counts = counts or IntakeCounts()
    received_at = conn.execute(text("select clock_timestamp()")).scalar_one()
    meters = sorted({v.meter_id for v in values})
    if meters:
        # one writer per meter at a time: the cursor comparison below needs the latest state
        conn.execute(
            text(
                "select pg_advisory_xact_lock(hashtext(:key || m))"
                " from unnest(cast(:meters as text[])) as m order by m"
            ),
            {"key": f"{raw}.realtime:", "meters": meters},
        )
        stored_cursors = {
            r.meter_id: (r.reading_at, r.import_kwh, r.export_kwh)
            for r in conn.execute(
                text(
                    f"select meter_id, reading_at, import_kwh, export_kwh"
                    f" from {raw}.realtime_cursor where meter_id = any(cast(:m as text[]))"
                ),
                {"m": meters},
            )
        }
        marks, cursors = _marks(values, stored_cursors)
        inserted = conn.execute(
            text(
                f"insert into {raw}.realtime_values (meter_id, value_at, import_kwh,"
                " export_kwh, power_kw, received_at, reading_seq)"
                " select m, t, i, e, p, :received_at,"
                f" nextval(pg_get_serial_sequence('{raw}.meter_readings', 'reading_seq'))"
                " from unnest(cast(:m as text[]), cast(:t as timestamptz[]),"
                " cast(:i as float8[]), cast(:e as float8[]), cast(:p as float8[]))"
                " with ordinality as v(m, t, i, e, p, n) order by n"
                " on conflict do nothing"
                " returning meter_id, value_at, import_kwh, export_kwh"
            ),
            {
                "received_at": received_at,
                "m": [v.meter_id for v in values],
                "t": [v.value_at for v in values],
                "i": [v.import_kwh for v in values],
                "e": [v.export_kwh for v in values],
                "p": [v.power_kw for v in values],
            },
        ).all()
        readings = [r for r in inserted if r.import_kwh is not None and r.export_kwh is not None]
        counts.rows_stored += len(inserted)
        counts.rows_duplicate += len(values) - len(inserted)
        counts.readings += len(readings)
        counts.live_only += len(inserted) - len(readings)
        _store_quarters(conn, raw, readings)
        if marks:
            conn.execute(
                text(
                    f"insert into {raw}.realtime_marks (meter_id, value_at, reason)"
                    " select * from unnest(cast(:m as text[]), cast(:t as timestamptz[]),"
                    " cast(:r as text[]))"
                ),
                {
                    "m": [m[0] for m in marks],
                    "t": [m[1] for m in marks],
                    "r": [m[2] for m in marks],
                },
            )
        changed = {m: c for m, c in cursors.items() if stored_cursors.get(m) != c}
        if changed:
            conn.execute(
                text(
                    f"insert into {raw}.realtime_cursor as c"
                    " select * from unnest(cast(:m as text[]), cast(:t as timestamptz[]),"
                    " cast(:i as float8[]), cast(:e as float8[]))"
                    " on conflict (meter_id) do update set reading_at = excluded.reading_at,"
                    " import_kwh = excluded.import_kwh, export_kwh = excluded.export_kwh"
                ),
                {
                    "m": list(changed),
                    "t": [c[0] for c in changed.values()],
                    "i": [c[1] for c in changed.values()],
                    "e": [c[2] for c in changed.values()],
                },
            )
        _store_live(conn, raw, values, received_at)
    if rejected:
        write_rejections(conn, rejected, source=SOURCE, load_id=None, raw_schema=raw)
    counts.rejected += len(rejected)
    _store_counts(conn, raw, counts, received_at)
    if meters:
        conn.execute(
            text("select pg_notify(:channel, m) from unnest(cast(:meters as text[])) as m"),
            {"channel": NOTIFY_CHANNEL, "meters": meters},
        )
    return counts


def _store_quarters(conn: Connection, raw: str, readings: Sequence) -> None:
    quarters: dict[tuple[str, datetime], list] = {}
    for r in readings:
        key = (r.meter_id, _floor_quarter(r.value_at.astimezone(UTC)))
        q = quarters.get(key)
        if q is None:
            quarters[key] = [r.value_at, r.value_at, 1]
        else:
            q[0], q[1], q[2] = min(q[0], r.value_at), max(q[1], r.value_at), q[2] + 1
    if not quarters:
        return
    keys = sorted(quarters)
    conn.execute(
        text(
            f"insert into {raw}.realtime_quarters as q"
            " (meter_id, interval_start, first_at, last_at, readings)"
            " select * from unnest(cast(:m as text[]), cast(:s as timestamptz[]),"
            " cast(:f as timestamptz[]), cast(:l as timestamptz[]), cast(:n as bigint[]))"
            " on conflict (meter_id, interval_start) do update set"
            " first_at = least(q.first_at, excluded.first_at),"
            " last_at = greatest(q.last_at, excluded.last_at),"
            " readings = q.readings + excluded.readings,"
            " changed_xid = pg_current_xact_id()"
        ),
        {
            "m": [k[0] for k in keys],
            "s": [k[1] for k in keys],
            "f": [quarters[k][0] for k in keys],
            "l": [quarters[k][1] for k in keys],
            "n": [quarters[k][2] for k in keys],
        },
    )


def _store_live(
    conn: Connection, raw: str, values: Sequence[PushedValue], received_at: datetime
) -> None:
    live: dict[str, list] = {}
    for v in sorted(values, key=lambda v: v.value_at):  # stable: arrival order within an instant
        state = live.setdefault(v.meter_id, [v.value_at, None, None, None])
        state[0] = v.value_at
        state[1] = v.power_kw if v.power_kw is not None else state[1]
        state[2] = v.import_kwh if v.import_kwh is not None else state[2]
        state[3] = v.export_kwh if v.export_kwh is not None else state[3]
    meters = sorted(live)
    conn.execute(
        text(
            f"insert into {raw}.meter_live as l"
            " (meter_id, value_at, power_kw, import_kwh, export_kwh, received_at)"
            " select m, t, p, i, e, :received_at from unnest(cast(:m as text[]),"
            " cast(:t as timestamptz[]), cast(:p as float8[]), cast(:i as float8[]),"
            " cast(:e as float8[])) as v(m, t, p, i, e)"
            " on conflict (meter_id) do update set value_at = excluded.value_at,"
            " power_kw = coalesce(excluded.power_kw, l.power_kw),"
            " import_kwh = coalesce(excluded.import_kwh, l.import_kwh),"
            " export_kwh = coalesce(excluded.export_kwh, l.export_kwh),"
            " received_at = excluded.received_at"
            " where excluded.value_at >= l.value_at"
        ),
        {
            "received_at": received_at,
            "m": meters,
            "t": [live[m][0] for m in meters],
            "p": [live[m][1] for m in meters],
            "i": [live[m][2] for m in meters],
            "e": [live[m][3] for m in meters],
        },
    )


def _store_counts(conn: Connection, raw: str, counts: IntakeCounts, at: datetime) -> None:
    names = [n for n in IntakeCounts.__dataclass_fields__]
    conn.execute(
        text(
            f"insert into {raw}.realtime_intake as k (minute, {', '.join(names)})"
            f" values (date_trunc('minute', cast(:at as timestamptz)),"
            f" {', '.join(':' + n for n in names)})"
            " on conflict (minute) do update set "
            + ", ".join(f"{n} = k.{n} + excluded.{n}" for n in names)
        ),
        {"at": at, **{n: getattr(counts, n) for n in names}},
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
    raw = check_schema_name(raw_schema)
    rows = conn.execute(
        text(
            "with candidates as ("
            " select ts, import_kwh, export_kwh, reading_seq from"
            f" {raw}.meter_readings where meter_id = :m and ts between :s and :e"
            " union all"
            " select value_at, import_kwh, export_kwh, reading_seq from"
            f" {raw}.realtime_values where meter_id = :m and value_at between :s and :e"
            " and import_kwh is not null and export_kwh is not null"
            "), kept as ("
            " select * from candidates c where not exists ("
            f"  select 1 from {raw}.quarantined_readings q where q.meter_id = :m"
            "   and q.ts = c.ts and q.import_kwh = c.import_kwh"
            "   and q.export_kwh = c.export_kwh and q.released_at is null)"
            "), identical as ("
            " select ts, import_kwh, export_kwh, min(reading_seq) as reading_seq"
            " from kept group by ts, import_kwh, export_kwh"
            ")"
            " select distinct on (ts) ts, import_kwh, export_kwh from identical"
            " order by ts, reading_seq desc"
        ),
        {"m": meter_id, "s": start, "e": end},
    )
    return [(r.ts, r.import_kwh, r.export_kwh) for r in rows]
