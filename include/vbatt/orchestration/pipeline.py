"""What the DAGs do, as plain functions: the CLI and the tests call the same ones.

A DAG task only finds its connections (hooks in plugins/) and calls one of these.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from vbatt.ingest.load import (
    IngestError,
    IngestReport,
    ingest_smartme,
    meters_to_ingest,
    process_drop_folder,
)
from vbatt.ingest.shards import plan_shards
from vbatt.quality.report import failures_on
from vbatt.settings import get_settings
from vbatt.warehouse.db import get_engine
from vbatt.warehouse.migrate import migrate

log = logging.getLogger(__name__)


def utc(ts: datetime) -> datetime:
    """A plain UTC datetime from anything aware (Airflow hands pendulum DateTimes)."""
    return datetime.fromtimestamp(ts.timestamp(), UTC)


def plan_ingest_shards(url: str, start: datetime, size: int | None = None) -> list[dict]:
    """The meter shards of one meter_ingest run (see ``vbatt.ingest.shards``); migrates first, so
    the mapped tasks that follow never race a migration."""
    engine = get_engine(url)
    migrate(engine)
    meters = meters_to_ingest(engine, utc(start))
    shards = plan_shards(meters, size or get_settings().ingest_shard_size)
    log.info("%d meters in %d shards", len(meters), len(shards))
    return [s.as_dict() for s in shards]


def ingest_window(
    url: str, client, start: datetime, end: datetime, shard: dict | None = None
) -> dict:
    """One run of meter_ingest, or one shard of it: every live meter (of the shard),
    the window plus the lookback, as one load."""
    start, end = utc(start), utc(end)
    engine = get_engine(url)
    migrate(engine)
    settings = get_settings()
    report: IngestReport = ingest_smartme(
        engine,
        client,
        start=start,
        end=end,
        lookback=timedelta(minutes=settings.ingest_lookback_minutes),
        meter_range=(shard["first"], shard["last"]) if shard else None,
        progress=lambda meter: log.info("meter %s done", meter),
    )
    where = f" shard {shard['index']} ({shard['first']}..{shard['last']})" if shard else ""
    log.info("ingest %s..%s%s: %s", start.isoformat(), end.isoformat(), where, report.summary())
    if report.failed:
        failed = "; ".join(f"{m.meter_id}: {m.error}" for m in report.failed)
        raise IngestError(f"{len(report.failed)} meters failed (the rest is stored): {failed}")
    return {"meters": len(report.meters), "new_readings": report.loaded}


def ingest_drop_folder(url: str, drop_dir: Path | None = None) -> dict:
    """One run of file_drop: load or refuse every file waiting in the drop folder, log each
    file's account (used per register, ignored and quarantined per reason) and return it."""
    engine = get_engine(url)
    migrate(engine)
    settings = get_settings()
    drop_dir = drop_dir or settings.drop_dir
    drop_dir.mkdir(parents=True, exist_ok=True)
    outcomes = process_drop_folder(engine, drop_dir, refuse_empty=settings.drop_refuse_empty)
    for o in outcomes:
        for warning in o.warnings:
            log.warning("%s: %s", o.path.name, warning)
        report = o.report()
        if o.status == "refused":
            log.warning("%s", report[0])
        else:
            log.info("%s", "\n".join(report))
    return {
        "loaded": sum(o.status == "loaded" for o in outcomes),
        "refused": sum(o.status == "refused" for o in outcomes),
        "skipped": sum(o.status == "skipped" for o in outcomes),
        "values_used": sum(o.account.values_used for o in outcomes if o.status == "loaded"),
        "values_ignored": sum(o.account.values_ignored for o in outcomes if o.status == "loaded"),
        "values_quarantined": sum(
            o.account.values_quarantined for o in outcomes if o.status == "loaded"
        ),
        "files": [
            {
                "file": o.path.name,
                "status": o.status,
                "reason": o.reason,
                **(o.account.as_dict() if o.status != "skipped" else {}),
            }
            for o in outcomes
        ],
    }


