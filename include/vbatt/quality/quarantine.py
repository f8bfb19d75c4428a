"""Readings held back by a row-level expectation, and their release.

``raw.meter_readings`` stays append-only: a failing reading is listed in
``raw.quarantined_readings`` (the staging model leaves it out of the ledger) and in
``raw.rejected_readings`` with the expectation's name as the reason, beside what the
loaders refused. Releasing it (after fixing what made it fail, e.g. a battery's start
date) gives it a load of its own, so the next incremental ledger run recomputes its
meter from that reading on. The release load goes through the ``after_ingest`` gate like
any load (``vbatt quarantine release`` runs it at once): a reading that still fails is
held again, with the reason, and does not reach the ledger.
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import Engine, text

from vbatt.warehouse.db import get_engine
from vbatt.warehouse.loader import begin_load, finish_load
from vbatt.warehouse.migrate import check_schema_name, migrate

_JOIN = re.compile(r"\bjoin\b", re.IGNORECASE)


def with_batch(query: str, batch_query: str) -> str:
    """The suite query with the batch in place, aliased the way GX does it."""
    batch = f"({batch_query})" if _JOIN.search(query) else f"({batch_query}) as subselect"
    return query.replace("{batch}", batch)


def _consumed_load_id(conn, schema: str) -> int:
    """The newest load the readings model has taken in (0 before its first run)."""
    table = conn.execute(
        text("select to_regclass(:t)"), {"t": f"{schema}_intermediate.int_meter_readings"}
    ).scalar()
    if not table:
        return 0
    # the newest run's watermark, through the computed_at index (as the model reads it)
    newest = conn.execute(
        text(f"select max_load_id from {table} order by computed_at desc limit 1")
    ).scalar()
    return newest or 0


def quarantine_failures(
    engine: Engine, raw: str, schema: str, failed: dict[str, dict], batch_query: str, run_id: int
) -> tuple[int, int]:
    """Hold back every reading a failed row-level expectation names: (held, too late).

    Readings the ledger has already taken in are not held (the ledger would not notice);
    they are counted so the summary can say so.
    """
    held = late = 0
    with engine.begin() as conn:
        # the lock int_meter_readings holds while it runs (its pre-hook): the watermark read
        # next stays true until this transaction commits
        conn.execute(text("select pg_advisory_xact_lock(hashtext('vbatt-readings-intake'))"))
        consumed = _consumed_load_id(conn, schema)
        for name, config in failed.items():
            if not config.get("meta", {}).get("quarantine"):
                continue
            failing = with_batch(config["kwargs"]["unexpected_rows_query"], batch_query)
            late += conn.execute(
                text(f"select count(*) from ({failing}) as failing where load_id <= :c"),
                {"c": consumed},
            ).scalar()
            rows = conn.execute(
                text(
                    f"insert into {raw}.quarantined_readings"
                    " (meter_id, ts, import_kwh, export_kwh, load_id, reason, run_id)"
                    " select distinct on (meter_id, ts, import_kwh, export_kwh)"
                    "  meter_id, ts, import_kwh, export_kwh, load_id, :reason, :run"
                    f" from ({failing}) as failing where load_id > :c"
                    # a released reading that fails again is held again (its first load
                    # stays); one still held is not held twice
                    " on conflict (meter_id, ts, import_kwh, export_kwh) do update set"
                    "  released_at = null, released_load_id = null, reason = excluded.reason,"
                    "  run_id = excluded.run_id, quarantined_at = now()"
                    f" where {raw}.quarantined_readings.released_at is not null"
                    " returning meter_id, ts, import_kwh, export_kwh, load_id"
                ),
                {"reason": name, "c": consumed, "run": run_id},
            ).all()
            for r in rows:
                conn.execute(
                    text(
                        f"insert into {raw}.rejected_readings"
                        " (load_id, source, location, meter_id, record, reason)"
                        " values (:load, 'quality', 'quality gate after_ingest', :m, :rec, :reason)"
                    ),
                    {
                        "load": r.load_id,
                        "m": r.meter_id,
                        "rec": f"{r.meter_id},{r.ts.isoformat()},{r.import_kwh!r},{r.export_kwh!r}",
                        "reason": name,
                    },
                )
            held += len(rows)
    return held, late


def list_quarantine(
    url: str | None = None, *, raw_schema: str = "raw", include_released: bool = False
) -> list[dict]:
    raw = check_schema_name(raw_schema)
    engine = get_engine(url)
    migrate(engine, raw)
    where = "" if include_released else "where released_at is null"
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                f"select meter_id, ts, import_kwh, export_kwh, reason, load_id, run_id,"
                f" quarantined_at, released_at from {raw}.quarantined_readings {where}"
                f" order by meter_id, ts, import_kwh, export_kwh"
            )
        )
        return [dict(r._mapping) for r in rows]


def list_rejected(
    url: str | None = None, *, raw_schema: str = "raw", load_id: int | None = None, limit: int = 50
) -> list[dict]:
    """Values refused on their way in (raw.rejected_readings: each under the load that first
    refused it; a later load refusing it again only counts it), newest load first, in file order within a load. They never reached
    the raw readings, so there is nothing to release: the sender corrects and sends again."""
    raw = check_schema_name(raw_schema)
    engine = get_engine(url)
    migrate(engine, raw)
    where = "where load_id = :load" if load_id is not None else ""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                f"select load_id, source, location, meter_id, reason, record, rejected_at"
                f" from {raw}.rejected_readings {where}"
                f" order by load_id desc nulls last, rejected_at, ctid limit :limit"
            ),
            {"load": load_id, "limit": limit},
        )
        return [dict(r._mapping) for r in rows]


def release(
    url: str | None = None,
    *,
    meter_id: str | None = None,
    reason: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    raw_schema: str = "raw",
) -> int:
    """Re-admit held readings (all, or those matching the filters); return how many.

    The release is a load of its own (source ``quarantine-release``) whose id the
    staging model hands on as the readings' load id: the incremental models take them
    up on their next run, from each reading's instant on.
    """
    raw = check_schema_name(raw_schema)
    engine = get_engine(url)
    migrate(engine, raw)
    filters = ["released_at is null"]
    params: dict = {}
    for column, op, value in (
        ("meter_id", "=", meter_id),
        ("reason", "=", reason),
        ("ts", ">=", since),
        ("ts", "<", until),
    ):
        if value is not None:
            key = f"p{len(params)}"
            filters.append(f"{column} {op} :{key}")
            params[key] = value
    origin = "vbatt quarantine release " + " ".join(
        f"{k}={v}" for k, v in (("meter", meter_id), ("reason", reason)) if v
    )
    with engine.begin() as conn:
        waiting = conn.execute(
            text(f"select count(*) from {raw}.quarantined_readings where {' and '.join(filters)}"),
            params,
        ).scalar()
        if not waiting:
            return 0
        load_id = begin_load(conn, raw, "quarantine-release", origin.strip())
        released = conn.execute(
            text(
                f"update {raw}.quarantined_readings set released_at = clock_timestamp(),"
                f" released_load_id = :load where {' and '.join(filters)}"
            ),
            {**params, "load": load_id},
        ).rowcount
        finish_load(conn, raw, load_id, released, released, 0)
    return released
