"""
### daily_settlement

At 01:00 Europe/Zurich, settle the previous local day (92, 96 or 100 quarter hours):
the day of the run's data interval start, in Zurich time. Reports per battery whether
the day is complete; the partner exports hang off this DAG.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task
from airflow.timetables.trigger import CronTriggerTimetable

from dag_defaults import DEFAULT_ARGS, START_DATE, TAGS

ZURICH = pendulum.timezone("Europe/Zurich")


@dag(
    schedule=CronTriggerTimetable("0 1 * * *", timezone=ZURICH, interval=pendulum.duration(days=1)),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "settlement"],
    doc_md=__doc__,
)
def daily_settlement():
    @task
    def settle_previous_day(data_interval_start=None) -> list[dict]:
        from vbatt.pipeline import day_report
        from warehouse_hook import WarehouseHook

        local_day = pendulum.instance(data_interval_start).in_timezone(ZURICH).date()
        return day_report(WarehouseHook().get_url(), local_day)

    settle_previous_day()


daily_settlement()
