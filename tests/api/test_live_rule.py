"""The live rule (vbatt.api.live_rule) against the oracle, and its partial step and power.

The property: the ledger at any quarter hour, advanced by the live rule with every reading,
gives the level the ledger itself reaches once it has caught up. The partial quarter hour
is checked the same way: its energy is that of a quarter hour ending with a reading equal
to the newest one (a "phantom" at the quarter hour's end changes no boundary before it).
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from tests import oracle
from vbatt.api.live_rule import (
    MAX_AHEAD,
    QUARTER,
    Anchor,
    Frame,
    MeterPower,
    Terms,
    advance,
    ceil_quarter,
)

METER = "M-1"
START = date(2025, 3, 28)  # the spring DST change two days later
T0 = datetime(2025, 3, 27, 22, 0, tzinfo=UTC)  # 00:00 local of START (UTC+1)


def random_readings(rng: random.Random, hours: float, meter: str = METER) -> list[tuple]:
    """Irregular readings: dense bursts, sparse gaps over 15 minutes, counter drops,
    duplicates; (meter, ts, import, export, order) as the oracle takes them."""
    ts = T0 - timedelta(minutes=rng.choice([0, 3, 20]))
    imp, exp = rng.uniform(0, 5000), rng.uniform(0, 5000)
    out, order = [], 0
    end = T0 + timedelta(hours=hours)
    while ts < end:
        out.append((meter, ts, imp, exp, order))
        order += 1
        if rng.random() < 0.05:  # the same reading twice
            out.append((meter, ts, imp, exp, order))
            order += 1
        step = rng.choice([1, 5, 60, 300, 900, 900, 1800, 3600]) * rng.uniform(0.5, 1.5)
        if rng.random() < 0.1:
            step = 900  # on the grid now and then
        ts = ts + timedelta(seconds=round(step))
        hours_step = step / 3600
        imp += rng.choice([0, 0.2, 1.5, 4]) * hours_step
        exp += rng.choice([0, 0.5, 3, 6]) * hours_step
        if rng.random() < 0.02:  # a meter exchange or rollover in one register
            if rng.random() < 0.5:
                imp = rng.uniform(0, 10)
            else:
                exp = rng.uniform(0, 10)
    return out


def random_battery(rng: random.Random) -> oracle.Battery:
    capacity = rng.choice([0.0, 0.5, 2.0, 5.0, 10.0])
    initial = rng.uniform(0, capacity or 3.0)
    reset = rng.choice([None, date(2025, 3, 29), date(2025, 3, 30), date(2025, 3, 31)])
    return oracle.Battery(
        "b-1",
        METER,
        capacity,
        START,
        reset_date=reset,
        reset_repeat=rng.choice(["yearly", "none"]),
        end_date=rng.choice([None, None, date(2025, 3, 30)]),
        initial_level_kwh=initial,
    )


def frame_of(b: oracle.Battery) -> Frame:
    terms = [Terms(b.start_date, b.meter_id, b.capacity_kwh, b.reset_date, b.reset_repeat)]
    terms += [
        Terms(v.valid_from, v.meter_id, v.capacity_kwh, v.reset_date, v.reset_repeat)
        for v in b.versions
    ]
    by_date = {t.valid_from: t for t in terms}  # the last record of a valid_from wins
    return Frame(b.start_date, b.timezone, tuple(by_date.values()), b.end_date)


def plain(readings) -> list[tuple[datetime, float, float]]:
    """As the warehouse hands them over: ordered, one row per instant (newest ingested)."""
    newest = {}
    for _, ts, imp, exp, order in readings:
        if ts not in newest or order > newest[ts][0]:
            newest[ts] = (order, imp, exp)
    return [(ts, imp, exp) for ts, (_, imp, exp) in sorted(newest.items())]


def expected_level(battery, readings) -> tuple[float, datetime | None]:
    """The ledger once it has caught up, with the partial quarter hour made whole by a
    phantom reading at its end equal to the newest reading."""
    last = max(readings, key=lambda r: (r[1], r[4]))
    extra = []
    if ceil_quarter(last[1]) != last[1]:
        extra = [(METER, ceil_quarter(last[1]), last[2], last[3], 10**9)]
    rows = oracle.ledger(battery, oracle.meter_intervals(readings + extra))
    return (rows[-1].level, rows[-1].interval_start) if rows else (None, None)


def expected_across_versions(battery, readings) -> float | None:
    """As expected_level, with the phantom for the meter whose newest reading lies in a
    quarter hour where that meter is in force (the latest such quarter hour)."""
    spans = oracle.version_spans(battery)

    def in_force(t):
        return [s.version.meter_id for s in spans if s.start <= t][-1]

    extra, best = [], None
    for meter in {r[0] for r in readings}:
        last = max((r for r in readings if r[0] == meter), key=lambda r: (r[1], r[4]))
        q = ceil_quarter(last[1]) - QUARTER if ceil_quarter(last[1]) != last[1] else None
        if q is not None and q >= spans[0].start and in_force(q) == meter:
            if best is None or q > best[0]:
                best = (q, (meter, q + QUARTER, last[2], last[3], 10**9))
    if best is not None:
        extra = [best[1]]
    rows = oracle.ledger(battery, oracle.meter_intervals(readings + extra))
    return rows


@pytest.mark.parametrize("seed", range(150))
def test_live_level_follows_the_versions_like_the_ledger(seed):
    """Versions change the meter, the capacity (clipping the carried level) and the resets;
    the live level from any anchor equals the oracle's ledger across the versions."""
    rng = random.Random(1000 + seed)
    base = random_battery(rng)
    versions = tuple(
        oracle.Version(
            day,
            rng.choice([METER, "M-2"]),
            rng.choice([0.0, 0.3, 1.0, 4.0]),
            rng.choice([None, date(2025, 3, 30), date(2025, 3, 31)]),
            rng.choice(["yearly", "none"]),
        )
        for day in sorted(
            rng.sample([date(2025, 3, 29), date(2025, 3, 30), date(2025, 3, 31)], rng.randint(1, 3))
        )
    )
    battery = oracle.Battery(
        "b-v", METER, base.capacity_kwh, START, base.reset_date, base.reset_repeat,
        base.end_date, initial_level_kwh=base.initial_level_kwh, versions=versions,
    )  # fmt: skip
    hours = rng.choice([30, 47, 60])
    readings = random_readings(rng, hours) + random_readings(rng, hours - rng.random(), "M-2")
    rows = oracle.ledger(battery, oracle.meter_intervals(readings))
    want_rows = expected_across_versions(battery, readings)
    series = {m: plain([r for r in readings if r[0] == m]) for m in (METER, "M-2")}
    frame = frame_of(battery)
    used = {t.meter_id for t in frame.versions}  # a meter of no version is never read
    newest = max(s[-1][0] for m, s in series.items() if m in used)
    for k in sorted({-1, len(rows) - 1, *rng.sample(range(-1, len(rows)), min(6, len(rows)))}):
        if k == -1:
            anchor = Anchor(None, battery.initial_level_kwh)
        else:
            anchor = Anchor(rows[k].interval_start + QUARTER, rows[k].level)
        live = advance(frame, anchor, series)
        since = anchor.at or oracle.start_instant(battery)
        if newest - ceil_quarter(since) > MAX_AHEAD:
            assert live.level_kwh == anchor.level_kwh and not live.provisional
            continue
        after = [r for r in want_rows if anchor.at is None or r.interval_start >= anchor.at]
        assert [s.interval_start for s in live.steps] == [r.interval_start for r in after]
        for step, row in zip(live.steps, after, strict=True):
            assert step.meter_id == row.meter_id
            assert step.forfeited_kwh == pytest.approx(row.forfeited, abs=1e-9)
            assert step.level_kwh == pytest.approx(row.level, abs=1e-9), (seed, k, step)
        assert live.level_kwh == pytest.approx(after[-1].level if after else anchor.level_kwh)


