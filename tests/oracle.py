"""Test oracle: a small, slow, obviously-correct Python reading of the rule book
(shared/spec/virtual-battery.md of the project specification).

It is independent of the product (dbt SQL on PostgreSQL) and is used by property tests
that compare the SQL output with it. Standard library only; plain floats.

Public API
    meter_intervals(readings) -> list[OracleInterval]          Step 1
    conflicts(readings) -> list[(meter_id, ts)]                 Step 1.1
    Battery(...), Version(...)                                  Inputs, battery configuration;
                                                                "Configuration over time"
    start_instant(battery), end_instant(battery)                Step 2 (end: None = infinity)
    version_spans(battery) -> list[VersionSpan]                 the versions' validity as instants
    reset_instants(battery, until) -> list[datetime]            Step 2, across versions
    ledger(battery, intervals) -> list[OracleRow]               Step 2
    daily(battery, rows) -> list[OracleDay]                     "Daily and period views"
    registers(rows) -> dict                                     "The battery as a meter"
    settlement_periods(battery, rows) -> list[OraclePeriod]     "Daily and period views"
    check_invariants(battery, rows, tol=1e-9)                   Step 2 invariants

A reading is (meter_id, ts, import_kwh, export_kwh, ingested_order); ts must be tz-aware;
a larger ingested_order means ingested later (assumed unique per meter and ts).
All datetimes returned are tz-aware UTC.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

QUARTER = timedelta(minutes=15)


def _utc(ts: datetime) -> datetime:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"timestamp must be tz-aware: {ts!r}")
    return ts.astimezone(UTC)


# --------------------------------------------------------------------------------------
# Step 1: interval energy from counters
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OracleInterval:
    meter_id: str
    interval_start: datetime  # UTC, a quarter hour; the interval is [start, start + 15 min)
    import_kwh: float
    export_kwh: float
    estimated: bool


def _resolve(readings):
    """Step 1.1: one reading per (meter, ts); returns ({meter: [(ts, imp, exp)] by ts}, conflicts).

    Same ts and same values count once; same ts with different values is a conflict and
    the newest ingested reading (largest ingested_order) is used.
    """
    groups: dict[tuple[str, datetime], list[tuple[int, float, float]]] = {}
    for meter_id, ts, imp, exp, order in readings:
        groups.setdefault((meter_id, _utc(ts)), []).append((order, float(imp), float(exp)))
    series: dict[str, list[tuple[datetime, float, float]]] = {}
    found: list[tuple[str, datetime]] = []
    for (meter_id, ts), group in sorted(groups.items(), key=lambda kv: kv[0]):
        if len({(imp, exp) for _, imp, exp in group}) > 1:
            found.append((meter_id, ts))
        _, imp, exp = max(group, key=lambda g: g[0])  # newest ingested wins
        series.setdefault(meter_id, []).append((ts, imp, exp))
    return series, found


def conflicts(readings) -> list[tuple[str, datetime]]:
    """Step 1.1: the (meter_id, ts UTC) with the same ts but different values, sorted."""
    return _resolve(readings)[1]


def _rebase(values: list[float]) -> tuple[list[float], list[bool]]:
    """Step 1.2: a reading lower than the one before it is a counter drop; every later value is
    raised by the drop, so the rebased series never decreases and the drop segment counts 0.

    Returns the rebased values and, per reading i, whether segment (i-1, i) has a drop.
    """
    rebased, drops, offset = [values[0]], [False], 0.0
    for prev, cur in zip(values, values[1:], strict=False):
        drop = cur < prev
        if drop:
            offset += prev - cur
        rebased.append(cur + offset)
        drops.append(drop)
    return rebased, drops


def _value_at(times: list[datetime], values: list[float], b: datetime) -> tuple[float, bool]:
    """Step 1.3: counter value at boundary b (times[0] <= b <= times[-1]).

    The reading at b if there is one, else linear interpolation between the last reading
    before b and the first after b. The flag says (Step 1.5) it was interpolated between
    two readings more than 15 minutes apart.
    """
    i = bisect.bisect_left(times, b)
    if times[i] == b:
        return values[i], False
    t0, t1, v0, v1 = times[i - 1], times[i], values[i - 1], values[i]
    return v0 + (v1 - v0) * ((b - t0) / (t1 - t0)), (t1 - t0) > QUARTER


def _ceil_quarter(ts: datetime) -> datetime:
    floor = ts.replace(minute=ts.minute - ts.minute % 15, second=0, microsecond=0)
    return floor if floor == ts else floor + QUARTER


def meter_intervals(readings) -> list[OracleInterval]:
    """Step 1: all computable 15-minute intervals, sorted by (meter_id, interval_start)."""
    series, _ = _resolve(readings)
    out: list[OracleInterval] = []
    for meter_id, rows in sorted(series.items()):
        times = [ts for ts, _, _ in rows]
        imp, imp_drop = _rebase([i for _, i, _ in rows])
        exp, exp_drop = _rebase([e for _, _, e in rows])
        # Step 1.5: open segments (t[i-1], t[i]) with a counter drop in either register
        drop_segments = [
            (times[i - 1], times[i]) for i in range(1, len(times)) if imp_drop[i] or exp_drop[i]
        ]
        # Step 1.4: both boundaries within [first reading, last reading]
        b = _ceil_quarter(times[0])
        while b + QUARTER <= times[-1]:
            e = b + QUARTER
            imp_b, est_b = _value_at(times, imp, b)
            imp_e, est_e = _value_at(times, imp, e)
            exp_b, _ = _value_at(times, exp, b)  # same times, so the same flags as import
            exp_e, _ = _value_at(times, exp, e)
            # [b, e) overlaps the open span (s0, s1) iff b < s1 and s0 < e
            on_drop = any(b < s1 and s0 < e for s0, s1 in drop_segments)
            out.append(
                OracleInterval(meter_id, b, imp_e - imp_b, exp_e - exp_b, est_b or est_e or on_drop)
            )
            b = e
    return out


# --------------------------------------------------------------------------------------
# Battery configuration (rule book "Inputs")
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    """The versioned fields from a local date on (rule book, "Configuration over time")."""

    valid_from: date
    meter_id: str
    capacity_kwh: float
    reset_date: date | None = None
    reset_repeat: str = "yearly"


@dataclass(frozen=True)
class Battery:
    """The battery's own meter/capacity/reset fields are its first version (from the
    start_date); ``versions`` are the later ones. Of several versions with the same
    valid_from the last one listed is in force (a correction)."""

    battery_id: str
    meter_id: str
    capacity_kwh: float  # 0 = no limit
    start_date: date  # local date; starts 00:00 local
    reset_date: date | None = None  # local date; emptied 00:00 local
    reset_repeat: str = "yearly"  # 'yearly' | 'none'
    end_date: date | None = None  # local date; stops 00:00 local (exclusive)
    timezone: str = "Europe/Zurich"
    initial_level_kwh: float = 0.0
    name: str | None = None
    partner_id: str | None = None
    customer_id: str | None = None
    versions: tuple[Version, ...] = ()

    def __post_init__(self):
        ZoneInfo(self.timezone)  # raises for an unknown IANA name
        if self.reset_repeat not in ("yearly", "none"):
            raise ValueError(f"reset_repeat must be 'yearly' or 'none': {self.reset_repeat!r}")
        if self.capacity_kwh < 0 or self.initial_level_kwh < 0:
            raise ValueError("capacity_kwh and initial_level_kwh must be >= 0")
        if self.capacity_kwh > 0 and self.initial_level_kwh > self.capacity_kwh:
            raise ValueError("initial_level_kwh must not exceed a non-zero capacity")


def _local_midnight(d: date, tz: str) -> datetime:
    return datetime.combine(d, time(0), tzinfo=ZoneInfo(tz)).astimezone(UTC)


def start_instant(battery: Battery) -> datetime:
    return _local_midnight(battery.start_date, battery.timezone)


def end_instant(battery: Battery) -> datetime | None:
    """None means infinity (no end_date)."""
    if battery.end_date is None:
        return None
    return _local_midnight(battery.end_date, battery.timezone)


@dataclass(frozen=True)
class VersionSpan:
    version: Version
    start: datetime  # UTC, 00:00 local of valid_from (inclusive)
    end: datetime | None  # UTC, the next version's start or the battery's end; None = infinity


def version_spans(battery: Battery) -> list[VersionSpan]:
    """The versions in force in valid_from order, each with its validity as instants.

    Validity is half-open; a version from on/after the end_date never applies."""
    first = Version(
        battery.start_date,
        battery.meter_id,
        battery.capacity_kwh,
        battery.reset_date,
        battery.reset_repeat,
    )
    by_date = {first.valid_from: first}
    for v in battery.versions:
        if v.valid_from < battery.start_date:
            raise ValueError(f"version from {v.valid_from} before the start {battery.start_date}")
        by_date[v.valid_from] = v  # the last record wins
    if battery.end_date is not None:
        by_date = {d: v for d, v in by_date.items() if d < battery.end_date}
    ordered = [by_date[d] for d in sorted(by_date)]
    starts = [_local_midnight(v.valid_from, battery.timezone) for v in ordered]
    ends = [*starts[1:], end_instant(battery)]
    return [VersionSpan(v, s, e) for v, s, e in zip(ordered, starts, ends, strict=True)]


def _anniversary(d: date, year: int) -> date:
    try:
        return d.replace(year=year)
    except ValueError:  # 29 Feb becomes 28 Feb in other years
        return date(year, 2, 28)


def reset_instants(battery: Battery, until: datetime) -> list[datetime]:
    """Step 2: reset_date 00:00 local and, for 'yearly', its anniversaries (from reset_date
    on); only those strictly after the start instant, and <= until. Across versions: each
    version's resets that fall inside its validity. Sorted, UTC."""
    until = _utc(until)
    start = start_instant(battery)
    out: list[datetime] = []
    for span in version_spans(battery):
        rd, repeat = span.version.reset_date, span.version.reset_repeat
        if rd is None:
            continue
        if repeat == "none":
            dates = [rd]
        else:  # local dates of year until.year + 1 can still be <= until in UTC
            dates = [_anniversary(rd, y) for y in range(rd.year, until.year + 2)]
        for d in dates:
            r = _local_midnight(d, battery.timezone)
            if start < r <= until and span.start <= r and (span.end is None or r < span.end):
                out.append(r)
    return sorted(out)


