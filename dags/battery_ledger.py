"""
### battery_ledger

Runs whenever new meter data lands (the raw meter data Asset): the dbt project through
Cosmos, staging to marts, incremental, then its tests (the rule book's invariants among
them). One run at a time: the ledger continues each battery from its stored level.
Then the `after_ledger` quality gate: a failed rule-book check fails the run with a
summary (expectation, rows, examples; HTML report in `build/data_docs/`).
"""

from __future__ import annotations

from airflow.sdk import dag, task

from cosmos_ledger import ledger_task_group
from dag_defaults import DEFAULT_ARGS, LEDGER, RAW_METER_DATA, START_DATE, TAGS


@dag(
    schedule=[RAW_METER_DATA],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "dbt", "ledger"],
    doc_md=__doc__,
)
def battery_ledger():
    ledger = ledger_task_group(default_args=DEFAULT_ARGS)

    @task
    def create_schemas() -> list[str]:
        """The models run as parallel tasks: create their schemas first, once, so that two
        of them never race on CREATE SCHEMA in a fresh warehouse."""
        from vbatt.ledger.dbt_runner import create_model_schemas
        from warehouse_hook import WarehouseHook

        return create_model_schemas(WarehouseHook().get_url())

    # the LEDGER asset means "computed and checked": a blocked ledger announces nothing
    @task(outlets=[LEDGER])
    def check_ledger() -> dict:
        """Quality gate (block): the ledger against the rule book; fails with a summary."""
        from airflow.sdk.exceptions import AirflowFailException

        from vbatt.quality import QualityGateError, run_checkpoint
        from warehouse_hook import WarehouseHook

        result = run_checkpoint("after_ledger", WarehouseHook().get_url())
        if result.blocked:  # not transient: no retries; fix the data, then clear the task
            raise AirflowFailException(result.summary) from QualityGateError(result)
        return result.as_dict()

    create_schemas() >> ledger >> check_ledger()


battery_ledger()
