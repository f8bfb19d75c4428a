"""The incremental ledger gives the same tables as a full rebuild, and runs are idempotent."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import text

from tests.scenarios import battery_row, make_scenario

pytestmark = pytest.mark.slow

TABLES = {
    "int_meter_intervals": "meter_id, interval_start",
    "int_battery_ledger": "battery_id, interval_start",
    "battery_daily": "battery_id, local_date",
    "battery_registers": "battery_id",
    "settlement_periods": "battery_id, period_start",
}
IGNORED = {"computed_at", "max_load_id"}


def snapshot(pipeline) -> dict[str, list[dict]]:
    return {
        table: [
            {k: v for k, v in row.items() if k not in IGNORED}
            for row in pipeline.rows(table, order)
        ]
        for table, order in TABLES.items()
    }


def test_incremental_runs_match_a_full_rebuild_and_rerun_changes_nothing(pipeline):
    scenario = make_scenario(seed=7, meters=6, hours=50)
    pipeline.batteries([battery_row(b) for b in scenario.batteries])
    first, late = scenario.loads
    half = len(first) // 2
    for chunk in (first[:half], first[half:], late):
        pipeline.load(chunk)
        pipeline.run()
    incremental = snapshot(pipeline)

    pipeline.run()  # nothing new: nothing changes
    assert snapshot(pipeline) == incremental

    # a battery reconfigured later is recomputed from its start
    changed = dataclasses.replace(scenario.batteries[0], capacity_kwh=0.75, end_date=None)
    pipeline.batteries([battery_row(changed)])
    pipeline.run()
    reconfigured = snapshot(pipeline)

    pipeline.run(full_refresh=True)
    assert snapshot(pipeline) == reconfigured
    assert reconfigured != incremental

    pipeline.dbt("test")  # invariants, reconciliation and unit tests hold on this data


def test_rebuild_from_a_date_recomputes_and_changes_nothing_else(pipeline):
    from datetime import UTC, datetime

    from sqlalchemy import text

    from vbatt.orchestration.pipeline import touch_for_rebuild

    scenario = make_scenario(seed=11, meters=3, hours=40)
    pipeline.batteries([battery_row(b) for b in scenario.batteries])
    for load in scenario.loads:
        pipeline.load(load)
    pipeline.run()
    before = snapshot(pipeline)
    ledger_stamps = "select count(distinct computed_at) from {}_intermediate.int_battery_ledger"

    first = min(r["interval_start"] for r in before["int_battery_ledger"])
    since = datetime(first.year, first.month, first.day, tzinfo=UTC)
    battery = scenario.batteries[0].battery_id
    touched = touch_for_rebuild(
        pipeline.url, since, battery, schema=pipeline.schema, raw_schema=pipeline.raw
    )
    assert touched > 0
    pipeline.run()
    assert snapshot(pipeline) == before  # same data, same numbers
    with pipeline.engine.connect() as conn:
        recomputed = conn.execute(
            text(
                f"select count(*) from {pipeline.schema}_intermediate.int_battery_ledger"
                " where battery_id = :b and computed_at > (select min(computed_at) from"
                f" {pipeline.schema}_intermediate.int_battery_ledger)"
            ),
            {"b": battery},
        ).scalar_one()
        assert recomputed > 0  # the battery's rows were written again
        assert conn.execute(text(ledger_stamps.format(pipeline.schema))).scalar_one() == 2

    with pytest.raises(ValueError, match="no battery"):
        touch_for_rebuild(
            pipeline.url, since, "nope", schema=pipeline.schema, raw_schema=pipeline.raw
        )


def test_a_daily_run_computes_its_days_in_the_tables_collation(pipeline):
    """dbt deletes the days a run recomputes by joining its result to ``battery_daily``
    on (battery_id, local_date). The table's ids have the contract's collation (text, the
    database's), the staging views' ``"C"``: computed in ``"C"``, the join could not use the
    table's index and read every stored day of every battery on each run (measured in
    benchmarks/ledger.py as seq_scanned_rows). The incremental result must come out in
    the table's collation."""
    scenario = make_scenario(seed=3, meters=2, hours=30)
    pipeline.batteries([battery_row(b) for b in scenario.batteries])
    for chunk in scenario.loads:
        pipeline.load(chunk)
        pipeline.run()  # the second run is incremental: its compiled select is kept
    compiled = pipeline.target_dir / "compiled/vbatt/models/marts/battery_daily.sql"
    marts = f"{pipeline.schema}_marts"
    collation = (
        "select coalesce(c.collname, '') from pg_attribute a left join pg_collation c"
        " on c.oid = a.attcollation where a.attrelid = cast(:t as regclass)"
        " and a.attname = 'battery_id'"
    )
    with pipeline.engine.begin() as conn:
        stored = conn.execute(text(collation), {"t": f"{marts}.battery_daily"}).scalar_one()
        conn.execute(
            text(
                "create temporary table vbatt_daily_scope (battery_id text, from_date date)"
                " on commit drop"
            )
        )
        conn.execute(
            text(f"create temporary table probe on commit drop as {compiled.read_text()} limit 0")
        )
        computed = conn.execute(text(collation), {"t": "probe"}).scalar_one()
    assert "from vbatt_daily_scope" in compiled.read_text()  # the incremental branch
    assert computed == stored == "default"
