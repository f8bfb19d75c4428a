"""Tests of the test oracle (tests/oracle.py) against the rule book
(shared/spec/virtual-battery.md of the project specification): worked example, hand-computed cases, properties."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.oracle import (
    Battery,
    OracleInterval,
    check_invariants,
    conflicts,
    daily,
    end_instant,
    ledger,
    meter_intervals,
    registers,
    reset_instants,
    settlement_periods,
    start_instant,
)

Q = timedelta(minutes=15)
ZRH = ZoneInfo("Europe/Zurich")
approx = lambda x: pytest.approx(x, abs=1e-9)  # noqa: E731


def utc(*a) -> datetime:
    return datetime(*a, tzinfo=UTC)


def quarter_readings(meter, first, last, energies=None, imp0=1000.0, exp0=500.0):
    """Readings every 15 minutes from `first` to `last` (inclusive) so that interval b carries
    energies[b] = (import, export), 0 for the others."""
    energies = energies or {}
    out, t, imp, exp, k = [], first, imp0, exp0, 0
    while t <= last:
        out.append((meter, t, imp, exp, k))
        di, de = energies.get(t, (0.0, 0.0))
        imp, exp, t, k = imp + di, exp + de, t + Q, k + 1
    return out


def iv(ts, imp=0.0, exp=0.0, est=False, meter="m1"):
    return OracleInterval(meter, ts, imp, exp, est)


# --------------------------------------------------------------------------------------
# Worked example
# --------------------------------------------------------------------------------------


def test_worked_example():
    energies = {
        utc(2025, 5, 31, 22, 0): (0.30, 0.00),
        utc(2025, 6, 1, 10, 0): (0.10, 2.10),
        utc(2025, 6, 1, 10, 15): (0.05, 4.05),
        utc(2025, 6, 1, 18, 0): (1.20, 0.00),
        utc(2025, 6, 1, 22, 0): (4.50, 0.00),
    }
    # readings start before the battery starts: those intervals must not appear in the ledger
    readings = quarter_readings("m1", utc(2025, 5, 31, 20), utc(2025, 6, 2, 0), energies)
    bat = Battery("b1", "m1", capacity_kwh=5, start_date=date(2025, 6, 1))
    rows = ledger(bat, meter_intervals(readings))
    check_invariants(bat, rows)
    assert rows[0].interval_start == utc(2025, 5, 31, 22, 0)  # the battery's first interval
    by_start = {r.interval_start: r for r in rows}
    expected = {  # interval: (net, charge, discharge, overflow, shortfall, level)
        utc(2025, 5, 31, 22, 0): (-0.30, 0, 0, 0, 0.30, 0),
        utc(2025, 6, 1, 10, 0): (2.00, 2.00, 0, 0, 0, 2.00),
        utc(2025, 6, 1, 10, 15): (4.00, 3.00, 0, 1.00, 0, 5.00),
        utc(2025, 6, 1, 18, 0): (-1.20, 0, 1.20, 0, 0, 3.80),
        utc(2025, 6, 1, 22, 0): (-4.50, 0, 3.80, 0, 0.70, 0),
    }
    for ts, (net, charge, discharge, overflow, shortfall, level) in expected.items():
        r = by_start[ts]
        imp, exp = energies[ts]
        assert (r.import_kwh, r.export_kwh) == (approx(imp), approx(exp)), ts
        assert r.net == approx(net), ts
        assert (r.charge, r.discharge, r.overflow, r.shortfall) == (
            approx(charge),
            approx(discharge),
            approx(overflow),
            approx(shortfall),
        ), ts
        assert r.level == approx(level), ts
        assert r.forfeited == 0 and not r.estimated
    for r in rows:  # all other intervals carry zero energy
        if r.interval_start not in expected:
            assert r.import_kwh == approx(0) and r.export_kwh == approx(0)
            assert r.charge == r.discharge == r.overflow == r.shortfall == 0
    # local day 2025-06-01 = [2025-05-31T22:00Z, 2025-06-01T22:00Z): the 22:00Z row is 2 June
    days = {d.local_date: d for d in daily(bat, rows)}
    d1 = days[date(2025, 6, 1)]
    assert d1.intervals == 96 and d1.estimated_intervals == 0
    assert (d1.charge, d1.discharge, d1.overflow, d1.shortfall) == (
        approx(5.0),
        approx(1.2),
        approx(1.0),
        approx(0.3),
    )
    assert (d1.level_end, d1.level_min, d1.level_max) == (approx(3.8), approx(0), approx(5))
    d2 = days[date(2025, 6, 2)]
    assert d2.discharge == approx(3.8) and d2.shortfall == approx(0.7) and d2.level_end == 0
    reg = registers(rows)
    assert reg["level_kwh"] == approx(0)
    assert reg["charged_total_kwh"] == approx(5.0)
    assert reg["discharged_total_kwh"] == approx(5.0)
    assert reg["overflow_total_kwh"] == approx(1.0)
    assert reg["shortfall_total_kwh"] == approx(1.0)
    assert reg["forfeited_total_kwh"] == 0


# --------------------------------------------------------------------------------------
# Step 1
# --------------------------------------------------------------------------------------


def test_duplicates_count_once():
    t0 = utc(2025, 1, 1, 0, 0)
    readings = [
        ("m1", t0, 10.0, 0.0, 1),
        ("m1", t0 + Q, 11.0, 0.5, 2),
        ("m1", t0 + Q, 11.0, 0.5, 3),  # exact duplicate
        ("m1", t0 + 2 * Q, 13.0, 0.5, 4),
    ]
    assert conflicts(readings) == []
    ivs = meter_intervals(readings)
    assert [(i.interval_start, i.import_kwh, i.export_kwh, i.estimated) for i in ivs] == [
        (t0, 1.0, 0.5, False),
        (t0 + Q, 2.0, 0.0, False),
    ]


def test_conflict_newest_ingested_wins_and_is_reported():
    t0 = utc(2025, 1, 1, 0, 0)
    readings = [
        ("m1", t0 + Q, 12.0, 0.0, 7),  # newest: wins regardless of input order
        ("m1", t0, 10.0, 0.0, 1),
        ("m1", t0 + Q, 11.0, 0.0, 2),
        ("m1", t0 + 2 * Q, 13.0, 0.0, 3),
        ("m2", t0, 1.0, 0.0, 4),  # another meter, no conflict
        ("m2", t0 + Q, 1.0, 0.0, 5),
    ]
    assert conflicts(readings) == [("m1", t0 + Q)]
    ivs = [i for i in meter_intervals(readings) if i.meter_id == "m1"]
    assert [i.import_kwh for i in ivs] == [2.0, 1.0]


def test_conflict_in_one_register_only():
    t0 = utc(2025, 1, 1, 0, 0)
    readings = [
        ("m1", t0, 10.0, 0.0, 1),
        ("m1", t0 + Q, 11.0, 1.0, 3),
        ("m1", t0 + Q, 11.0, 2.0, 2),
    ]
    assert conflicts(readings) == [("m1", t0 + Q)]
    assert meter_intervals(readings)[0].export_kwh == 1.0


def test_counter_drop_is_rebased_and_estimated():
    t0 = utc(2025, 1, 1, 0, 0)
    # import: 10, 11, 2 (drop: meter exchange), 3, 5; export steady
    readings = [("m1", t0 + k * Q, v, 0.0, k) for k, v in enumerate([10.0, 11.0, 2.0, 3.0, 5.0])]
    ivs = meter_intervals(readings)
    assert [(i.import_kwh, i.estimated) for i in ivs] == [
        (1.0, False),
        (0.0, True),  # the segment (00:15, 00:30) holds the drop: 0 energy, estimated
        (1.0, False),
        (2.0, False),
    ]


def test_counter_drop_inside_interpolated_interval():
    t0 = utc(2025, 1, 1, 0, 0)
    # hourly readings; export drops between 01:00 and 02:00; import keeps rising
    readings = [
        ("m1", t0, 0.0, 50.0, 1),
        ("m1", t0 + 4 * Q, 4.0, 54.0, 2),
        ("m1", t0 + 8 * Q, 8.0, 1.0, 3),
        ("m1", t0 + 12 * Q, 12.0, 5.0, 4),
    ]
    ivs = meter_intervals(readings)
    assert len(ivs) == 12
    assert all(i.import_kwh == approx(1.0) for i in ivs)
    assert [i.export_kwh for i in ivs] == [approx(x) for x in [1] * 4 + [0] * 4 + [1] * 4]
    assert all(i.estimated for i in ivs)  # all hourly-interpolated anyway


def test_interpolation_hourly_readings_estimated():
    t0 = utc(2025, 1, 1, 0, 0)
    readings = [("m1", t0, 0.0, 0.0, 1), ("m1", t0 + timedelta(hours=1), 4.0, 2.0, 2)]
    ivs = meter_intervals(readings)
    assert [i.interval_start for i in ivs] == [t0, t0 + Q, t0 + 2 * Q, t0 + 3 * Q]
    assert all(i.import_kwh == approx(1.0) and i.export_kwh == approx(0.5) for i in ivs)
    assert all(i.estimated for i in ivs)


def test_interpolation_between_15_minute_readings_not_estimated():
    t0 = utc(2025, 1, 1, 0, 5)  # readings at :05, :20, :35, :50, 15 minutes apart
    readings = [("m1", t0 + k * Q, 3.0 * k, 0.0, k) for k in range(4)]
    ivs = meter_intervals(readings)
    # boundaries 00:15, 00:30, 00:45 interpolated between readings exactly 15 min apart
    assert [i.interval_start for i in ivs] == [utc(2025, 1, 1, 0, 15), utc(2025, 1, 1, 0, 30)]
    assert all(i.import_kwh == approx(3.0) and not i.estimated for i in ivs)


def test_interpolation_irregular_readings():
    t0 = utc(2025, 1, 1, 0, 0)
    # 00:00 -> 0, 00:10 -> 1, 00:40 -> 4 (30 minutes apart, 0.1 kWh/min)
    readings = [
        ("m1", t0, 0.0, 0.0, 1),
        ("m1", t0 + timedelta(minutes=10), 1.0, 0.0, 2),
        ("m1", t0 + timedelta(minutes=40), 4.0, 0.0, 3),
        ("m1", t0 + timedelta(minutes=45), 4.0, 0.0, 4),
    ]
    ivs = meter_intervals(readings)
    # C(0)=0, C(15)=1.5, C(30)=3.0, C(45)=4.0
    assert [(i.import_kwh, i.estimated) for i in ivs] == [
        (approx(1.5), True),
        (approx(1.5), True),
        (approx(1.0), True),
    ]


def test_interval_at_edge_of_reading_span_not_produced():
    t0 = utc(2025, 1, 1, 0, 5)
    readings = [("m1", t0, 0.0, 0.0, 1), ("m1", t0 + timedelta(hours=1), 6.0, 0.0, 2)]
    ivs = meter_intervals(readings)
    # [00:00, 00:15) starts before the first reading; [01:00, 01:15) ends after the last
    assert [i.interval_start for i in ivs] == [
        utc(2025, 1, 1, 0, 15),
        utc(2025, 1, 1, 0, 30),
        utc(2025, 1, 1, 0, 45),
    ]
    assert all(i.import_kwh == approx(1.5) for i in ivs)
    assert meter_intervals(readings[:1]) == []


def test_timestamps_in_other_timezones_are_instants():
    t0 = utc(2025, 1, 1, 0, 0)
    readings = [("m1", t0.astimezone(ZRH), 0.0, 0.0, 1), ("m1", t0 + Q, 1.0, 0.0, 2)]
    ivs = meter_intervals(readings)
    assert len(ivs) == 1 and ivs[0].interval_start == t0 and ivs[0].interval_start.tzinfo == UTC


# --------------------------------------------------------------------------------------
# Step 2, daily, registers, periods
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "day,count",
    [
        (date(2025, 3, 29), 96),
        (date(2025, 3, 30), 92),
        (date(2025, 3, 31), 96),
        (date(2025, 10, 25), 96),
        (date(2025, 10, 26), 100),
        (date(2025, 10, 27), 96),
    ],
)
def test_dst_days(day, count):
    bat = Battery("b1", "m1", capacity_kwh=10, start_date=day - timedelta(days=1))
    first = start_instant(bat)
    last = datetime.combine(day + timedelta(days=2), datetime.min.time(), ZRH).astimezone(UTC)
    rows = ledger(bat, meter_intervals(quarter_readings("m1", first, last)))
    days = {d.local_date: d for d in daily(bat, rows)}
    assert days[day].intervals == count
    assert days[day].estimated_intervals == 0


def test_unlimited_capacity():
    bat = Battery("b1", "m1", capacity_kwh=0, start_date=date(2025, 6, 1))
    t = start_instant(bat)
    rows = ledger(bat, [iv(t, 0, 100.0), iv(t + Q, 0, 250.0), iv(t + 2 * Q, 30.0, 0)])
    assert [(r.charge, r.overflow, r.discharge, r.level) for r in rows] == [
        (100.0, 0, 0, 100.0),
        (250.0, 0, 0, 350.0),
        (0, 0, 30.0, 320.0),
    ]
    check_invariants(bat, rows)


def test_initial_level():
    bat = Battery("b1", "m1", capacity_kwh=5, start_date=date(2025, 6, 1), initial_level_kwh=2.0)
    t = start_instant(bat)
    rows = ledger(bat, [iv(t, 0.5, 0), iv(t + Q, 0, 4.0), iv(t + 2 * Q, 6.0, 0)])
    assert [(r.discharge, r.charge, r.overflow, r.shortfall, r.level) for r in rows] == [
        (0.5, 0, 0, 0, 1.5),
        (0, 3.5, 0.5, 0, 5.0),
        (5.0, 0, 0, 1.0, 0),
    ]
    check_invariants(bat, rows)
    with pytest.raises(ValueError):
        Battery("b1", "m1", capacity_kwh=5, start_date=date(2025, 6, 1), initial_level_kwh=6)
    Battery("b1", "m1", capacity_kwh=0, start_date=date(2025, 6, 1), initial_level_kwh=60)


def test_start_and_end_instants_end_exclusive():
    bat = Battery(
        "b1", "m1", capacity_kwh=5, start_date=date(2025, 6, 1), end_date=date(2025, 6, 3)
    )
    assert start_instant(bat) == utc(2025, 5, 31, 22)
    assert end_instant(bat) == utc(2025, 6, 2, 22)
    readings = quarter_readings("m1", utc(2025, 5, 31), utc(2025, 6, 4))
    rows = ledger(bat, meter_intervals(readings))
    assert rows[0].interval_start == utc(2025, 5, 31, 22)
    assert rows[-1].interval_start == utc(2025, 6, 2, 21, 45)
    assert len(rows) == 2 * 96
    other_meter = ledger(dataclasses.replace(bat, meter_id="m2"), meter_intervals(readings))
    assert other_meter == []


def test_reset_instants_yearly_29_feb():
    bat = Battery(
        "b1", "m1", capacity_kwh=5, start_date=date(2023, 6, 1), reset_date=date(2024, 2, 29)
    )
    assert reset_instants(bat, utc(2028, 12, 31)) == [
        utc(2024, 2, 28, 23),  # 2024-02-29 00:00 CET
        utc(2025, 2, 27, 23),  # 2025-02-28 in a non-leap year
        utc(2026, 2, 27, 23),
        utc(2027, 2, 27, 23),
        utc(2028, 2, 28, 23),  # 2028-02-29 again
    ]
    assert reset_instants(bat, utc(2025, 2, 27, 23)) == [utc(2024, 2, 28, 23), utc(2025, 2, 27, 23)]
    once = dataclasses.replace(bat, reset_repeat="none")
    assert reset_instants(once, utc(2028, 12, 31)) == [utc(2024, 2, 28, 23)]


def test_reset_instants_only_strictly_after_start():
    bat = Battery(
        "b1", "m1", capacity_kwh=5, start_date=date(2025, 6, 1), reset_date=date(2025, 6, 1)
    )
    assert reset_instants(bat, utc(2027, 1, 1)) == [utc(2026, 5, 31, 22)]
    before = dataclasses.replace(bat, reset_date=date(2024, 1, 1), reset_repeat="none")
    assert reset_instants(before, utc(2027, 1, 1)) == []
    yearly_before = dataclasses.replace(bat, reset_date=date(2020, 1, 1))
    assert reset_instants(yearly_before, utc(2027, 1, 1)) == [
        utc(2025, 12, 31, 23),
        utc(2026, 12, 31, 23),
    ]


def test_reset_forfeits_level_yearly_29_feb_non_leap_year():
    bat = Battery(
        "b1", "m1", capacity_kwh=5, start_date=date(2024, 6, 1), reset_date=date(2024, 2, 29)
    )
    r = utc(2025, 2, 27, 23)  # 2025-02-28 00:00 local
    readings = quarter_readings(
        "m1",
        r - 4 * Q,
        r + 4 * Q,
        {r - 2 * Q: (0, 1.5), r - Q: (0, 1.0), r: (0.5, 0), r + Q: (0, 2.0)},
    )
    rows = [x for x in ledger(bat, meter_intervals(readings))]
    check_invariants(bat, rows)
    got = {x.interval_start: x for x in rows}
    assert got[r - Q].level == approx(2.5) and got[r - Q].forfeited == 0
    assert got[r].forfeited == approx(2.5)
    assert (got[r].discharge, got[r].shortfall, got[r].level) == (0, approx(0.5), 0)
    assert got[r + Q].level == approx(2.0) and got[r + Q].forfeited == 0
    assert got[r - Q].period_start == start_instant(bat) == utc(2024, 5, 31, 22)
    assert got[r].period_start == r and got[r + Q].period_start == r
    periods = settlement_periods(bat, rows)
    assert [(p.period_start, p.period_end) for p in periods] == [
        (utc(2024, 5, 31, 22), r),
        (r, utc(2026, 2, 27, 23)),
    ]
    assert periods[0].level_end == approx(2.5) and periods[0].charge == approx(2.5)
    assert periods[1].forfeited == approx(2.5) and periods[1].level_end == approx(2.0)
    assert periods[1].shortfall == approx(0.5) and periods[1].intervals == 4
    assert registers(rows)["forfeited_total_kwh"] == approx(2.5)
    days = {d.local_date: d for d in daily(bat, rows)}
    assert days[date(2025, 2, 28)].forfeited == approx(2.5)


def test_reset_in_data_gap_is_not_skipped():
    # project choice: the first interval at or after each reset instant forfeits
    bat = Battery(
        "b1",
        "m1",
        capacity_kwh=5,
        start_date=date(2025, 1, 1),
        reset_date=date(2025, 3, 1),
        reset_repeat="none",
    )
    r = utc(2025, 2, 28, 23)
    rows = ledger(
        bat,
        [iv(r - 2 * Q, 0, 1.0), iv(r - Q, 0, 1.0), iv(r + 2 * Q, 0, 1.0), iv(r + 3 * Q, 0, 1.0)],
    )
    assert [(x.forfeited, x.level) for x in rows] == [(0, 1.0), (0, 2.0), (2.0, 1.0), (0, 2.0)]
    assert [x.period_start for x in rows] == [start_instant(bat)] * 2 + [r] * 2
    check_invariants(bat, rows)


def test_reset_before_first_row_forfeits_initial_level():
    bat = Battery(
        "b1",
        "m1",
        capacity_kwh=5,
        start_date=date(2025, 1, 1),
        reset_date=date(2025, 1, 2),
        reset_repeat="none",
        initial_level_kwh=3.0,
    )
    t = utc(2025, 1, 5, 12)
    rows = ledger(bat, [iv(t, 1.0, 0), iv(t + Q, 1.0, 0)])
    assert [(x.forfeited, x.shortfall, x.level) for x in rows] == [(3.0, 1.0, 0), (0, 1.0, 0)]
    assert rows[0].period_start == utc(2025, 1, 1, 23)
    # reset exactly at the start instant does not count: initial level kept
    bat2 = dataclasses.replace(bat, reset_date=date(2025, 1, 1))
    rows2 = ledger(bat2, [iv(start_instant(bat2), 1.0, 0)])
    assert (rows2[0].forfeited, rows2[0].discharge, rows2[0].level) == (0, 1.0, 2.0)


def test_registers_power_and_empty():
    bat = Battery("b1", "m1", capacity_kwh=5, start_date=date(2025, 6, 1))
    t = start_instant(bat)
    rows = ledger(bat, [iv(t, 0, 1.0), iv(t + Q, 0.25, 0)])
    reg = registers(rows)
    assert reg["active_power_kw"] == approx(-1.0) and reg["level_kwh"] == approx(0.75)
    assert reg["last_interval_start"] == t + Q
    assert registers([])["level_kwh"] is None and registers([])["charged_total_kwh"] == 0


def test_check_invariants_detects_breaches():
    bat = Battery("b1", "m1", capacity_kwh=5, start_date=date(2025, 6, 1))
    t = start_instant(bat)
    rows = ledger(bat, [iv(t, 0, 3.0), iv(t + Q, 1.0, 0)])
    check_invariants(bat, rows)
    bad = [rows[0], dataclasses.replace(rows[1], level=7.0)]
    with pytest.raises(AssertionError, match="level <= capacity") as e:
        check_invariants(bat, bad)
    assert "previous level - forfeited" in str(e.value) and t.isoformat() not in str(e.value)
    both = [dataclasses.replace(rows[0], discharge=1.0, shortfall=1.0, level=2.0)]
    with pytest.raises(AssertionError, match="charge/discharge") as e:
        check_invariants(bat, both)
    assert "overflow/shortfall" not in str(e.value)
    with pytest.raises(AssertionError, match="export - import"):
        check_invariants(bat, [dataclasses.replace(rows[0], export_kwh=4.0)])


# --------------------------------------------------------------------------------------
# Properties of the oracle itself
# --------------------------------------------------------------------------------------

TIMEZONES = ["Europe/Zurich", "UTC", "America/New_York", "Australia/Lord_Howe"]
BASE = utc(2025, 3, 29, 20)


@st.composite
def reading_sets(draw):
    """Irregular readings of meter m1 (with drops, duplicates, conflicts) plus noise on m2."""
    n = draw(st.integers(1, 20))
    t = BASE + timedelta(seconds=draw(st.integers(0, 3600)))
    imp, exp = draw(st.floats(0, 1e5)), draw(st.floats(0, 1e5))
    readings = []
    for k in range(n):
        readings.append(("m1", t, imp, exp, k))
        t += timedelta(seconds=draw(st.sampled_from([1, 60, 900, 900, 900, 1800, 3600, 10800])))
        for_reg = []
        for v in (imp, exp):
            if draw(st.integers(0, 9)) == 0:
                for_reg.append(draw(st.floats(0, v)))  # counter drop (or equal)
            else:
                for_reg.append(v + draw(st.floats(0, 5)))
        imp, exp = for_reg
    for j, i in enumerate(draw(st.lists(st.integers(0, n - 1), max_size=4))):
        m, ts, a, b, _ = readings[i]
        if draw(st.booleans()):
            a += 1.0  # conflict
        readings.append((m, ts, a, b, n + j))
    readings.append(("m2", BASE, 0.0, 0.0, 10_000))
    readings.append(("m2", BASE + timedelta(hours=30), 99.0, 99.0, 10_001))
    return readings


@st.composite
def batteries(draw):
    cap = draw(st.sampled_from([0.0, draw(st.floats(0.5, 20))]))
    start = date(2025, 3, 28) + timedelta(days=draw(st.integers(0, 2)))
    end = draw(st.one_of(st.none(), st.integers(1, 4).map(lambda d: start + timedelta(days=d))))
    near = st.integers(-2, 3).map(lambda d: start + timedelta(days=d))  # resets inside the data
    reset = draw(
        st.one_of(
            st.none(),
            near,
            near.map(lambda d: d.replace(year=2024)),
            st.dates(date(2024, 2, 1), date(2025, 4, 2)),
        )
    )
    return Battery(
        "b1",
        "m1",
        capacity_kwh=cap,
        start_date=start,
        reset_date=reset,
        reset_repeat=draw(st.sampled_from(["yearly", "none"])),
        end_date=end,
        timezone=draw(st.sampled_from(TIMEZONES)),
        initial_level_kwh=draw(st.floats(0, cap if cap > 0 else 50)),
    )


PROP = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROP
@given(reading_sets(), batteries())
def test_property_invariants_and_totals(readings, bat):
    ivs = meter_intervals(readings)
    assert all(i.import_kwh >= -1e-9 and i.export_kwh >= -1e-9 for i in ivs)
    assert all(i.interval_start.minute % 15 == 0 and i.interval_start.second == 0 for i in ivs)
    rows = ledger(bat, ivs)
    check_invariants(bat, rows)
    assert [r.interval_start for r in rows] == sorted({r.interval_start for r in rows})
    # conservation over the whole ledger
    reg = registers(rows)
    if rows:
        assert reg["level_kwh"] == pytest.approx(
            bat.initial_level_kwh
            + reg["charged_total_kwh"]
            - reg["discharged_total_kwh"]
            - reg["forfeited_total_kwh"],
            abs=1e-6,
        )
    for view in (daily(bat, rows), settlement_periods(bat, rows)):
        assert sum(v.intervals for v in view) == len(rows)
        for f in ("charge", "discharge", "overflow", "shortfall", "forfeited"):
            total = sum(getattr(v, f) for v in view)
            assert total == pytest.approx(sum(getattr(r, f) for r in rows), abs=1e-6)
    for p in settlement_periods(bat, rows):
        assert p.period_end is None or p.period_start < p.period_end


@PROP
@given(reading_sets(), st.randoms(use_true_random=False), st.sampled_from(TIMEZONES))
def test_property_input_order_and_timezone_do_not_matter(readings, rnd, tz):
    shuffled = [(m, ts.astimezone(ZoneInfo(tz)), a, b, o) for m, ts, a, b, o in readings]
    rnd.shuffle(shuffled)
    assert meter_intervals(shuffled) == meter_intervals(readings)
    assert conflicts(shuffled) == conflicts(readings)


@PROP
@given(
    st.lists(
        st.tuples(st.integers(1, 8), st.floats(0, 3), st.floats(0, 3)), min_size=1, max_size=30
    )
)
def test_property_quarter_readings_without_drops(steps):
    t, imp, exp = BASE, 100.0, 7.0
    readings = [("m1", t, imp, exp, 0)]
    for k, (gap, di, de) in enumerate(steps, start=1):
        t, imp, exp = t + gap * Q, imp + di, exp + de
        readings.append(("m1", t, imp, exp, k))
    ivs = meter_intervals(readings)
    assert len(ivs) == (t - BASE) / Q
    assert sum(i.import_kwh for i in ivs) == pytest.approx(imp - 100.0, abs=1e-6)
    assert sum(i.export_kwh for i in ivs) == pytest.approx(exp - 7.0, abs=1e-6)
    # estimated exactly where the covering readings are more than 15 minutes apart
    times = [r[1] for r in readings]
    for i in ivs:
        k = times.index(max(x for x in times if x <= i.interval_start))
        assert i.estimated == (times[k + 1] - times[k] > Q)


@PROP
@given(
    batteries(),
    st.lists(st.tuples(st.integers(1, 3000), st.floats(0, 6), st.floats(0, 6)), max_size=40),
)
def test_property_ledger_on_sparse_intervals(bat, steps):
    t, ivs = start_instant(bat).replace(minute=0) - timedelta(hours=2), []
    for gap, a, b in steps:
        t += gap * Q
        ivs.append(iv(t, a, b))
    rows = ledger(bat, ivs)
    check_invariants(bat, rows)
    # every reset instant inside the rows' span is followed by exactly one reset interval:
    # the first row at or after it (forfeiture visible when the level before was > 0)
    if rows:
        resets = reset_instants(bat, rows[-1].interval_start)
        starts = [r.period_start for r in rows]
        assert set(starts) <= set(resets) | {start_instant(bat)}
        for r in resets:
            first = min(x.interval_start for x in rows if x.interval_start >= r)
            assert next(x for x in rows if x.interval_start == first).period_start == r


def test_property_style_random_series_is_fast_enough():
    """A long irregular week of second-to-hour readings runs through the oracle."""
    rnd = random.Random(7)
    t, imp, exp, readings = BASE, 0.0, 0.0, []
    for k in range(3000):
        readings.append(("m1", t, imp, exp, k))
        t += timedelta(seconds=rnd.choice([1, 30, 300, 900, 3600]))
        imp += rnd.random()
        exp += rnd.random()
    bat = Battery(
        "b1", "m1", capacity_kwh=10, start_date=date(2025, 3, 30), reset_date=date(2025, 4, 1)
    )
    rows = ledger(bat, meter_intervals(readings))
    check_invariants(bat, rows)
    assert daily(bat, rows)[0].intervals == 92