@pytest.mark.parametrize("seed", range(300))
def test_live_level_equals_the_ledger_once_it_catches_up(seed):
    rng = random.Random(seed)
    battery = random_battery(rng)
    readings = random_readings(rng, rng.choice([3, 12, 40, 47]))
    rows = oracle.ledger(battery, oracle.meter_intervals(readings))
    frame = frame_of(battery)
    want, want_start = expected_level(battery, readings)
    series = plain(readings)
    # the ledger as it stood after any of its rows, or before its first
    for k in sorted({-1, len(rows) - 1, *rng.sample(range(-1, len(rows)), min(5, len(rows)))}):
        if k == -1:
            anchor = Anchor(None, battery.initial_level_kwh)
        else:
            anchor = Anchor(rows[k].interval_start + QUARTER, rows[k].level)
        live = advance(frame, anchor, {METER: series})
        if want is None or (anchor.at and want_start < anchor.at - QUARTER):
            assert not live.provisional and live.level_kwh == anchor.level_kwh
            continue
        if anchor.at is not None and series[-1][0] - anchor.at > MAX_AHEAD:
            assert live.level_kwh == anchor.level_kwh and not live.provisional
            continue
        assert live.level_kwh == pytest.approx(want, abs=1e-9), (seed, k)
        oracle_after = [r for r in rows if anchor.at is None or r.interval_start >= anchor.at]
        whole = [s for s in live.steps if not s.partial]
        assert [s.interval_start for s in whole] == [r.interval_start for r in oracle_after]
        for s, r in zip(whole, oracle_after, strict=True):
            assert s.level_kwh == pytest.approx(r.level, abs=1e-9)
            assert s.charge_kwh == pytest.approx(r.charge, abs=1e-9)
            assert s.forfeited_kwh == pytest.approx(r.forfeited, abs=1e-9)
        assert live.provisional == bool(live.steps)
        if live.steps:
            assert live.at == live.steps[-1].interval_end
            assert live.ledger_at == anchor.at


