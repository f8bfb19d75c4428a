"""What the gates recorded, for the daily summary and the end of ``make demo``."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text

from vbatt.quality.context import docs_root
from vbatt.quality.suites import dbt_vars
from vbatt.warehouse.db import get_engine
from vbatt.warehouse.migrate import check_schema_name


def _exists(conn, raw: str) -> bool:
    return bool(conn.execute(text("select to_regclass(:t)"), {"t": f"{raw}.quality_runs"}).scalar())


def failures_on(url: str, local_day: date, raw_schema: str = "raw") -> list[dict]:
    """Failed expectations of the runs that started on ``local_day`` (default timezone),
    one row per checkpoint, expectation and level, with how often and how many rows."""
    raw = check_schema_name(raw_schema)
    zone = ZoneInfo(dbt_vars()["default_timezone"])
    start = datetime.combine(local_day, time(0), zone)
    end = datetime.combine(local_day + timedelta(days=1), time(0), zone)
    with get_engine(url).connect() as conn:
        if not _exists(conn, raw):
            return []
        rows = conn.execute(
            text(
                f"select r.checkpoint, r.scope, f.suite, f.expectation, f.level,"
                f" count(*) as runs, sum(f.unexpected_count) as rows"
                f" from {raw}.quality_failures as f"
                f" join {raw}.quality_runs as r on r.run_id = f.run_id"
                f" where r.started_at >= :s and r.started_at < :e"
                f" group by 1, 2, 3, 4, 5 order by 1, 2, 3, 4, 5"
            ),
            {"s": start, "e": end},
        )
        return [dict(r._mapping) for r in rows]


def latest_summaries(url: str, raw_schema: str = "raw") -> list[str]:
    """The newest run's summary of each checkpoint (and partner, for exports)."""
    raw = check_schema_name(raw_schema)
    with get_engine(url).connect() as conn:
        if not _exists(conn, raw):
            return []
        return list(
            conn.execute(
                text(
                    f"select distinct on (checkpoint, scope) summary from {raw}.quality_runs"
                    f" where outcome <> 'running' order by checkpoint, scope, run_id desc"
                )
            ).scalars()
        )


def overview(url: str, raw_schema: str = "raw") -> str:
    """The gates' latest outcomes and where their HTML reports are, for people."""
    summaries = latest_summaries(url, raw_schema)
    if not summaries:
        return "no quality checkpoint has run yet"
    index = docs_root() / "index.html"
    body = "\n".join(s.split("\n  data docs:")[0] for s in summaries)
    return f"{body}\nData docs (HTML validation reports): {index}"
