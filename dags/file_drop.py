"""
### file_drop

Every five minutes, load the files waiting in the drop folder (`VBATT_DROP_DIR`):
readings CSV, MSCONS (load profiles, meter readings) and SDAT-CH E66. Each file is loaded
whole or moved to `refused/` with a `.reason.txt`; loaded files go to `loaded/`. The same
file twice is loaded once. The log and the task's result give every file's account:
values used per register, ignored and quarantined per reason (also in `raw.files`). A
file without a usable value loads and says why, or is refused when
`VBATT_DROP_REFUSE_EMPTY` is set. The `after_ingest` quality gate then checks the new
readings.
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
    tags=[*TAGS, "ingest", "files", "mscons"],
    doc_md=__doc__,
)
def file_drop():
    @task
    def load_dropped_files() -> dict:
        from vbatt.orchestration.pipeline import ingest_drop_folder
        from warehouse_hook import WarehouseHook

        return ingest_drop_folder(WarehouseHook().get_url())

    @task(outlets=[RAW_METER_DATA])
    def check_new_readings() -> dict:
        """Quality gate (warn): bad readings are quarantined before the ledger runs."""
        from vbatt.quality import run_checkpoint
        from warehouse_hook import WarehouseHook

        return run_checkpoint("after_ingest", WarehouseHook().get_url()).as_dict()

    load_dropped_files() >> check_new_readings()


file_drop()