# --------------------------------------------------------------------------------------
# Step 2: the battery, interval by interval
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OracleRow:
    battery_id: str
    interval_start: datetime  # UTC
    import_kwh: float
    export_kwh: float
    net: float
    charge: float
    discharge: float
    overflow: float
    shortfall: float
    forfeited: float
    level: float
    estimated: bool
    period_start: datetime  # UTC: latest reset instant <= interval_start, else the start instant
    capacity_kwh: float = 0.0  # of the version in force
    meter_id: str = ""  # of the version in force
    valid_from: date | None = None  # of the version in force


def ledger(battery: Battery, intervals) -> list[OracleRow]:
    """Step 2 for the battery's intervals with start <= interval_start < end, across its
    versions: an interval belongs to the version in force at its start and comes from that
    version's meter.

    Project choice (generalising "forfeited = level if interval_start is a reset instant"):
    an interval is a reset interval when some reset instant r satisfies
    previous row's interval_start (-infinity for the first row) < r <= interval_start,
    so a data gap over a reset instant does not skip the reset. (Reset instants are all
    > start instant, so the first row forfeits the initial level for start < r <= its start.)

    Rule book, "Configuration over time": at a version's first interval (its version
    differs from the previous row's; before the first row: the first version) a level
    above the version's non-zero capacity is clipped to it, the excess forfeited; with
    several boundaries before one interval only the last applies; a reset on the same
    interval forfeits the whole level.
    """
    spans = version_spans(battery)
    own: list[tuple[OracleInterval, int]] = []
    for k, span in enumerate(spans):
        own += [
            (iv, k)
            for iv in intervals
            if iv.meter_id == span.version.meter_id
            and span.start <= iv.interval_start
            and (span.end is None or iv.interval_start < span.end)
        ]
    own.sort(key=lambda pair: pair[0].interval_start)
    if not own:
        return []
    for (a, _), (b, _) in zip(own, own[1:], strict=False):
        if a.interval_start == b.interval_start:
            raise ValueError(f"duplicate interval {a.interval_start} for meter {a.meter_id}")
    start = start_instant(battery)
    resets = reset_instants(battery, own[-1][0].interval_start)
    level = battery.initial_level_kwh  # level before the first interval
    prev_start = None  # -infinity
    prev_version = 0  # before the first row: the first version
    rows: list[OracleRow] = []
    for iv, k in own:
        version = spans[k].version
        cap = version.capacity_kwh
        t = _utc(iv.interval_start)
        is_reset = any((prev_start is None or prev_start < r) and r <= t for r in resets)
        if is_reset:
            forfeited, base = level, 0.0
        elif k != prev_version and cap > 0 and level > cap:
            forfeited, base = level - cap, cap
        else:
            forfeited, base = 0.0, level
        net = iv.export_kwh - iv.import_kwh  # netting within the 15 minutes
        if net >= 0:
            charge = net if cap == 0 else min(net, cap - base)  # cap 0 = unlimited
            overflow = net - charge
            discharge = shortfall = 0.0
        else:
            discharge = min(-net, base)
            shortfall = -net - discharge
            charge = overflow = 0.0
        level = base + charge - discharge
        period_start = max((r for r in resets if r <= t), default=start)
        rows.append(
            OracleRow(
                battery.battery_id,
                t,
                iv.import_kwh,
                iv.export_kwh,
                net,
                charge,
                discharge,
                overflow,
                shortfall,
                forfeited,
                level,
                iv.estimated,
                period_start,
                cap,
                version.meter_id,
                version.valid_from,
            )
        )
        prev_start, prev_version = t, k
    return rows


