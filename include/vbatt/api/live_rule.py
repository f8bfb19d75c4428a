"""The live battery rule: the one Python mirror of the ledger, for the live view only.

The ledger lives in dbt and is final; it stands at the end of its latest computed quarter
hour. Between two ledger runs the customer still sees the battery move, by this rule
(docs/rules.md, "The live battery", has a worked example):

1. Start from the ledger's level at the end of its latest computed quarter hour (the
   *anchor*; before the battery's first row: its start instant and initial level).
2. Every complete quarter hour after it is computed from the readings exactly as the
   rule book's step 1 and step 2 do (counter drops rebased per register, boundaries
   interpolated, an interval only where both boundaries lie within the meter's readings;
   resets, version boundaries and capacity clips as in step 2 and "Configuration over
   time").
3. The quarter hour holding the newest reading of the meter in force there, if that
   reading is not on its boundary, is one *partial step*: net = export - import from the quarter hour's start
   (interpolated like any boundary) to the newest reading, clipped by the capacity and by
   the empty battery like a whole quarter hour.
4. Live power (kW, + = charging) = -(the meter's live power, + = import) when the
   battery can follow it; 0 when it is full and the house exports or empty and the house
   imports. Without a live power value as new as the newest reading: the net energy
   between the meter's two newest readings over the time between them, clipped alike.

Everything past the anchor is *provisional*: shown in ``/v1`` and the dashboard with that
flag, served as the smart-me ``CounterReading``, never stored and never exported; the
ledger replaces it when it covers the same quarter hours (and then equals it, bar late
readings). Pure functions on plain data: no database here (``live.py`` reads the inputs).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

QUARTER = timedelta(minutes=15)
TOLERANCE_KWH = 1e-9  # the rule book's invariant tolerance: "full" and "empty" within it
# The live view advances the ledger by at most this much; a ledger further behind the
# newest reading is a pipeline that stopped, and interpolating across it would be a guess.
MAX_AHEAD = timedelta(days=2)

Reading = tuple[datetime, float, float]  # (at, import_kwh, export_kwh), cumulative registers


@dataclass(frozen=True)
class Terms:
    """One version of a battery's versioned terms, in force from ``valid_from`` (local
    date, 00:00 in the battery's timezone) until the next version's."""

    valid_from: date
    meter_id: str
    capacity_kwh: float  # 0 = no limit
    reset_date: date | None = None
    reset_repeat: str = "yearly"


@dataclass(frozen=True)
class Frame:
    """The battery's fixed fields and its versions (the first one's valid_from is the
    start_date)."""

    start_date: date
    timezone: str
    versions: tuple[Terms, ...]
    end_date: date | None = None


@dataclass(frozen=True)
class Anchor:
    """Where the ledger stands: the end of its latest computed quarter hour (None: the
    battery has no row yet), the level and power there."""

    at: datetime | None
    level_kwh: float
    power_kw: float = 0.0


@dataclass(frozen=True)
class MeterPower:
    """The meter's newest live power (OBIS 1-0:16.7.0, kW, + = import, - = export)."""

    at: datetime
    power_kw: float


@dataclass(frozen=True)
class Step:
    """One step past the ledger: a whole quarter hour, or the partial one (``partial``,
    ending at the newest reading instead of the quarter hour's end)."""

    interval_start: datetime
    interval_end: datetime
    meter_id: str
    import_kwh: float
    export_kwh: float
    charge_kwh: float
    discharge_kwh: float
    overflow_kwh: float
    shortfall_kwh: float
    forfeited_kwh: float
    level_kwh: float
    partial: bool


@dataclass(frozen=True)
class LiveLevel:
    """The battery now. ``at`` is the time of the newest value used (the anchor's when
    nothing is newer); ``provisional`` says it is past the ledger."""

    level_kwh: float
    power_kw: float
    at: datetime | None
    provisional: bool
    ledger_at: datetime | None
    steps: tuple[Step, ...] = ()


def local_midnight(day: date, tz: str) -> datetime:
    """00:00 local of ``day`` as a UTC instant; a midnight that does not exist (DST at
    00:00) is the first instant of that local day (zoneinfo's fold=0 reading)."""
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(tz)).astimezone(UTC)


def floor_quarter(ts: datetime) -> datetime:
    ts = ts.astimezone(UTC)
    return ts.replace(minute=ts.minute - ts.minute % 15, second=0, microsecond=0)


def ceil_quarter(ts: datetime) -> datetime:
    floor = floor_quarter(ts)
    return floor if floor == ts else floor + QUARTER


# -- step 1 on one meter's readings ----------------------------------------------------


