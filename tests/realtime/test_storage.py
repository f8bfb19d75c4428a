"""The realtime storage layer (vbatt.warehouse.realtime) on a real PostgreSQL."""

from __future__ import annotations

import select
import time
from datetime import UTC, datetime, timedelta

import psycopg2
from sqlalchemy import text

from vbatt.readings import Reading
from vbatt.warehouse.loader import load_readings
from vbatt.warehouse.realtime import (
    LiveValue,
    PushedValue,
    latest_live,
    partition_name,
    readings_between,
    store_batch,
)

T0 = datetime(2026, 11, 30, 23, 59, 58, tzinfo=UTC)


def _pv(meter, seconds, imp, exp, power=None):
    return PushedValue(meter, T0 + timedelta(seconds=seconds), imp, exp, power)


def test_batch_is_stored_across_days_with_live_state_and_counts(engine, raw):
    counts = store_batch(
        engine,
        [
            _pv("m1", 0, 10.0, 1.0, 0.5),
            _pv("m1", 3, 10.1, 1.0, 0.4),  # next UTC day: a second partition
            _pv("m1", 3, 10.1, 1.0, 0.4),  # the same push twice is one row
            _pv("m2", 1, None, 2.0, -1.5),  # one register only: live state, no reading
        ],
        raw_schema=raw,
    )
    assert (counts.rows_stored, counts.rows_duplicate, counts.readings, counts.live_only) == (
        3,
        1,
        2,
        1,
    )
    with engine.connect() as conn:
        parts = set(
            conn.execute(
                text(
                    "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid"
                    " where i.inhparent = to_regclass(:p)"
                ),
                {"p": f"{raw}.realtime_values"},
            ).scalars()
        )
        assert parts == {partition_name(T0.date()), partition_name(T0.date() + timedelta(1))}
        live = latest_live(conn, ["m1", "m2", "m3"], raw_schema=raw)
        assert set(live) == {"m1", "m2"}
        assert live["m1"].value_at == T0 + timedelta(seconds=3)
        assert (live["m1"].power_kw, live["m1"].import_kwh) == (0.4, 10.1)
        assert isinstance(live["m2"], LiveValue) and live["m2"].import_kwh is None
        quarters = conn.execute(
            text(f"select interval_start, readings from {raw}.realtime_quarters order by 1")
        ).all()
        assert [q.readings for q in quarters] == [1, 1]
        intake = conn.execute(
            text(f"select sum(rows_stored), sum(rows_duplicate) from {raw}.realtime_intake")
        ).one()
        assert tuple(intake) == (3, 1)


def test_older_push_does_not_overwrite_live_state(engine, raw):
    store_batch(engine, [_pv("m1", 10, 5.0, 1.0, 2.0)], raw_schema=raw)
    store_batch(engine, [_pv("m1", 5, 4.0, 1.0, 9.0)], raw_schema=raw)
    with engine.connect() as conn:
        live = latest_live(conn, ["m1"], raw_schema=raw)["m1"]
    assert (live.value_at, live.power_kw, live.import_kwh) == (T0 + timedelta(seconds=10), 2.0, 5.0)


def test_marks_drops_out_of_order_and_versions(engine, raw):
    store_batch(engine, [_pv("m1", 0, 10.0, 1.0), _pv("m1", 1, 11.0, 1.0)], raw_schema=raw)
    store_batch(engine, [_pv("m1", 2, 0.5, 1.0)], raw_schema=raw)  # counter drop
    store_batch(engine, [_pv("m1", 1, 10.5, 1.0)], raw_schema=raw)  # out of order
    store_batch(engine, [_pv("m1", 2, 0.7, 1.0)], raw_schema=raw)  # second version
    with engine.connect() as conn:
        marks = conn.execute(
            text(f"select value_at, reason from {raw}.realtime_marks order by marked_at, value_at")
        ).all()
    assert [(m.value_at - T0).seconds for m in marks] == [2, 1, 2]
    assert [m.reason for m in marks] == ["drop", "out_of_order", "version"]


def test_readings_between_merges_sources_newest_wins(engine, raw):
    load_readings(
        engine,
        [
            Reading("m1", T0, 10.0, 1.0),
            Reading("m1", T0 + timedelta(seconds=1), 10.2, 1.0),
        ],
        source="smartme",
        raw_schema=raw,
    )
    store_batch(
        engine,
        [
            _pv("m1", 0, 10.0, 1.0, 0.3),  # the same reading pushed: one
            _pv("m1", 1, 10.3, 1.0),  # newer version of the polled one: wins
            _pv("m1", 2, 10.4, 1.0),
            _pv("m1", 3, None, None, 1.0),  # live only
        ],
        raw_schema=raw,
    )
    with engine.connect() as conn:
        got = readings_between(conn, "m1", T0, T0 + timedelta(seconds=10), raw_schema=raw)
    assert [(int((t - T0).total_seconds()), i) for t, i, _ in got] == [
        (0, 10.0),
        (1, 10.3),
        (2, 10.4),
    ]


def test_notify_per_meter_after_commit(engine, raw, warehouse_url):
    listener = psycopg2.connect(warehouse_url.replace("postgresql+psycopg2", "postgresql"))
    listener.autocommit = True
    listener.cursor().execute("listen vbatt_realtime")
    store_batch(engine, [_pv("m1", 0, 1.0, 1.0), _pv("m2", 0, 1.0, 1.0)], raw_schema=raw)
    deadline = time.monotonic() + 5
    while len(listener.notifies) < 2 and time.monotonic() < deadline:
        select.select([listener], [], [], 0.1)
        listener.poll()
    assert sorted(n.payload for n in listener.notifies) == ["m1", "m2"]
    listener.close()
