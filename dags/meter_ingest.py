"""
### meter_ingest

Every quarter hour, fetch the readings of every live meter from the smart-me cloud
(connection `smartme_default`) for the run's data interval plus a lookback for late
data, and append them to `raw.meter_readings`. A meter missing earlier data is fetched
from where it is complete. The `after_ingest` quality gate then checks the new readings
(warns; quarantines bad ones). Updates the raw meter data Asset, which triggers
`battery_ledger`. Backfill: `airflow backfill create --dag-id meter_ingest --from-date ... --to-date ...`.
"""

from __future__ import annotations

from airflow.sdk import dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from dag_defaults import DEFAULT_ARGS, RAW_METER_DATA, START_DATE, TAGS


@dag(
    schedule=CronDataIntervalTimetable("*/15 * * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "ingest", "smart-me"],
    doc_md=__doc__,
)
def meter_ingest():
    @task
    def fetch_and_load(data_interval_start=None, data_interval_end=None) -> dict:
        from smartme_hook import SmartMeHook
        from vbatt.pipeline import ingest_window
        from warehouse_hook import WarehouseHook

        with SmartMeHook().get_client() as client:
            return ingest_window(
                WarehouseHook().get_url(), client, data_interval_start, data_interval_end
            )

    @task(outlets=[RAW_METER_DATA])
    def check_new_readings() -> dict:
        """Quality gate (warn): bad readings are quarantined before the ledger runs."""
        from vbatt.quality import run_checkpoint
        from warehouse_hook import WarehouseHook

        return run_checkpoint("after_ingest", WarehouseHook().get_url()).as_dict()

    fetch_and_load() >> check_new_readings()


meter_ingest()
