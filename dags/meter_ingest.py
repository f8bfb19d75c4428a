"""
### meter_ingest

Every quarter hour, fetch the readings of every live meter from the smart-me cloud
(connection `smartme_default`) for the run's data interval plus a lookback for late
data, and append them to `raw.meter_readings`. A meter missing earlier data is fetched
from where it is complete.

The meters are cut into shards (`VBATT_INGEST_SHARD_SIZE` meters each, sorted by id) and
one mapped task fetches each shard, as one load, on whichever worker is free; the pool
`smartme_api` caps how many fetch at once, so the workers together stay within the
cloud's rate limit. A retried or repeated shard stores nothing twice. When every shard is
in, the `after_ingest` quality gate checks the new readings (warns; quarantines bad
ones) and updates the raw meter data Asset once, which triggers `battery_ledger`. Backfill: `airflow backfill create --dag-id meter_ingest --from-date ... --to-date ...`.
"""

from __future__ import annotations

from airflow.sdk import dag, get_current_context, task
from airflow.timetables.interval import CronDataIntervalTimetable

from dag_defaults import DEFAULT_ARGS, RAW_METER_DATA, START_DATE, TAGS
from vbatt.settings import get_settings


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
    def plan_shards(data_interval_start=None) -> list[dict]:
        from vbatt.orchestration.pipeline import plan_ingest_shards
        from warehouse_hook import WarehouseHook

        return plan_ingest_shards(WarehouseHook().get_url(), data_interval_start)

    @task(pool=get_settings().smartme_pool, map_index_template="{{ shard_label }}")
    def fetch_shard(shard: dict, data_interval_start=None, data_interval_end=None) -> dict:
        from smartme_hook import SmartMeHook
        from vbatt.orchestration.pipeline import ingest_window
        from warehouse_hook import WarehouseHook

        get_current_context()["shard_label"] = f"{shard['first']}..{shard['last']}"
        with SmartMeHook().get_client() as client:
            return ingest_window(
                WarehouseHook().get_url(), client, data_interval_start, data_interval_end, shard
            )

    @task
    def raw_data_landed(results: list[dict]) -> dict:
        results = list(results)
        return {
            "shards": len(results),
            "meters": sum(r["meters"] for r in results),
            "new_readings": sum(r["new_readings"] for r in results),
        }

    @task(outlets=[RAW_METER_DATA])
    def check_new_readings() -> dict:
        """Quality gate (warn): bad readings are quarantined before the ledger runs."""
        from vbatt.quality import run_checkpoint
        from warehouse_hook import WarehouseHook

        return run_checkpoint("after_ingest", WarehouseHook().get_url()).as_dict()

    raw_data_landed(fetch_shard.expand(shard=plan_shards())) >> check_new_readings()


meter_ingest()
