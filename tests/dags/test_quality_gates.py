"""The quality gates sit where the issue puts them, and the ledger waits for the first."""

from __future__ import annotations


def test_ingest_gate_runs_after_loading_and_triggers_the_ledger(dags):
    from dag_defaults import RAW_METER_DATA

    for dag_id, load in (("meter_ingest", "raw_data_landed"), ("file_drop", "load_dropped_files")):
        dag = dags[dag_id]
        gate = dag.get_task("check_new_readings")
        assert gate.upstream_task_ids == {load}
        # the Asset fires only after the gate: the ledger never sees unchecked readings
        assert RAW_METER_DATA in gate.outlets
        assert RAW_METER_DATA not in dag.get_task(load).outlets


def test_ledger_gate_runs_after_every_dbt_task(dags):
    ledger = dags["battery_ledger"]
    gate = ledger.get_task("check_ledger")
    dbt_tasks = {t for t in ledger.task_ids if t.startswith("dbt_ledger.")}
    upstream, stack = set(), list(gate.upstream_task_ids)
    while stack:
        task_id = stack.pop()
        if task_id not in upstream:
            upstream.add(task_id)
            stack.extend(ledger.get_task(task_id).upstream_task_ids)
    assert dbt_tasks and dbt_tasks <= upstream
    assert not gate.downstream_task_ids