def check_invariants(battery: Battery, rows, tol: float = 1e-9) -> None:
    """Step 2 invariants, every row, to tol kWh. Raises one AssertionError listing all breaches."""
    errors = []
    prev_level = battery.initial_level_kwh
    for r in sorted(rows, key=lambda r: r.interval_start):
        at = f"row {r.battery_id} {r.interval_start.isoformat()}"
        # 1. 0 <= level <= capacity (when capacity > 0)
        if r.level < -tol or (r.capacity_kwh > 0 and r.level > r.capacity_kwh + tol):
            errors.append(f"{at}: 0 <= level <= capacity violated (level={r.level})")
        # 2. previous level - forfeited + charge - discharge = level
        if abs(prev_level - r.forfeited + r.charge - r.discharge - r.level) > tol:
            errors.append(
                f"{at}: previous level - forfeited + charge - discharge = level violated "
                f"({prev_level} - {r.forfeited} + {r.charge} - {r.discharge} != {r.level})"
            )
        # 3. export - import = charge - discharge + overflow - shortfall
        flows = r.charge - r.discharge + r.overflow - r.shortfall
        if abs((r.export_kwh - r.import_kwh) - flows) > tol:
            errors.append(
                f"{at}: export - import = charge - discharge + overflow - shortfall violated"
            )
        # 4. at most one of charge/discharge, at most one of overflow/shortfall non-zero
        if abs(r.charge) > tol and abs(r.discharge) > tol:
            errors.append(f"{at}: at most one of charge/discharge non-zero violated")
        if abs(r.overflow) > tol and abs(r.shortfall) > tol:
            errors.append(f"{at}: at most one of overflow/shortfall non-zero violated")
        prev_level = r.level
    if errors:
        raise AssertionError("\n".join(errors))


