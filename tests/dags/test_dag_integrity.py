"""Every DAG imports, has no cycle, retries, tags and docs, and the schedules it promises."""

from __future__ import annotations

from datetime import timedelta

import pytest

EXPECTED = {"meter_ingest", "battery_ledger", "file_drop", "daily_settlement"}


def test_all_dags_import_without_errors(dags):
    assert EXPECTED <= set(dags)


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_dag_is_documented_tagged_and_retried(dags, dag_id):
    dag = dags[dag_id]
    assert dag.doc_md and dag_id in dag.doc_md
    assert "vbatt" in dag.tags and len(dag.tags) >= 2
    assert dag.max_active_runs == 1
    for task in dag.tasks:
        assert task.retries >= 1, f"{task.task_id} has no retries"
        assert task.retry_delay >= timedelta(minutes=1)


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_dag_has_no_cycles(dags, dag_id):
    dag = dags[dag_id]
    order = dag.topological_sort() if hasattr(dag, "topological_sort") else None
    seen: set[str] = set()
    # walk upstream from every task; a cycle would revisit the start task
    for task in dag.tasks:
        stack, visited = list(task.upstream_task_ids), set()
        while stack:
            current = stack.pop()
            assert current != task.task_id, f"cycle through {task.task_id}"
            if current not in visited:
                visited.add(current)
                stack.extend(dag.get_task(current).upstream_task_ids)
        seen.add(task.task_id)
    assert seen == set(dag.task_ids)
    assert order is None or len(order) == len(dag.tasks)


def test_meter_ingest_runs_every_quarter_hour_over_a_data_interval(dags):
    from airflow.timetables.interval import CronDataIntervalTimetable

    timetable = dags["meter_ingest"].timetable
    assert isinstance(timetable, CronDataIntervalTimetable)
    assert timetable._expression == "*/15 * * * *"


def test_daily_settlement_runs_at_one_in_zurich_for_the_previous_day(dags):
    timetable = dags["daily_settlement"].timetable
    assert timetable._expression == "0 1 * * *"
    assert str(timetable._timezone) in ("Europe/Zurich", "Timezone('Europe/Zurich')")
    assert timetable._interval == timedelta(days=1)


def test_battery_ledger_follows_the_raw_data_asset(dags):
    from dag_defaults import RAW_METER_DATA

    ledger = dags["battery_ledger"]
    assert RAW_METER_DATA.uri in str(ledger.timetable.asset_condition)
    for producer in ("meter_ingest", "file_drop"):
        outlets = [o for t in dags[producer].tasks for o in t.outlets]
        assert RAW_METER_DATA in outlets


def test_battery_ledger_runs_every_dbt_model_then_the_tests(dags):
    ledger = dags["battery_ledger"]
    ids = set(ledger.task_ids)
    for model in (
        "int_meter_readings",
        "int_counter_intervals",
        "int_battery_ledger",
        "battery_daily",
        "battery_registers",
        "settlement_periods",
    ):
        assert f"dbt_ledger.{model}_run" in ids
    assert "dbt_ledger.dbt_test" in ids