class Counters:
    """One meter's readings as rebased counters (step 1.1-1.3). Readings must be ordered
    by time; a repeated instant keeps the last one given (the newest ingested)."""

    def __init__(self, readings: Sequence[Reading]) -> None:
        rows: dict[datetime, tuple[float, float]] = {}
        for at, imp, exp in readings:
            rows[at.astimezone(UTC)] = (float(imp), float(exp))
        self.times = sorted(rows)
        self.imp = _rebased([rows[t][0] for t in self.times])
        self.exp = _rebased([rows[t][1] for t in self.times])

    def __bool__(self) -> bool:
        return bool(self.times)

    @property
    def first(self) -> datetime:
        return self.times[0]

    @property
    def last(self) -> datetime:
        return self.times[-1]

    def covers(self, t: datetime) -> bool:
        return bool(self.times) and self.times[0] <= t <= self.times[-1]

    def at(self, t: datetime) -> tuple[float, float]:
        """(import, export) at ``t`` (first <= t <= last): the reading at ``t``, else the
        linear interpolation between the readings around it."""
        i = bisect.bisect_left(self.times, t)
        if self.times[i] == t:
            return self.imp[i], self.exp[i]
        t0, t1 = self.times[i - 1], self.times[i]
        f = (t - t0) / (t1 - t0)
        return (
            self.imp[i - 1] + (self.imp[i] - self.imp[i - 1]) * f,
            self.exp[i - 1] + (self.exp[i] - self.exp[i - 1]) * f,
        )

    def energy(self, start: datetime, end: datetime) -> tuple[float, float]:
        (i0, e0), (i1, e1) = self.at(start), self.at(end)
        return i1 - i0, e1 - e0


def _rebased(values: list[float]) -> list[float]:
    """A reading lower than the one before is a counter drop: every later value is raised
    by the drop, so the series never decreases and the drop's segment counts 0."""
    out, offset = [], 0.0
    for i, v in enumerate(values):
        if i and v < values[i - 1]:
            offset += values[i - 1] - v
        out.append(v + offset)
    return out


# -- step 2 past the anchor ------------------------------------------------------------


def _version_starts(frame: Frame) -> list[tuple[datetime, Terms]]:
    versions = sorted(frame.versions, key=lambda v: v.valid_from)
    if not versions:
        raise ValueError("a battery needs at least one version of its terms")
    return [(local_midnight(v.valid_from, frame.timezone), v) for v in versions]


def _reset_instants(frame: Frame, starts: list[tuple[datetime, Terms]], until: datetime):
    """Each version's reset instants inside its own validity, strictly after the start."""
    start = local_midnight(frame.start_date, frame.timezone)
    out: list[datetime] = []
    for k, (valid_from, v) in enumerate(starts):
        if v.reset_date is None:
            continue
        valid_to = starts[k + 1][0] if k + 1 < len(starts) else None
        if v.reset_repeat == "none":
            days = [v.reset_date]
        else:
            days = [_anniversary(v.reset_date, y) for y in range(v.reset_date.year, until.year + 2)]
        for d in days:
            r = local_midnight(d, frame.timezone)
            if start < r <= until and valid_from <= r and (valid_to is None or r < valid_to):
                out.append(r)
    return sorted(out)


def _anniversary(d: date, year: int) -> date:
    try:
        return d.replace(year=year)
    except ValueError:  # 29 February becomes 28 February in other years
        return date(year, 2, 28)


def _in_force(starts: list[tuple[datetime, Terms]], t: datetime) -> Terms:
    i = bisect.bisect_right([s for s, _ in starts], t) - 1
    return starts[max(i, 0)][1]


def _step(level: float, capacity: float, forfeited: float, imp: float, exp: float):
    """Step 2 for one (possibly partial) interval: (charge, discharge, overflow, shortfall,
    level), from the level before it and what it forfeits."""
    base = level - forfeited
    net = exp - imp
    if net >= 0:
        charge = net if capacity == 0 else min(net, capacity - base)
        return charge, 0.0, net - charge, 0.0, base + charge
    discharge = min(-net, base)
    return 0.0, discharge, 0.0, -net - discharge, base - discharge


