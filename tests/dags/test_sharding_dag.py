"""meter_ingest fans out over meter shards: one mapped task per shard in the smart-me pool,
one Asset update when all are in."""

from __future__ import annotations


def test_meter_ingest_maps_fetches_over_shards_in_the_smartme_pool(dags):
    from vbatt.settings import get_settings

    dag = dags["meter_ingest"]
    plan, fetch, landed = (
        dag.get_task(t) for t in ("plan_shards", "fetch_shard", "raw_data_landed")
    )
    assert type(fetch).__name__.endswith("MappedOperator"), "fetch_shard is mapped (.expand)"
    assert fetch.pool == get_settings().smartme_pool == "smartme_api"
    assert fetch.upstream_task_ids == {"plan_shards"}
    assert landed.upstream_task_ids == {"fetch_shard"}
    assert plan.pool != fetch.pool  # planning does not take an API slot


def test_only_the_last_task_updates_the_raw_data_asset(dags):
    from dag_defaults import RAW_METER_DATA

    dag = dags["meter_ingest"]
    producers = [t.task_id for t in dag.tasks if RAW_METER_DATA in t.outlets]
    # the quality gate after all shards: battery_ledger runs once per ingest, not per shard
    assert producers == ["check_new_readings"]
    assert dag.get_task("check_new_readings").upstream_task_ids == {"raw_data_landed"}


def test_the_pool_exists_after_set_up(airflow_metadata):
    from airflow.models.pool import Pool

    from vbatt.settings import get_settings

    settings = get_settings()
    pool = Pool.get_pool(settings.smartme_pool)
    assert pool is not None and pool.slots == settings.smartme_pool_slots
