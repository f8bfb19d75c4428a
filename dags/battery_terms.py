"""
### battery_terms

Every five minutes: were battery terms recorded since the ledger last ran (a new battery,
a version or an end_date, through the API, the partner portal or `vbatt batteries`)? Then
announce the raw data Asset, so `battery_ledger` runs and recomputes from each change's
valid_from (a backdated change also asks `daily_settlement` to re-issue the periods it
touched). Nothing changed: the task is skipped and announces nothing.
"""

from __future__ import annotations

from airflow.sdk import dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from dag_defaults import DEFAULT_ARGS, RAW_METER_DATA, START_DATE, TAGS


@dag(
    schedule=CronDataIntervalTimetable("*/5 * * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "batteries", "versions"],
    doc_md=__doc__,
)
def battery_terms():
    @task(outlets=[RAW_METER_DATA])
    def announce_changed_terms() -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from vbatt.orchestration.pipeline import battery_terms_changed
        from warehouse_hook import WarehouseHook

        found = battery_terms_changed(WarehouseHook().get_url())
        if not found["changed"]:
            raise AirflowSkipException("no battery terms recorded since the ledger ran")
        return {k: str(v) for k, v in found.items()}

    announce_changed_terms()


battery_terms()