# --------------------------------------------------------------------------------------
# Daily and period views; the battery as a meter
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OracleDay:
    battery_id: str
    local_date: date  # in the battery's timezone
    charge: float
    discharge: float
    overflow: float
    shortfall: float
    forfeited: float
    level_end: float  # level of the day's last row
    level_min: float
    level_max: float
    intervals: int
    estimated_intervals: int


def daily(battery: Battery, rows) -> list[OracleDay]:
    """Per local date of interval_start in the battery's timezone, sorted by date."""
    tz = ZoneInfo(battery.timezone)
    days: dict[date, list[OracleRow]] = {}
    for r in sorted(rows, key=lambda r: r.interval_start):
        days.setdefault(r.interval_start.astimezone(tz).date(), []).append(r)
    return [
        OracleDay(
            battery.battery_id,
            d,
            charge=math.fsum(r.charge for r in rs),
            discharge=math.fsum(r.discharge for r in rs),
            overflow=math.fsum(r.overflow for r in rs),
            shortfall=math.fsum(r.shortfall for r in rs),
            forfeited=math.fsum(r.forfeited for r in rs),
            level_end=rs[-1].level,
            level_min=min(r.level for r in rs),
            level_max=max(r.level for r in rs),
            intervals=len(rs),
            estimated_intervals=sum(1 for r in rs if r.estimated),
        )
        for d, rs in sorted(days.items())
    ]


