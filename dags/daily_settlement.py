"""
### daily_settlement

At 01:00 Europe/Zurich, settle the previous local day (92, 96 or 100 quarter hours):
the day of the run's data interval start, in Zurich time. Reports per battery whether
the day is complete, then issues each partner's files (one mapped task per partner, so
one partner's failure holds back only its own files): the formats of its
`partners/<id>.yaml`, into `outbox/<partner>/<format>/`, and over SFTP where configured.
Re-running a day issues nothing twice; changed data is re-issued as a correction.

Deadline: a run not done `VBATT_SETTLEMENT_DEADLINE_MINUTES` (180) after it was queued
raises an alert (webhook/mail, `VBATT_ALERT_*`), sent by the triggerer.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import (
    AsyncCallback,
    DeadlineAlert,
    DeadlineReference,
    dag,
    get_current_context,
    task,
)
from airflow.timetables.trigger import CronTriggerTimetable

from dag_defaults import DEFAULT_ARGS, START_DATE, TAGS
from vbatt.orchestration.alerts import settlement_deadline_missed
from vbatt.settings import get_settings

ZURICH = pendulum.timezone("Europe/Zurich")


@dag(
    schedule=CronTriggerTimetable("0 1 * * *", timezone=ZURICH, interval=pendulum.duration(days=1)),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "settlement"],
    doc_md=__doc__,
    # Airflow 3 has no SLAs; a deadline alert replaces them: late runs alert (webhook/mail)
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=get_settings().settlement_deadline_minutes),
        callback=AsyncCallback(settlement_deadline_missed),
    ),
)
def daily_settlement():
    @task
    def settle_previous_day(data_interval_start=None) -> list[dict]:
        from vbatt.orchestration.pipeline import day_report
        from warehouse_hook import WarehouseHook

        local_day = pendulum.instance(data_interval_start).in_timezone(ZURICH).date()
        return day_report(WarehouseHook().get_url(), local_day)

    @task
    def partners_due(data_interval_start=None) -> list[str]:
        from vbatt.exports.schedule import partners_due_on

        return partners_due_on(pendulum.instance(data_interval_start).in_timezone(ZURICH).date())

    @task(map_index_template="{{ partner_label }}")
    def export_partner_files(partner_id: str, data_interval_start=None) -> list[dict]:
        from airflow.sdk.exceptions import AirflowFailException

        from vbatt.exports.run import ExportHeldBack, export_due
        from warehouse_hook import WarehouseHook

        get_current_context()["partner_label"] = partner_id  # names the mapped task in the UI
        day = pendulum.instance(data_interval_start).in_timezone(ZURICH).date()
        try:
            return export_due(WarehouseHook().get_url(), partner_id, day)
        except ExportHeldBack as held:  # not transient: no retries; fix the data, then clear
            raise AirflowFailException(str(held)) from held

    report = settle_previous_day()
    due = partners_due()
    report >> due
    export_partner_files.expand(partner_id=due)


daily_settlement()
