"""The dbt ledger against the Python reading of the rule book, on awkward random data."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import oracle
from tests.scenarios import battery_row, make_scenario

TOL = 1e-9


def _close(a: float, b: float, what: str) -> None:
    assert abs(a - b) <= TOL * max(1.0, abs(a), abs(b)), f"{what}: dbt {a!r} != oracle {b!r}"


def check_against_oracle(pipeline, scenario) -> None:
    expected_intervals = oracle.meter_intervals(list(scenario.oracle_readings()))
    got = pipeline.rows("int_meter_intervals", "meter_id, interval_start")
    assert len(got) == len(expected_intervals)
    for g, e in zip(got, expected_intervals, strict=True):
        where = f"{e.meter_id} {e.interval_start.isoformat()}"
        assert (g["meter_id"], g["interval_start"]) == (e.meter_id, e.interval_start), where
        _close(g["import_kwh"], e.import_kwh, f"import {where}")
        _close(g["export_kwh"], e.export_kwh, f"export {where}")
        assert g["estimated"] == e.estimated, f"estimated {where}"

    ledger = pipeline.rows("int_battery_ledger", "battery_id, interval_start")
    daily = pipeline.rows("battery_daily", "battery_id, local_date")
    registers = {r["battery_id"]: r for r in pipeline.rows("battery_registers", "battery_id")}
    for battery in scenario.batteries:
        rows = oracle.ledger(battery, expected_intervals)
        oracle.check_invariants(battery, rows)
        mine = [r for r in ledger if r["battery_id"] == battery.battery_id]
        assert [r["interval_start"] for r in mine] == [r.interval_start for r in rows], battery
        for g, e in zip(mine, rows, strict=True):
            where = f"{battery.battery_id} {e.interval_start.isoformat()}"
            for column, value in (
                ("charge_kwh", e.charge),
                ("discharge_kwh", e.discharge),
                ("overflow_kwh", e.overflow),
                ("shortfall_kwh", e.shortfall),
                ("forfeited_kwh", e.forfeited),
                ("level_kwh", e.level),
            ):
                _close(g[column], value, f"{column} {where}")
            assert g["period_start"] == e.period_start, where
            assert g["estimated"] == e.estimated, where
        days = [d for d in daily if d["battery_id"] == battery.battery_id]
        expected_days = oracle.daily(battery, rows)
        assert [(d["local_date"], d["intervals"], d["estimated_intervals"]) for d in days] == [
            (d.local_date, d.intervals, d.estimated_intervals) for d in expected_days
        ]
        for g, e in zip(days, expected_days, strict=True):
            _close(
                g["level_end_kwh"], e.level_end, f"level_end {battery.battery_id} {e.local_date}"
            )
            _close(g["charge_kwh"], e.charge, f"daily charge {battery.battery_id} {e.local_date}")
        expected_registers = oracle.registers(rows)
        mine_registers = registers[battery.battery_id]
        if rows:
            _close(mine_registers["level_kwh"], expected_registers["level_kwh"], "register level")
        _close(
            mine_registers["charged_total_kwh"],
            expected_registers["charged_total_kwh"],
            "charged total",
        )


def run_scenario(pipeline, scenario, incremental: bool) -> None:
    pipeline.batteries([battery_row(b) for b in scenario.batteries])
    for load in scenario.loads:
        pipeline.load(load)
        if incremental:
            pipeline.run()
    if not incremental:
        pipeline.run()


@pytest.mark.slow
def test_many_random_meters_full_build(pipeline):
    scenario = make_scenario(seed=1, meters=12, hours=60)
    run_scenario(pipeline, scenario, incremental=False)
    check_against_oracle(pipeline, scenario)


@pytest.mark.slow
def test_many_random_meters_incremental(pipeline):
    scenario = make_scenario(seed=2, meters=12, hours=60)
    run_scenario(pipeline, scenario, incremental=True)
    check_against_oracle(pipeline, scenario)


@pytest.mark.slow
@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(min_value=3, max_value=10**6), incremental=st.booleans())
def test_random_scenarios(pipeline, seed, incremental):
    pipeline.drop()
    from vbatt.warehouse.migrate import migrate

    migrate(pipeline.engine, pipeline.raw)
    scenario = make_scenario(seed=seed, meters=3, hours=30)
    run_scenario(pipeline, scenario, incremental=incremental)
    check_against_oracle(pipeline, scenario)
