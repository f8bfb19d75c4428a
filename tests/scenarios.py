"""Random but reproducible meter data with the awkward parts of real life.

Gaps, jitter, duplicates, conflicts, counter drops, DST days and resets: every scenario
goes through the real pipeline and through the oracle (tests/oracle.py) for comparison.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from tests.oracle import Battery
from vbatt.readings import Reading

DST_STARTS = [
    datetime(2025, 3, 29, 12, tzinfo=UTC),  # spring day in Europe: 92 quarter hours
    datetime(2025, 10, 25, 12, tzinfo=UTC),  # autumn day: 100 quarter hours
    datetime(2025, 6, 30, 20, tzinfo=UTC),
    datetime(2024, 2, 27, 23, tzinfo=UTC),  # across 29 Feb
]
STEPS = [
    (timedelta(minutes=15), 8),
    (timedelta(minutes=5), 2),
    (timedelta(minutes=1), 1),
    (timedelta(hours=1), 1),
    (timedelta(hours=3), 1),
]


@dataclass
class Scenario:
    loads: list[list[Reading]] = field(default_factory=list)  # in ingestion order
    batteries: list[Battery] = field(default_factory=list)

    def oracle_readings(self):
        order = 0
        for load in self.loads:
            for r in load:
                order += 1
                yield (r.meter_id, r.ts, r.import_kwh, r.export_kwh, order)


def _series(rng: random.Random, meter_id: str, start: datetime, hours: float) -> list[Reading]:
    ts = start + timedelta(seconds=rng.choice([0, 0, 0, 37, 410]))
    end = start + timedelta(hours=hours)
    imp, exp = rng.uniform(0, 5000), rng.uniform(0, 3000)
    out = [Reading(meter_id, ts, round(imp, 3), round(exp, 3))]
    steps, weights = zip(*STEPS, strict=True)
    while ts < end:
        step = rng.choices(steps, weights)[0]
        jitter = (
            timedelta(seconds=rng.choice([0, 0, 0, 0, 3, -2]))
            if step >= timedelta(minutes=5)
            else timedelta()
        )
        ts = ts + step + jitter
        minutes = step.total_seconds() / 60
        imp += rng.choice([0, rng.uniform(0, 0.05) * minutes])
        exp += rng.choice([0, 0, rng.uniform(0, 0.12) * minutes])
        if rng.random() < 0.02:  # meter exchange: registers restart low
            imp, exp = rng.uniform(0, 2), rng.uniform(0, 2)
        out.append(Reading(meter_id, ts, round(imp, 3), round(exp, 3)))
    return out


def _battery(rng: random.Random, battery_id: str, meter_id: str, first: datetime) -> Battery:
    start = (first - timedelta(days=rng.choice([1, 0, 0]))).date()
    if rng.random() < 0.3:
        start = (first + timedelta(hours=rng.choice([12, 20]))).date()
    capacity = rng.choice([0.0, 0.5, 1.0, 2.5, 5.0])
    reset = None
    if rng.random() < 0.6:
        reset = start + timedelta(days=rng.choice([1, 2]))
        if rng.random() < 0.3:
            back = 4 if (reset.month, reset.day) == (2, 29) else 1  # anniversaries count
            reset = date(reset.year - back, reset.month, reset.day)
    end = start + timedelta(days=rng.choice([2, 3])) if rng.random() < 0.3 else None
    initial = 0.0 if rng.random() < 0.5 else (rng.uniform(0, capacity) if capacity else 1.5)
    return Battery(
        battery_id=battery_id,
        meter_id=meter_id,
        capacity_kwh=capacity,
        start_date=start,
        reset_date=reset,
        reset_repeat=rng.choice(["yearly", "none"]),
        end_date=end,
        timezone=rng.choice(["Europe/Zurich", "Europe/Zurich", "America/New_York", "UTC"]),
        initial_level_kwh=initial,
    )


def make_scenario(seed: int, meters: int = 4, hours: float = 40) -> Scenario:
    rng = random.Random(seed)
    scenario = Scenario()
    first_load: list[Reading] = []
    late: list[Reading] = []
    for m in range(meters):
        meter_id = f"M{seed}-{m}"
        start = rng.choice(DST_STARTS) + timedelta(minutes=rng.choice([0, 15, 7]))
        series = _series(rng, meter_id, start, hours)
        for r in series:
            (late if rng.random() < 0.1 else first_load).append(r)
        # duplicates and conflicts arrive later
        for r in rng.sample(series, k=min(5, len(series))):
            late.append(r)
        for r in rng.sample(series, k=min(2, len(series))):
            late.append(Reading(r.meter_id, r.ts, r.import_kwh + 0.25, r.export_kwh))
        for b in range(rng.choice([1, 2])):
            scenario.batteries.append(_battery(rng, f"B{seed}-{m}-{b}", meter_id, series[0].ts))
    rng.shuffle(first_load)
    scenario.loads = [first_load, late]
    return scenario


def battery_row(b: Battery) -> dict:
    return {
        "battery_id": b.battery_id,
        "name": b.battery_id,
        "partner_id": "P",
        "customer_id": "C",
        "meter_id": b.meter_id,
        "capacity_kwh": b.capacity_kwh,
        "start_date": b.start_date,
        "reset_date": b.reset_date,
        "reset_repeat": b.reset_repeat,
        "end_date": b.end_date,
        "timezone": b.timezone,
        "initial_level_kwh": b.initial_level_kwh,
    }