def advance(
    frame: Frame,
    anchor: Anchor,
    readings: Mapping[str, Sequence[Reading]],
    power: Mapping[str, MeterPower] | None = None,
) -> LiveLevel:
    """The live level: ``anchor`` advanced by the readings of each version's meter (every
    reading since the last one at or before the anchor) and the meters' live power."""
    starts = _version_starts(frame)
    start = local_midnight(frame.start_date, frame.timezone)
    end = local_midnight(frame.end_date, frame.timezone) if frame.end_date else None
    counters = {m: Counters(readings.get(m, ())) for m in {v.meter_id for _, v in starts}}
    newest = max((c.last for c in counters.values() if c), default=None)
    unchanged = LiveLevel(anchor.level_kwh, anchor.power_kw, anchor.at, False, anchor.at)
    b = ceil_quarter(anchor.at if anchor.at is not None else start)
    if newest is None or newest <= b or newest - b > MAX_AHEAD:
        return _with_power(unchanged, frame, starts, counters, power, anchor)

    resets = _reset_instants(frame, starts, newest)
    boundaries = [s for s, _ in starts[1:]]
    # the row before the first step: its start bounds which resets/boundaries are pending
    previous = anchor.at - QUARTER if anchor.at is not None else None
    level, steps = anchor.level_kwh, []

    def step_at(t: datetime, until: datetime, partial: bool) -> None:
        nonlocal level, previous
        terms = _in_force(starts, t)
        imp, exp = counters[terms.meter_id].energy(t, until)

        def pending(instants):
            return [x for x in instants if (previous is None or previous < x) and x <= t]

        forfeited = 0.0
        cap = terms.capacity_kwh
        if pending(resets):
            forfeited = level
        elif pending(boundaries) and cap > 0 and level > cap:
            forfeited = level - cap
        charge, discharge, overflow, shortfall, level = _step(level, cap, forfeited, imp, exp)
        steps.append(
            Step(t, until, terms.meter_id, imp, exp, charge, discharge, overflow, shortfall,
                 forfeited, level, partial)
        )  # fmt: skip
        previous = t

    while b + QUARTER <= newest and (end is None or b < end):
        c = counters[_in_force(starts, b).meter_id]
        if b >= start and c and c.first <= b and b + QUARTER <= c.last:
            step_at(b, b + QUARTER, partial=False)
        b += QUARTER
    # the partial step: the quarter hour holding the newest reading of a meter in force
    # there (of several such meters, after a meter change, the latest one)
    done = steps[-1].interval_start if steps else None
    partial = None
    for meter, c in counters.items():
        q = floor_quarter(c.last) if c else None
        if (
            q is not None
            and _in_force(starts, q).meter_id == meter
            and start <= q
            and (end is None or q < end)
            and c.first <= q < c.last
            and (done is None or q > done)
            and (anchor.at is None or q >= anchor.at)
            and (partial is None or q > partial[0])
        ):
            partial = (q, c.last)
    if partial is not None:
        step_at(partial[0], partial[1], partial=True)
    if not steps:
        return _with_power(unchanged, frame, starts, counters, power, anchor)
    last = steps[-1]
    live = LiveLevel(level, anchor.power_kw, last.interval_end, True, anchor.at, tuple(steps))
    return _with_power(live, frame, starts, counters, power, anchor)


def _with_power(
    live: LiveLevel,
    frame: Frame,
    starts: list[tuple[datetime, Terms]],
    counters: Mapping[str, Counters],
    power: Mapping[str, MeterPower] | None,
    anchor: Anchor,
) -> LiveLevel:
    """Rule 4: the live power, from the meter's live power or its two newest readings."""
    now_terms = _in_force(starts, live.at) if live.at is not None else starts[-1][1]
    c = counters.get(now_terms.meter_id)
    newest = c.last if c else None
    measured = (power or {}).get(now_terms.meter_id)
    end = local_midnight(frame.end_date, frame.timezone) if frame.end_date else None
    start = local_midnight(frame.start_date, frame.timezone)
    fresh = measured is not None and (anchor.at is None or measured.at > anchor.at)
    if fresh and (newest is None or measured.at >= newest):
        flow, at = -measured.power_kw, measured.at
    elif c and len(c.times) >= 2 and live.provisional:
        t0, t1 = c.times[-2], c.times[-1]
        hours = (t1 - t0).total_seconds() / 3600
        flow = ((c.exp[-1] - c.exp[-2]) - (c.imp[-1] - c.imp[-2])) / hours
        at = live.at
    else:
        return live  # nothing newer than the ledger: its own power stands
    if at < start or (end is not None and at >= end):
        flow = 0.0
    full = now_terms.capacity_kwh > 0 and live.level_kwh >= now_terms.capacity_kwh - TOLERANCE_KWH
    empty = live.level_kwh <= TOLERANCE_KWH
    if (flow > 0 and full) or (flow < 0 and empty):
        flow = 0.0
    newer = live.at is None or at > live.at
    return LiveLevel(
        live.level_kwh,
        flow + 0.0,  # no -0.0 on the wire
        at if newer else live.at,
        True,
        live.ledger_at,
        live.steps,
    )
