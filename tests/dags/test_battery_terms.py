"""battery_terms: battery terms recorded through the API, the portal or the CLI announce the
raw data Asset, so the next battery_ledger run picks them up (issue 12, item 7)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text


def test_battery_terms_dag_announces_the_raw_data_asset(dags):
    from airflow.timetables.interval import CronDataIntervalTimetable

    from dag_defaults import RAW_METER_DATA

    dag = dags["battery_terms"]
    assert dag.doc_md and "battery_terms" in dag.doc_md and dag.max_active_runs == 1
    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    assert dag.timetable._expression == "*/5 * * * *"
    [announce] = dag.tasks
    assert RAW_METER_DATA in announce.outlets
    assert announce.retries >= 1 and announce.retry_delay >= timedelta(minutes=1)
    # ... and battery_ledger follows that Asset
    assert RAW_METER_DATA.uri in str(dags["battery_ledger"].timetable.asset_condition)


def test_terms_recorded_after_the_ledger_ran_are_a_change(pipeline):
    from datetime import date

    from tests.oracle import Battery
    from tests.scenarios import battery_row
    from vbatt.orchestration.pipeline import battery_terms_changed
    from vbatt.warehouse.versions import add_version

    def changed() -> bool:
        # no slack: a record counts as new only when made after the ledger read the terms
        found = battery_terms_changed(pipeline.url, pipeline.schema, pipeline.raw, timedelta(0))
        return found["changed"]

    assert not changed()  # nothing recorded
    pipeline.batteries([battery_row(Battery("T1", "M", 5.0, date(2026, 1, 1)))])
    assert changed()  # no ledger yet
    pipeline.run()
    assert not changed()
    with pipeline.engine.begin() as conn:
        add_version(
            conn,
            "T1",
            date(2026, 3, 1),
            {"capacity_kwh": 9},
            recorded_by="key:x",
            raw_schema=pipeline.raw,
        )
    assert changed()
    pipeline.run()
    assert not changed()
    with pipeline.engine.connect() as conn:
        assert (
            conn.execute(text(f"select count(*) from {pipeline.raw}.battery_versions")).scalar()
            == 2
        )
