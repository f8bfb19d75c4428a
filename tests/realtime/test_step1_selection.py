"""Step 1 reads only some realtime readings, yet computes what it computes from all of them.

Dense random pushes (a reading every few seconds) with counter drops, rollovers, late and
out-of-order arrivals, duplicates, second versions and polled copies go once through the
realtime path (``raw.realtime_values``; int_meter_readings selects the readings it needs,
incrementally, between arrivals) and once, in the same arrival order, through the path
that reads every reading (``raw.meter_readings``). Quarter-hour energies, estimated
flags and the rebased readings at the selected instants must be the same.
"""

from __future__ import annotations

import random
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from tests.pipeline import Pipeline
from vbatt.readings import Reading
from vbatt.warehouse.realtime import PushedValue, store_batch

pytestmark = pytest.mark.slow

START = datetime(2026, 11, 29, 22, 50, tzinfo=UTC)  # crosses a UTC day: two partitions
ROLLOVER_KWH = 1000.0


def _series(rng: random.Random, meter: str, hours: float) -> list[Reading]:
    """Dense readings of one meter: drops (meter swap), rollovers, sub-second instants."""
    out, t, imp, exp = [], START + timedelta(seconds=rng.random()), 990.0, 3.0
    end = START + timedelta(hours=hours)
    while t < end:
        imp += rng.random() * 0.004
        exp += rng.random() * 0.002
        if rng.random() < 0.004:
            imp, exp = rng.random() * 2, rng.random()  # a new meter: both drop
        if imp >= ROLLOVER_KWH:
            imp -= ROLLOVER_KWH  # the register rolls over
        out.append(Reading(meter, t, round(imp, 4), round(exp, 4)))
        gap = rng.choice([1, 2, 5, 10]) + rng.random() / 3
        if rng.random() < 0.003:
            gap += rng.choice([600, 1900])  # silence: interpolated, estimated quarter hours
        t += timedelta(seconds=gap)
    return out


def _arrivals(rng: random.Random, readings: list[Reading]) -> list[list[tuple[str, Reading]]]:
    """Batches in arrival order: ("push"|"poll", reading); late, doubled and changed ones."""
    events: list[tuple[float, str, Reading]] = []
    for r in readings:
        at = r.ts.timestamp() + rng.random() * 2
        if rng.random() < 0.03:
            at += rng.choice([120, 1800, 7200])  # late
        events.append((at, "push", r))
        if rng.random() < 0.02:
            events.append((at + rng.random() * 60, "push", r))  # duplicate
        if rng.random() < 0.01:  # a second version of the instant, later
            changed = Reading(r.meter_id, r.ts, round(r.import_kwh * rng.random(), 4), r.export_kwh)
            events.append((at + rng.random() * 900, "push", changed))
        if rng.random() < 0.01:
            events.append((at + 900, "poll", r))  # the same reading polled: one
    events.sort(key=lambda e: e[0])
    batches, size = [], 0
    while size < len(events):
        step = rng.randint(1, 400)
        batches.append([(kind, r) for _, kind, r in events[size : size + step]])
        size += step
    return batches


def _push(pipeline: Pipeline, batch: list[tuple[str, Reading]]) -> None:
    pushed = [
        PushedValue(r.meter_id, r.ts, r.import_kwh, r.export_kwh, None)
        for kind, r in batch
        if kind == "push"
    ]
    polled = [r for kind, r in batch if kind == "poll"]
    if pushed:
        store_batch(pipeline.engine, pushed, raw_schema=pipeline.raw)
    if polled:
        pipeline.load(polled, source="smartme")


def _everything(pipeline: Pipeline, batch: list[tuple[str, Reading]]) -> None:
    pipeline.load([r for _, r in batch], source="every")


def _intervals(pipeline: Pipeline) -> list[dict]:
    return pipeline.rows(
        "int_counter_intervals",
        "meter_id, interval_start",
        "meter_id, interval_start, round(import_kwh::numeric, 9) as import_kwh,"
        " round(export_kwh::numeric, 9) as export_kwh, estimated",
    )


def _readings(pipeline: Pipeline) -> dict[tuple, tuple]:
    rows = pipeline.rows(
        "int_meter_readings",
        "meter_id, reading_at",
        "meter_id, reading_at, round(import_kwh::numeric, 9) as i,"
        " round(export_kwh::numeric, 9) as e, counter_drop, has_conflict",
    )
    return {(r["meter_id"], r["reading_at"]): (r["i"], r["e"], r["counter_drop"]) for r in rows}


def test_selected_readings_give_the_result_of_every_reading(engine, warehouse_url, tmp_path):
    rng = random.Random(20261130)
    readings = [r for m in ("rt-a", "rt-b", "rt-c") for r in _series(rng, m, 2.5)]
    batches = _arrivals(rng, readings)
    token = secrets.token_hex(3)
    selective = Pipeline(engine, warehouse_url, f"t_rts_{token}", tmp_path / "s")
    every = Pipeline(engine, warehouse_url, f"t_rte_{token}", tmp_path / "e")
    try:
        runs = sorted(rng.sample(range(1, len(batches)), 2))
        for i, batch in enumerate(batches):
            if i in runs:
                selective.dbt("run", "--select", "+int_counter_intervals")
            _push(selective, batch)
            _everything(every, batch)
        selective.dbt("run", "--select", "+int_counter_intervals")
        every.dbt("run", "--select", "+int_counter_intervals")

        with engine.connect() as conn:
            stored = conn.execute(
                text(f"select count(*) from {selective.raw}.realtime_values")
            ).scalar()
            drops = conn.execute(
                text(
                    f"select count(*) from {every.schema}_intermediate.int_meter_readings"
                    " where counter_drop"
                )
            ).scalar()
        chosen = _readings(selective)
        all_readings = _readings(every)
        # the point: far fewer readings, yet drops in the data and the same answers
        assert len(chosen) < len(all_readings) / 4 and stored > 0.95 * len(all_readings)
        assert drops >= 3
        assert _intervals(selective) == _intervals(every)
        assert {k: all_readings[k] for k in chosen} == chosen

        selective.dbt("run", "--full-refresh", "--select", "+int_counter_intervals")
        assert _intervals(selective) == _intervals(every)
    finally:
        selective.drop()
        every.drop()