def touch_for_rebuild(
    url: str,
    since: datetime,
    battery_id: str | None = None,
    schema: str = "analytics",
    raw_schema: str = "raw",
) -> int:
    """Mark intervals from ``since`` as changed so the next dbt run recomputes them.

    The incremental models pick up rows stamped after their last run; re-stamping the
    per-meter readings and profiles from ``since`` makes the intervals, the ledger and the
    marts of those meters recompute from there, continuing from the stored level before.
    """
    engine = get_engine(url)
    meters = "true"
    params: dict = {"since": since}
    if battery_id:
        meters = (  # the meters of all the battery's versions
            f"meter_id in (select meter_id from {raw_schema}.batteries where battery_id = :battery"
            f" union select meter_id from {raw_schema}.battery_versions where battery_id = :battery)"
        )
        params["battery"] = battery_id
    touched = 0
    with engine.begin() as conn:
        if (
            battery_id
            and conn.execute(
                text(f"select 1 from {raw_schema}.batteries where battery_id = :battery"), params
            ).first()
            is None
        ):
            raise ValueError(f"no battery {battery_id!r} in raw.batteries")
        for table, column in (
            ("int_meter_readings", "reading_at"),
            ("int_profile_intervals", "interval_start"),
        ):
            touched += conn.execute(
                text(
                    f"update {schema}_intermediate.{table} set computed_at = clock_timestamp()"
                    f" where {column} >= :since and {meters}"
                ),
                params,
            ).rowcount
    return touched


def day_report(url: str, local_day: date, schema: str = "analytics") -> list[dict]:
    """The settled day per battery: complete (all quarter hours present) or not."""
    engine = get_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                f"select b.battery_id, b.partner_id, d.intervals, d.expected_intervals,"
                f" d.estimated_intervals, d.charge_kwh, d.discharge_kwh, d.level_end_kwh"
                f" from {schema}_marts.battery_registers b"
                f" left join {schema}_marts.battery_daily d"
                f"   on d.battery_id = b.battery_id and d.local_date = :day"
                f" order by b.partner_id, b.battery_id"
            ),
            {"day": local_day},
        )
        report = [dict(r._mapping) for r in rows]
    incomplete = [
        r["battery_id"]
        for r in report
        if r["intervals"] is None or r["intervals"] < r["expected_intervals"]
    ]
    log.info(
        "%s: %d batteries, %d incomplete %s",
        local_day,
        len(report),
        len(incomplete),
        incomplete[:20],
    )
    for f in failures_on(url, local_day):  # the quality gates' warnings of the day
        log.warning(
            "%s: quality %s %s %s.%s failed in %d runs (%s rows)%s",
            local_day,
            f["level"],
            f["checkpoint"],
            f["suite"],
            f["expectation"],
            f["runs"],
            f["rows"],
            f" [{f['scope']}]" if f["scope"] else "",
        )
    return report


def battery_terms_changed(
    url: str,
    schema: str = "analytics",
    raw_schema: str = "raw",
    slack: timedelta = timedelta(minutes=1),
) -> dict:
    """Whether battery terms were recorded (a version, an end_date, a new battery: through
    the API, the portal or ``vbatt batteries``) after the ledger last read them: then
    ``battery_terms`` announces the raw data Asset and ``battery_ledger`` runs.

    The ledger's pre-hook notes when it read the terms; a record up to ``slack`` older
    counts as new too (its transaction may have committed after the read), which costs at
    most one run more."""
    engine = get_engine(url)
    seen = f"{schema}_intermediate.int_battery_ledger_terms_read"
    with engine.connect() as conn:
        recorded = conn.execute(
            text(
                f"select greatest((select max(recorded_at) from {raw_schema}.battery_versions),"
                f" (select max(recorded_at) from {raw_schema}.battery_end_dates),"
                f" (select max(updated_at) from {raw_schema}.batteries))"
            )
        ).scalar()
        exists = conn.execute(text("select to_regclass(:t) is not null"), {"t": seen}).scalar()
        read_at = (
            conn.execute(text(f"select max(read_at) from {seen}")).scalar() if exists else None
        )
    changed = recorded is not None and (read_at is None or recorded > read_at - slack)
    return {"changed": changed, "recorded_at": recorded, "ledger_read_at": read_at}