def test_caught_up_ledger_on_a_boundary_is_not_provisional():
    readings = [(T0 + QUARTER * k, 1.0 * k, 2.0 * k) for k in range(9)]
    battery = oracle.Battery("b", METER, 5.0, START)
    frame = frame_of(battery)
    rows = oracle.ledger(battery, oracle.meter_intervals([(METER, *r, 0) for r in readings]))
    anchor = Anchor(rows[-1].interval_start + QUARTER, rows[-1].level, 4.0)
    live = advance(frame, anchor, {METER: readings})
    assert (live.level_kwh, live.power_kw, live.provisional, live.steps) == (
        rows[-1].level,
        4.0,
        False,
        (),
    )
    assert live.at == anchor.at == T0 + 2 * 60 * timedelta(minutes=1)


def frame(capacity=5.0, **kw) -> Frame:
    return Frame(START, "Europe/Zurich", (Terms(START, METER, capacity),), **kw)


def test_partial_quarter_hour_is_clipped_by_capacity_and_empty_battery():
    e = T0 + timedelta(hours=10)  # the ledger's end
    # 0.9 kWh exported net in the first 6 minutes after the ledger: the battery holds 0.5
    readings = [(e - QUARTER, 10.0, 20.0), (e, 10.0, 20.0), (e + timedelta(minutes=6), 10.1, 21.0)]
    live = advance(frame(), Anchor(e, 4.5), {METER: readings})
    (step,) = live.steps
    assert step.partial and step.interval_start == e
    assert step.interval_end == e + timedelta(minutes=6)
    assert (step.charge_kwh, step.overflow_kwh) == pytest.approx((0.5, 0.4))
    assert live.level_kwh == pytest.approx(5.0)
    assert live.provisional and live.at == e + timedelta(minutes=6)
    # 1.3 kWh imported in 24 minutes, 9 of them after the ledger's end (interpolated
    # there): 0.4875 kWh, 0.3 from the battery, 0.1875 bought
    readings = [(e - QUARTER, 10.0, 20.0), (e + timedelta(minutes=9), 11.3, 20.0)]
    live = advance(frame(), Anchor(e, 0.3), {METER: readings})
    (step,) = live.steps
    assert step.import_kwh == pytest.approx(1.3 * 9 / 24)
    assert (step.discharge_kwh, step.shortfall_kwh) == pytest.approx((0.3, 0.1875))
    assert live.level_kwh == 0.0


