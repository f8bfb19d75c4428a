"""Read-only SQL over the marts, always through what a key may see.

Every battery-level query first asks ``raw.batteries`` whether the battery belongs to the
caller's partner or customer (``visible``); the routers answer 404 when it does not, the
same as for a battery that does not exist. The ledger logic stays in dbt: this module
only selects, sums and buckets rows the marts already hold. Month of intervals, day rows
and the latest interval are index range scans on (battery_id, interval_start) and
(battery_id, local_date); see docs/api.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, create_engine, text

from vbatt.api.keys import Principal, hash_key, lookup_sql
from vbatt.api.live_rule import local_midnight
from vbatt.api.models import (
    Battery,
    BatterySettlement,
    Day,
    Fleet,
    FleetTotals,
    Interval,
    SeriesPoint,
    Settlement,
)
from vbatt.battery_config import shown
from vbatt.warehouse.embedded import normalise_url
from vbatt.warehouse.migrate import check_schema_name

INTERVAL = timedelta(minutes=15)

# today's date where the battery ``b`` is: its dates (start, end, valid_from) are local
# dates, and the sessions speak UTC, so current_date is another day for hours each night
LOCAL_TODAY = "cast(now() at time zone b.timezone as date)"

# The years a date or instant in a query parameter may name (docs/api.md, "Refused
# reads"): wider than the 2000-2199 of a battery's configured dates, so every stored row
# stays reachable, and far from the ends of Python's datetime (years 1 to 9999), so the
# arithmetic on them (a period's last day, a look-back, a time zone's offset) cannot
# overflow into a 500.
QUERY_YEARS = (1900, 2999)


# the local clock's origin: the grid of ValuesInPastMultiple counts wall-clock minutes from it
LOCAL_EPOCH = datetime(1970, 1, 1)
MINUTES_PER_DAY = 1440


def on_local_grid(at: datetime, timezone: str, step_minutes: int) -> bool:
    """Whether the instant ``at`` is on the grid of ``step_minutes`` of the clock on the wall
    in ``timezone``: its local time, in minutes from 1970-01-01 00:00 local, a multiple of
    the step. So 1440 is every local midnight, the start of battery_daily's local day (23
    or 25 hours apart over a change of summer time; UTC's midnight is 01:00 or 02:00 in
    Zurich), 60 every full local hour (02:00 twice when the clocks go back) and 15 every
    quarter hour (today's time zones are all whole quarter hours from UTC). A step of whole
    days takes each local day's first instant (live_rule.local_midnight): where summer time
    starts at midnight (America/Santiago, America/Havana) that day has no 00:00, and its
    value would otherwise be missing."""
    wall = at.astimezone(ZoneInfo(timezone)).replace(tzinfo=None)
    if step_minutes % MINUTES_PER_DAY == 0:
        days = (wall.date() - LOCAL_EPOCH.date()).days
        first = local_midnight(wall.date(), timezone)
        return at == first and days % (step_minutes // MINUTES_PER_DAY) == 0
    return (wall - LOCAL_EPOCH) % timedelta(minutes=step_minutes) == timedelta(0)


def in_query_years(value: date | datetime) -> bool:
    """Whether ``value`` (a date, or an instant in its own offset) lies in QUERY_YEARS."""
    return QUERY_YEARS[0] <= value.year <= QUERY_YEARS[1]


def out_of_query_years(value: str) -> str:
    """What to say about a query parameter's ``value`` outside QUERY_YEARS."""
    return (
        f"out of range: {shown(value)}; dates and instants must lie in the years"
        f" {QUERY_YEARS[0]} to {QUERY_YEARS[1]}"
    )


def read_only_engine(url: str) -> Engine:
    """Sessions that cannot write (default_transaction_read_only) and speak UTC."""
    return create_engine(
        normalise_url(url),
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        connect_args={"options": "-c default_transaction_read_only=on -c timezone=UTC"},
    )


def write_engine(url: str) -> Engine:
    """The write API's own small pool (reads keep their read-only sessions)."""
    return create_engine(
        normalise_url(url),
        pool_pre_ping=True,
        pool_size=2,
        max_overflow=4,
        connect_args={"options": "-c timezone=UTC"},
    )


def _columns(model: type, prefix: str) -> str:
    return ", ".join(f"{prefix}.{name}" for name in model.model_fields)


def _json_columns(model: type, prefix: str) -> str:
    """The model's columns formatted by PostgreSQL as the other native routes (pydantic)
    write them, for a page built with json_agg: instants ``YYYY-MM-DDTHH:MM:SSZ`` (json_agg
    alone writes ``+00:00``) and floats with a fraction (``0.0``, where json_agg writes
    ``0``; NaN and infinities, which the ledger never holds, as null like pydantic)."""
    out = []
    for name, field in model.model_fields.items():
        column = f"{prefix}.{name}"
        if field.annotation is datetime:
            column = f"to_char({column} at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
        elif field.annotation is float:  # whole numbers below 1e15 print without exponent
            column = (
                f"case when {column} in ('NaN', 'Infinity', '-Infinity') then null"
                f" when {column} = trunc({column}) and abs({column}) < 1e15"
                f" then cast(cast({column} as text) || '.0' as json) else to_json({column}) end"
            )
        out.append(f"{column} as {name}")
    return ", ".join(out)


@dataclass(frozen=True)
class Registers:
    """The battery's registers at an instant (end of a computed interval)."""

    at: datetime
    level_kwh: float
    charged_total_kwh: float
    discharged_total_kwh: float
    power_kw: float


class Marts:
    """The queries of the API over one warehouse (marts schema + raw schema)."""

    def __init__(self, engine: Engine, marts_schema: str, raw_schema: str = "raw") -> None:
        self.engine = engine
        self.marts = check_schema_name(marts_schema)
        self.raw = check_schema_name(raw_schema)

    def connect(self) -> Connection:
        return self.engine.connect()

    # -- who is asking ---------------------------------------------------------------

    def principal(self, conn: Connection, key: str) -> Principal | None:
        row = conn.execute(text(lookup_sql(self.raw)), {"hash": hash_key(key)}).first()
        if row is None:
            return None
        return Principal(
            row.partner_id,
            row.customer_id,
            can_write=row.scope == "write",
            key_id=row.key_id,
            key_prefix=row.key_prefix,
        )

    def _scope(self, alias: str = "b") -> str:
        return (
            f"({alias}.partner_id = :partner"
            f" and (cast(:customer as text) is null or {alias}.customer_id = :customer))"
        )

    @staticmethod
    def _who(p: Principal) -> dict[str, str | None]:
        return {"partner": p.partner_id, "customer": p.customer_id}

    def visible(self, conn: Connection, p: Principal, battery_id: str) -> str | None:
        """The battery's timezone if ``p`` may see it, else None (404 either way)."""
        return conn.execute(
            text(
                f"select b.timezone from {self.raw}.batteries b"
                f" where b.battery_id = :id and {self._scope()}"
            ),
            {"id": battery_id, **self._who(p)},
        ).scalar()

    # -- batteries -----------------------------------------------------------------------

    # the terms a battery shows: those of the version in force on today's local date (the
    # first version while it has not started; raw.batteries holds the newest version's)
    VERSIONED = ("name", "meter_id", "capacity_kwh")

    def _battery_sql(self) -> str:
        fixed = ("battery_id", "partner_id", "customer_id", "timezone", "start_date", "end_date")
        terms = [f"coalesce(v.{c}, b.{c}) as {c}" for c in self.VERSIONED]
        taken = set(fixed) | set(self.VERSIONED)
        reg = [f"r.{c}" for c in Battery.model_fields if c not in taken]
        return (
            f"select {', '.join([f'b.{c}' for c in fixed] + terms + reg)}"
            f" from {self.raw}.batteries b"
            " left join lateral ("
            f"  select v.name, v.meter_id, v.capacity_kwh from {self.raw}.battery_versions v"
            "  where v.battery_id = b.battery_id"
            f"   and v.valid_from <= greatest(b.start_date, {LOCAL_TODAY})"
            "  order by v.valid_from desc, v.record_id desc limit 1) v on true"
            f" left join {self.marts}.battery_registers r on r.battery_id = b.battery_id"
            f" where {self._scope()}"
        )

    def _search_sql(self) -> str:
        """The condition of ``q`` on the batteries of :meth:`_battery_sql` (alias ``v``: the
        version in force, shown).

        A name or a meter matches when it is the one in force today (the battery's own
        timezone, as shown) or one of an earlier version: staff search by the names and
        meters they remember, and a customer renamed last year is still found under the old
        name (the answer shows today's). A version not yet in force does not match: its
        name is not the battery's yet, and a hit on a name the answer does not show would
        look wrong. Versions are those ``GET /v1/batteries/{id}/versions`` lists (the newest
        record of each valid_from): a record replaced by a correction never matches."""
        record = (
            f"select 1 from {self.raw}.battery_versions s where s.battery_id = b.battery_id"
            f" and s.valid_from <= greatest(b.start_date, {LOCAL_TODAY})"
            " and (s.name ilike :q or s.meter_id ilike :q)"
            f" and not exists (select 1 from {self.raw}.battery_versions c"
            "  where c.battery_id = s.battery_id and c.valid_from = s.valid_from"
            "  and c.record_id > s.record_id)"
        )
        return (
            " and (b.battery_id ilike :q or b.customer_id ilike :q"
            " or coalesce(v.name, b.name) ilike :q or coalesce(v.meter_id, b.meter_id) ilike :q"
            f" or exists ({record}))"
        )

    def batteries(
        self, conn: Connection, p: Principal, *, q: str | None, after: str | None, limit: int
    ) -> list[Battery]:
        """The key's batteries by id, after ``after``; ``q`` searches (:meth:`_search_sql`)."""
        sql = self._battery_sql()
        params: dict = {**self._who(p), "limit": limit}
        if q:
            sql += self._search_sql()
            params["q"] = (
                "%" + q.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"
            )
        if after is not None:
            sql += " and b.battery_id > :after"
            params["after"] = after
        sql += " order by b.battery_id limit :limit"
        return [Battery.model_validate(r._asdict()) for r in conn.execute(text(sql), params)]

    def battery(self, conn: Connection, p: Principal, battery_id: str) -> Battery | None:
        row = conn.execute(
            text(self._battery_sql() + " and b.battery_id = :id"),
            {**self._who(p), "id": battery_id},
        ).first()
        return Battery.model_validate(row._asdict()) if row else None

    # -- the fleet: all the key's batteries ------------------------------------------------

    def fleet(self, conn: Connection, p: Principal) -> Fleet:
        """Counts, the level stored now and the totals of each battery's latest period.

        Active: no end_date, or one after today's date in the battery's own timezone (it
        stops at 00:00 local that day); the session's UTC date would count a battery east
        of UTC as active for hours after its last day, one west of it as ended early."""
        row = conn.execute(
            text(
                "with mine as ("
                f"  select b.battery_id, b.end_date, {LOCAL_TODAY} as today"
                f"  from {self.raw}.batteries b where {self._scope()}),"
                " current as ("
                "  select distinct on (s.battery_id) s.*"
                f"  from {self.marts}.settlement_periods s join mine using (battery_id)"
                "  order by s.battery_id, s.period_start desc)"
                " select (select count(*) from mine) as batteries,"
                "  (select count(*) from mine where end_date is null"
                "   or end_date > today) as active_batteries,"
                "  (select coalesce(sum(r.level_kwh), 0)"
                f"   from {self.marts}.battery_registers r join mine using (battery_id))"
                "   as level_kwh,"
                "  (select count(*) from current) as periods,"
                "  coalesce(sum(c.charge_kwh), 0) as charge_kwh,"
                "  coalesce(sum(c.discharge_kwh), 0) as discharge_kwh,"
                "  coalesce(sum(c.overflow_kwh), 0) as overflow_kwh,"
                "  coalesce(sum(c.shortfall_kwh), 0) as shortfall_kwh,"
                "  coalesce(sum(c.forfeited_kwh), 0) as forfeited_kwh"
                " from current c"
            ),
            self._who(p),
        ).one()
        totals = FleetTotals.model_validate({k: getattr(row, k) for k in FleetTotals.model_fields})
        return Fleet(
            batteries=row.batteries,
            active_batteries=row.active_batteries,
            level_kwh=row.level_kwh,
            current_periods=totals,
        )

    def fleet_settlements(
        self,
        conn: Connection,
        p: Principal,
        *,
        after: tuple[str, datetime] | None,
        limit: int | None,
    ) -> list[BatterySettlement]:
        """Every settlement period of the key's batteries, by battery and period."""
        sql = (
            f"select s.battery_id, {_columns(Settlement, 's')}"
            f" from {self.marts}.settlement_periods s"
            f" join {self.raw}.batteries b on b.battery_id = s.battery_id where {self._scope()}"
        )
        params: dict = self._who(p)
        if after is not None:
            sql += " and (s.battery_id, s.period_start) > (:after_battery, :after_start)"
            params |= {"after_battery": after[0], "after_start": after[1]}
        sql += " order by s.battery_id, s.period_start"
        if limit is not None:
            sql += " limit :limit"
            params["limit"] = limit
        rows = conn.execute(text(sql), params)
        return [BatterySettlement.model_validate(r._asdict()) for r in rows]

    # -- rows of one battery (call visible() first) ----------------------------------------

    def _range_sql(self, model, relation, key, battery_id, start, end, after, limit):
        """One battery's rows of a mart in [start, end), after a paging key, in key order."""
        sql = (
            f"select {_columns(model, 'm')} from {self.marts}.{relation} m where m.battery_id = :id"
        )
        params: dict = {"id": battery_id}
        for clause, name, value in (
            (f"m.{key} >= :start", "start", start),
            (f"m.{key} < :end", "end", end),
            (f"m.{key} > :after", "after", after),
        ):
            if value is not None:
                sql += f" and {clause}"
                params[name] = value
        sql += f" order by m.{key}"
        if limit is not None:
            sql += " limit :limit"
            params["limit"] = limit
        return sql, params

    def intervals(
        self,
        conn: Connection,
        battery_id: str,
        *,
        start: datetime | None,
        end: datetime | None,
        after: datetime | None,
        limit: int | None,
    ) -> Iterator[Interval]:
        sql, params = self._range_sql(
            Interval, "battery_intervals", "interval_start", battery_id, start, end, after, limit
        )
        if limit is None:  # a download of any length: a server-side cursor, 2000 at a time
            conn = conn.execution_options(stream_results=True, yield_per=2000)
        result = conn.execute(text(sql), params)
        return (Interval.model_validate(r._asdict()) for r in result)

    def intervals_json(
        self,
        conn: Connection,
        battery_id: str,
        *,
        start: datetime | None,
        end: datetime | None,
        after: datetime | None,
        limit: int,
    ) -> tuple[str, int, datetime | None]:
        """One page as a JSON array built by PostgreSQL (json_agg is C; turning 3,000 rows
        into Python objects and back is most of a month's cost), its length and last key.
        The columns are formatted in SQL as the other routes write them (_json_columns);
        the fixed-width UTC text of interval_start sorts as the instants do."""
        sql = (
            f"select {_json_columns(Interval, 'i')} from {self.marts}.battery_intervals i"
            " where i.battery_id = :id"
        )
        params: dict = {"id": battery_id, "limit": limit}
        for clause, name, value in (
            ("i.interval_start >= :start", "start", start),
            ("i.interval_start < :end", "end", end),
            ("i.interval_start > :after", "after", after),
        ):
            if value is not None:
                sql += f" and {clause}"
                params[name] = value
        sql += " order by i.interval_start limit :limit"
        row = conn.execute(
            text(
                'select count(*) as n, max(page.interval_start collate "C") as last,'
                " coalesce(json_agg(page order by page.interval_start collate \"C\"), '[]')::text"
                f" as items from ({sql}) as page"
            ),
            params,
        ).one()
        return row.items, row.n, datetime.fromisoformat(row.last) if row.last else None

    def days(
        self,
        conn: Connection,
        battery_id: str,
        *,
        start: date | None,
        end: date | None,
        after: date | None,
        limit: int | None,
    ) -> list[Day]:
        sql, params = self._range_sql(
            Day, "battery_daily", "local_date", battery_id, start, end, after, limit
        )
        return [Day.model_validate(r._asdict()) for r in conn.execute(text(sql), params)]

    def settlements(
        self, conn: Connection, battery_id: str, *, after: datetime | None, limit: int | None
    ) -> list[Settlement]:
        sql = (
            f"select {_columns(Settlement, 's')} from {self.marts}.settlement_periods s"
            " where s.battery_id = :id"
        )
        params: dict = {"id": battery_id}
        if after is not None:
            sql += " and s.period_start > :after"
            params["after"] = after
        sql += " order by s.period_start"
        if limit is not None:
            sql += " limit :limit"
            params["limit"] = limit
        return [Settlement.model_validate(r._asdict()) for r in conn.execute(text(sql), params)]

    def series(
        self,
        conn: Connection,
        battery_id: str,
        timezone: str,
        first: date,
        last: date,
        resolution_minutes: int,
    ) -> tuple[datetime, datetime, list[SeriesPoint]]:
        """Chart buckets over local days first..last; a day per bucket reads battery_daily."""
        bounds = conn.execute(
            text(
                "select cast(:first as timestamp) at time zone :tz as start,"
                " cast(:after_last as timestamp) at time zone :tz as end"
            ),
            {"first": first, "after_last": last + timedelta(days=1), "tz": timezone},
        ).one()
        params = {"id": battery_id, "start": bounds.start, "end": bounds.end}
        if resolution_minutes >= 24 * 60:
            sql = (
                "select cast(d.local_date as timestamp) at time zone :tz as t,"
                " d.import_kwh, d.export_kwh, d.charge_kwh, d.discharge_kwh,"
                " (d.charge_kwh - d.discharge_kwh) / nullif(d.intervals * :hours, 0) as power_kw,"
                " d.level_end_kwh as level_kwh, d.intervals, d.estimated_intervals"
                f" from {self.marts}.battery_daily d where d.battery_id = :id"
                " and d.local_date >= :first and d.local_date <= :last order by d.local_date"
            )
            params |= {
                "tz": timezone,
                "first": first,
                "last": last,
                "hours": INTERVAL.total_seconds() / 3600,
            }
        else:
            sql = (
                "select date_bin(cast(:bucket as interval), i.interval_start,"
                " timestamptz '2000-01-01 00:00:00+00') as t,"
                " sum(i.import_kwh) as import_kwh, sum(i.export_kwh) as export_kwh,"
                " sum(i.charge_kwh) as charge_kwh, sum(i.discharge_kwh) as discharge_kwh,"
                " avg(i.power_kw) as power_kw,"
                " (array_agg(i.level_kwh order by i.interval_start desc))[1] as level_kwh,"
                " count(*) as intervals, count(*) filter (where i.estimated) as estimated_intervals"
                f" from {self.marts}.battery_intervals i where i.battery_id = :id"
                " and i.interval_start >= :start and i.interval_start < :end"
                " group by 1 order by 1"
            )
            params["bucket"] = f"{resolution_minutes} minutes"
        points = [SeriesPoint.model_validate(r._asdict()) for r in conn.execute(text(sql), params)]
        return bounds.start, bounds.end, points

    # -- the battery as a meter at an instant (smart-me MeterValues, ValuesInPastMultiple) --

    def _totals_before_sql(self) -> str:
        """Charge and discharge summed over intervals ending at or before :at: whole local
        days from battery_daily plus the quarter hours of :at's own local day."""
        return (
            "with day as (select (cast(:at as timestamptz) at time zone :tz)::date as d),"
            " whole as ("
            "  select coalesce(sum(d.charge_kwh), 0) as charged,"
            "         coalesce(sum(d.discharge_kwh), 0) as discharged"
            f"  from {self.marts}.battery_daily d, day"
            "  where d.battery_id = :id and d.local_date < day.d),"
            " part as ("
            "  select coalesce(sum(i.charge_kwh), 0) as charged,"
            "         coalesce(sum(i.discharge_kwh), 0) as discharged"
            f"  from {self.marts}.battery_intervals i, day"
            "  where i.battery_id = :id"
            "    and i.interval_start >= cast(day.d as timestamp) at time zone :tz"
            "    and i.interval_end <= :at)"
            " select whole.charged + part.charged as charged,"
            "        whole.discharged + part.discharged as discharged from whole, part"
        )

    def registers_at(
        self, conn: Connection, battery_id: str, timezone: str, at: datetime
    ) -> Registers | None:
        """The registers at the end of the last interval ending at or before ``at``."""
        last = conn.execute(
            text(
                "select i.interval_end, i.level_kwh, i.power_kw"
                f" from {self.marts}.battery_intervals i"
                " where i.battery_id = :id and i.interval_start <= :latest_start"
                " order by i.interval_start desc limit 1"
            ),
            {"id": battery_id, "latest_start": at - INTERVAL},
        ).first()
        if last is None:
            return None
        totals = conn.execute(
            text(self._totals_before_sql()),
            {"id": battery_id, "tz": timezone, "at": last.interval_end},
        ).one()
        return Registers(
            last.interval_end, last.level_kwh, totals.charged, totals.discharged, last.power_kw
        )

    def registers_series(
        self,
        conn: Connection,
        battery_id: str,
        timezone: str,
        start: datetime,
        end: datetime,
        step_minutes: int,
        limit: int,
    ) -> list[Registers]:
        """Registers at every interval end in [start, end] on the step's grid of the
        battery's local clock (:func:`on_local_grid`)."""
        epoch_s = start.timestamp()
        quarter_s = INTERVAL.total_seconds()
        first_end = datetime.fromtimestamp(-(-epoch_s // quarter_s) * quarter_s, start.tzinfo)
        first_start = first_end - INTERVAL  # the interval ending at the first boundary
        base = conn.execute(
            text(self._totals_before_sql()), {"id": battery_id, "tz": timezone, "at": first_start}
        ).one()
        rows = conn.execute(
            text(
                "select i.interval_end, i.level_kwh, i.power_kw,"
                " sum(i.charge_kwh) over w as charged, sum(i.discharge_kwh) over w as discharged"
                f" from {self.marts}.battery_intervals i"
                " where i.battery_id = :id and i.interval_start >= :first_start"
                " and i.interval_start <= :last_start"
                " window w as (order by i.interval_start)"
                " order by i.interval_start"
            ),
            {"id": battery_id, "first_start": first_start, "last_start": end - INTERVAL},
        )
        out: list[Registers] = []
        for r in rows:
            if not on_local_grid(r.interval_end, timezone, step_minutes):
                continue
            out.append(
                Registers(
                    r.interval_end,
                    r.level_kwh,
                    base.charged + r.charged,
                    base.discharged + r.discharged,
                    r.power_kw,
                )
            )
            if len(out) >= limit:
                break
        return out
