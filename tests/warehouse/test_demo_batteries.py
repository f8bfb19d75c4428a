"""`make demo` run again on a later day, on the warehouse the first run left behind."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import text

from vbatt.demo import DEMO_BATTERIES, DEMO_DAYS, demo_batteries, demo_start


def test_a_later_demo_run_keeps_the_batteries_start(pipeline):
    """The start_date is fixed for a battery's life: a run three days later must not try
    to move it (that was refused, and the demo ended in a traceback)."""
    first_day = date(2026, 11, 2)
    start = demo_start(pipeline.engine, first_day, pipeline.raw)
    assert start == first_day - timedelta(days=DEMO_DAYS)
    pipeline.batteries(demo_batteries(start))

    later = demo_start(pipeline.engine, first_day + timedelta(days=3), pipeline.raw)
    assert later == start
    pipeline.batteries(demo_batteries(later))  # records nothing new
    with pipeline.engine.connect() as conn:
        starts = conn.execute(
            text(f"select distinct start_date from {pipeline.raw}.batteries")
        ).scalars()
        versions = conn.execute(text(f"select count(*) from {pipeline.raw}.battery_versions"))
        assert list(starts) == [start]
        assert versions.scalar() == len(DEMO_BATTERIES)