def test_whole_quarter_hours_then_the_partial_one():
    e = T0 + timedelta(hours=10)
    readings = [(e + timedelta(minutes=m), 0.0, 0.1 * m) for m in range(0, 40)]
    live = advance(frame(capacity=0.0), Anchor(e, 1.0), {METER: readings})
    assert [(s.interval_start - e, s.partial) for s in live.steps] == [
        (timedelta(0), False),
        (QUARTER, False),
        (2 * QUARTER, True),
    ]
    assert live.level_kwh == pytest.approx(1.0 + 3.9)  # unlimited: all 3.9 kWh charged
    assert live.power_kw == pytest.approx(6.0)  # 0.1 kWh per minute, from the readings


def test_power_follows_the_meter_unless_full_or_empty():
    e = T0 + timedelta(hours=10)
    readings = [(e, 0.0, 0.0), (e + timedelta(minutes=2), 0.0, 0.1)]
    now = e + timedelta(minutes=2)
    exporting = {METER: MeterPower(now, -3.2)}
    importing = {METER: MeterPower(now, 1.5)}
    assert advance(frame(), Anchor(e, 2.0), {METER: readings}, exporting).power_kw == 3.2
    assert advance(frame(), Anchor(e, 2.0), {METER: readings}, importing).power_kw == -1.5
    full = advance(frame(), Anchor(e, 4.95), {METER: readings}, exporting)
    assert (full.level_kwh, full.power_kw) == (pytest.approx(5.0), 0.0)
    flat = [(e - QUARTER, 0.0, 0.0), (now, 0.0, 0.0)]
    empty = advance(frame(), Anchor(e, 0.0), {METER: flat}, importing)
    assert (empty.level_kwh, empty.power_kw) == (0.0, 0.0)
    # unlimited capacity never is full
    assert advance(frame(0.0), Anchor(e, 99.0), {METER: readings}, exporting).power_kw == 3.2
    # live power older than the newest reading: the readings' own rate (0.1 kWh in 2 min)
    older = {METER: MeterPower(now - timedelta(seconds=30), -3.2)}
    live = advance(frame(), Anchor(e, 2.0), {METER: readings}, older)
    assert live.power_kw == pytest.approx(3.0)
    # a power-only push (no register): the ledger's level, the meter's power, its time
    later = {METER: MeterPower(e + timedelta(seconds=5), -2.0)}
    live = advance(frame(), Anchor(e, 2.0, 0.4), {METER: [(e - QUARTER, 0.0, 0.0)]}, later)
    assert (live.level_kwh, live.power_kw, live.provisional) == (2.0, 2.0, True)
    assert live.at == e + timedelta(seconds=5)
    # live power older than the ledger: the ledger's power stands
    stale = {METER: MeterPower(e - timedelta(minutes=1), -2.0)}
    live = advance(frame(), Anchor(e, 2.0, 0.4), {METER: [(e - QUARTER, 0.0, 0.0)]}, stale)
    assert (live.power_kw, live.provisional, live.at) == (0.4, False, e)


