"""Benchmark the exports: one day for N batteries in every format, against a plain COPY.

Builds N batteries x D days through the real ledger (dbt) in a throw-away embedded
cluster, gives all batteries to one partner that receives every format, and measures:
  baseline    COPY of the day's battery_intervals rows to CSV (what any export must read)
  read        the warehouse into an ExportBatch (intervals and registers)
  <format>    render + write to the outbox + record in the export ledger, per format
  rerun       the same period again: everything unchanged, nothing issued
Prints values/s and ratios to the baseline; writes benchmarks/results/export.json.
Target (issue 4): 10,000 batteries, all formats, under 60 s in total on 2 cores.

    .venv/bin/python benchmarks/export.py                   # 10,000 batteries
    .venv/bin/python benchmarks/export.py --batteries 200   # a quick look
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

from ledger import console, setup_history, timed
from sqlalchemy import create_engine, text

from vbatt.exports.data import read_batch
from vbatt.exports.issue import issue_format
from vbatt.exports.partners import PartnerConfig
from vbatt.exports.period import day_period
from vbatt.transform import run_dbt
from vbatt.warehouse import embedded

RESULTS = Path(__file__).parent / "results" / "export.json"
FORMATS = [
    {"format": "csv"},
    {"format": "csv", "name": "csv-dach", "options": {"dialect": "dach"}},
    {"format": "mscons"},
    {"format": "mscons", "name": "mscons-ch", "options": {"version": "2.2e"}},
    {"format": "ise"},
    {"format": "sdat"},
]


def partner() -> PartnerConfig:
    return PartnerConfig.model_validate(
        {
            "partner_id": "bench",
            "name": "Benchmark partner",
            "sender": {"id": "9900000000017", "qualifier": "293"},
            "receiver": {"id": "9900000000024", "qualifier": "293"},
            "formats": FORMATS,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batteries", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=2, help="history before the exported day")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="vbatt-bench-export-"))
    url = embedded.start(data_dir)
    engine = create_engine(url)
    results: dict = {}
    config = partner()
    # setup_history starts 2025-01-01 UTC; the exported day is the last whole local day
    period = day_period(date(2025, 1, args.days), "Europe/Zurich")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            setup_history(engine, url, "bench", args.batteries, args.days + 1, tmp / "target")
            with engine.begin() as conn:
                conn.execute(text("update bench_raw.batteries set partner_id = 'bench'"))
            with console.status("ledger (dbt run)"):
                run_dbt(
                    ["run"],
                    url=url,
                    schema="bench",
                    raw_schema="bench_raw",
                    target_dir=tmp / "target",
                )
            values = args.batteries * period.expected_intervals

            with timed("baseline: COPY the day to CSV", results, values), engine.connect() as conn:
                cursor = conn.connection.dbapi_connection.cursor()
                cursor.copy_expert(
                    "copy (select * from bench_marts.battery_intervals where interval_start >="
                    f" '{period.start_utc.isoformat()}' and interval_start < '{period.end_utc.isoformat()}'"
                    " order by battery_id, interval_start) to stdout with (format csv)",
                    io.StringIO(),
                )
            with timed("read batch", results, values):
                batch = read_batch(engine, config, period, schema="bench", raw_schema="bench_raw")
            outbox = tmp / "outbox"
            for fmt in config.formats:
                with timed(f"format {fmt.key}", results, values):
                    result = issue_format(engine, batch, fmt, outbox, raw_schema="bench_raw")
                results[f"format {fmt.key}"]["bytes"] = sum(p.stat().st_size for p in result.files)
                results[f"format {fmt.key}"]["files"] = len(result.files)
            with timed("rerun (unchanged)", results, values):
                rerun = [
                    issue_format(engine, batch, fmt, outbox, raw_schema="bench_raw")
                    for fmt in config.formats
                ]
            assert {r.status for r in rerun} == {"unchanged"}, rerun
    finally:
        engine.dispose()
        embedded.stop(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)

    baseline = results["baseline: COPY the day to CSV"]["seconds"]
    total = results["read batch"]["seconds"] + sum(
        v["seconds"] for k, v in results.items() if k.startswith("format ")
    )
    summary = {
        "batteries": args.batteries,
        "values_per_channel": values,
        "total_seconds_all_formats": round(total, 2),
        "target_seconds": 60,
        "over_baseline": {
            k: round(v["seconds"] / baseline, 1)
            for k, v in results.items()
            if k != "baseline: COPY the day to CSV"
        },
    }
    report = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "summary": summary,
        "steps": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    console.print_json(json.dumps(summary))
    console.log(f"written to {args.out}")


if __name__ == "__main__":
    main()
