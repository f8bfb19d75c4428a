"""
### battery_ledger

Runs whenever new meter data lands (the raw meter data Asset): the dbt project through
Cosmos, staging to marts, incremental, then its tests (the rule book's invariants among
them). One run at a time: the ledger continues each battery from its stored level.
"""

from __future__ import annotations

from airflow.sdk import dag

from dag_defaults import DEFAULT_ARGS, LEDGER, RAW_METER_DATA, START_DATE, TAGS
from dbt_cosmos import ledger_task_group


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
    ledger_task_group(default_args={**DEFAULT_ARGS, "outlets": [LEDGER]})


battery_ledger()