def test_no_power_after_the_end_date():
    end = date(2025, 3, 29)
    e = datetime(2025, 3, 28, 22, 45, tzinfo=UTC)  # the last quarter hour before the end
    readings = [(e, 0.0, 0.0), (e + timedelta(minutes=20), 0.0, 2.0)]
    live = advance(frame(end_date=end), Anchor(e, 1.0), {METER: readings}, None)
    assert [s.interval_start for s in live.steps] == [e]  # the end's quarter hour is not
    assert live.power_kw == 0.0


def test_a_reset_in_the_partial_quarter_hour_forfeits_the_level():
    reset = date(2025, 3, 29)
    f = Frame(START, "Europe/Zurich", (Terms(START, METER, 5.0, reset, "none"),))
    midnight = datetime(2025, 3, 28, 23, 0, tzinfo=UTC)
    readings = [(midnight - QUARTER, 0.0, 0.0), (midnight + timedelta(minutes=3), 0.0, 0.5)]
    live = advance(f, Anchor(midnight, 3.0), {METER: readings})
    (step,) = live.steps
    assert step.forfeited_kwh == 3.0 and step.partial
    assert live.level_kwh == pytest.approx(0.5 * 3 / 18)  # the 3 of 18 minutes after it


def test_versions_change_capacity_meter_and_resets():
    """A smaller capacity clips the carried level at its first interval; a new meter's
    readings are used from its valid_from on; the new version's reset counts."""
    change = date(2025, 3, 29)  # 2025-03-28T23:00Z
    at = datetime(2025, 3, 28, 23, 0, tzinfo=UTC)
    f = Frame(
        START,
        "Europe/Zurich",
        (Terms(START, "OLD", 10.0), Terms(change, "NEW", 4.0, date(2025, 3, 30), "none")),
    )
    old = [(at - 2 * QUARTER, 0.0, 0.0), (at + QUARTER, 0.0, 3.0)]  # keeps reporting: ignored
    new = [(at - timedelta(minutes=1), 50.0, 70.0), (at + 2 * QUARTER, 50.0, 70.2)]
    live = advance(f, Anchor(at - QUARTER, 6.0), {"OLD": old, "NEW": new})
    first, second, third = live.steps
    assert (first.interval_start, first.meter_id) == (at - QUARTER, "OLD")
    assert first.level_kwh == pytest.approx(7.0)  # 1 kWh of the old meter's 3 in 45 min
    assert (second.interval_start, second.meter_id) == (at, "NEW")
    assert second.forfeited_kwh == pytest.approx(3.0)  # 7 carried, capacity 4
    assert second.level_kwh == pytest.approx(4.0)  # full: the export overflows
    assert second.overflow_kwh == pytest.approx(0.2 * 15 / 31)
    assert (third.meter_id, third.forfeited_kwh, third.partial) == ("NEW", 0.0, False)
    assert live.level_kwh == pytest.approx(4.0)
    # the new version's reset: 2025-03-30 00:00 local (UTC+1; DST begins at 02:00)
    reset_at = datetime(2025, 3, 29, 23, 0, tzinfo=UTC)
    readings = {"NEW": [(reset_at - QUARTER, 0.0, 0.0), (reset_at + QUARTER, 0.0, 0.0)]}
    live = advance(f, Anchor(reset_at - QUARTER, 4.0), readings)
    assert [(s.interval_start, s.forfeited_kwh) for s in live.steps] == [
        (reset_at - QUARTER, 0.0),
        (reset_at, 4.0),
    ]


def test_the_live_view_stops_at_a_ledger_far_behind():
    e = T0 + timedelta(hours=1)
    readings = [(e, 0.0, 0.0), (e + MAX_AHEAD + QUARTER, 0.0, 100.0)]
    live = advance(frame(0.0), Anchor(e, 1.0, 0.2), {METER: readings})
    assert (live.level_kwh, live.power_kw, live.provisional, live.at) == (1.0, 0.2, False, e)