def registers(rows) -> dict:
    """The battery as a meter. Keys: level_kwh, charged_total_kwh, discharged_total_kwh,
    overflow_total_kwh, shortfall_total_kwh, forfeited_total_kwh, active_power_kw,
    last_interval_start. With no rows, level/power/last_interval_start are None, totals 0."""
    rows = sorted(rows, key=lambda r: r.interval_start)
    last = rows[-1] if rows else None
    return {
        "level_kwh": last.level if last else None,
        "charged_total_kwh": math.fsum(r.charge for r in rows),
        "discharged_total_kwh": math.fsum(r.discharge for r in rows),
        "overflow_total_kwh": math.fsum(r.overflow for r in rows),
        "shortfall_total_kwh": math.fsum(r.shortfall for r in rows),
        "forfeited_total_kwh": math.fsum(r.forfeited for r in rows),
        "active_power_kw": (last.charge - last.discharge) * 4 if last else None,
        "last_interval_start": last.interval_start if last else None,
    }


@dataclass(frozen=True)
class OraclePeriod:
    battery_id: str
    period_start: datetime  # UTC: a reset instant or the start instant
    period_end: datetime | None  # UTC: next reset instant, else end instant, else None (open)
    charge: float
    discharge: float
    overflow: float
    shortfall: float
    forfeited: float  # the level forfeited by the period's first row (reset interval)
    level_end: float  # level of the period's last row
    intervals: int


def settlement_periods(battery: Battery, rows) -> list[OraclePeriod]:
    """Rows grouped by period_start (only periods that have rows), sorted."""
    periods: dict[datetime, list[OracleRow]] = {}
    for r in sorted(rows, key=lambda r: r.interval_start):
        periods.setdefault(r.period_start, []).append(r)
    end = end_instant(battery)
    out = []
    for ps, rs in sorted(periods.items()):
        later = [r for r in reset_instants(battery, ps + timedelta(days=400)) if r > ps]
        candidates = ([later[0]] if later else []) + ([end] if end is not None else [])
        out.append(
            OraclePeriod(
                battery.battery_id,
                ps,
                min(candidates) if candidates else None,
                charge=math.fsum(r.charge for r in rs),
                discharge=math.fsum(r.discharge for r in rs),
                overflow=math.fsum(r.overflow for r in rs),
                shortfall=math.fsum(r.shortfall for r in rs),
                forfeited=math.fsum(r.forfeited for r in rs),
                level_end=rs[-1].level,
                intervals=len(rs),
            )
        )
    return out
