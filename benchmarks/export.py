"""Benchmark the exports: one day for N batteries in every format, against a plain COPY.

Builds N batteries x D days through the real ledger (dbt) in a throw-away embedded
cluster, gives all batteries to one partner that receives every format, and measures:
  baseline    COPY of the day's battery_intervals rows to CSV (what any export must read)
  read        the warehouse into an ExportBatch (intervals and registers)
  <format>    render + write to the outbox + record in the export ledger, per format
  all formats the partner's formats side by side (--workers processes), as daily_settlement
              issues them; then the same with the quality gate (files read back, GX suite)
  rerun       the same period again: everything unchanged, nothing issued
Prints values/s and ratios to the baseline; writes benchmarks/results/export.json.
Target (issue 4): 10,000 batteries, all formats, under 60 s in total on 2 cores.

    .venv/bin/python benchmarks/export.py                   # 10,000 batteries
    .venv/bin/python benchmarks/export.py --batteries 200   # a quick look
"""

from __future__ import annotations

import argparse
import io
import shutil
import tempfile
from datetime import date
from pathlib import Path

from ledger import console, setup_history, timed
from report import write_report
from sqlalchemy import create_engine, text

from vbatt.exports.data import read_batch
from vbatt.exports.gate import export_gate
from vbatt.exports.issue import issue_format
from vbatt.exports.partners import PartnerConfig
from vbatt.exports.period import day_period
from vbatt.exports.run import export_partner
from vbatt.ledger.dbt_runner import run_dbt
from vbatt.warehouse import embedded

RESULTS = Path(__file__).parent / "results" / "export.json"
# A German partner (BDEW codes) and a Swiss one (EIC codes: SDAT-CH and MSCONS 2.2e want
# them); all batteries are given to each in turn, so every format carries every battery.
PARTNERS = {
    "bench-de": (
        "293",
        "9900000000017",
        "9900000000024",
        [
            {"format": "csv"},
            {"format": "mscons"},
            {"format": "ise"},
        ],
    ),
    "bench-ch": (
        "305",
        "12X-VBATT-DEMO-S",
        "12X-EWA-DEMO---R",
        [
            {"format": "csv", "name": "csv-dach", "options": {"dialect": "dach"}},
            {"format": "mscons", "options": {"version": "2.2e"}},
            {"format": "sdat"},
        ],
    ),
}


def partner(partner_id: str, batteries: int) -> PartnerConfig:
    qualifier, sender, receiver, formats = PARTNERS[partner_id]
    swiss = {  # SDAT-CH needs 33-character Swiss metering point ids
        f"BB{m:05d}": {"metering_point": f"CH10001123450{m:020d}"} for m in range(1, batteries + 1)
    }
    return PartnerConfig.model_validate(
        {
            "batteries": swiss if qualifier == "305" else None,
            "partner_id": partner_id,
            "name": f"Benchmark partner {partner_id}",
            "sender": {"id": sender, "qualifier": qualifier},
            "receiver": {"id": receiver, "qualifier": qualifier},
            "formats": formats,
        }
    )


def forget_issues(engine) -> None:
    """An empty export ledger, so the next run issues every file anew."""
    with engine.begin() as conn:
        conn.execute(text("truncate bench_raw.export_files, bench_raw.export_references"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batteries", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=2, help="history before the exported day")
    parser.add_argument("--workers", type=int, default=2, help="processes issuing formats")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="vbatt-bench-export-"))
    url = embedded.start(data_dir)
    engine = create_engine(url)
    results: dict = {}
    # setup_history starts 2025-01-01 UTC; the exported day is the last whole local day
    period = day_period(date(2025, 1, args.days), "Europe/Zurich")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            setup_history(engine, url, "bench", args.batteries, args.days + 1, tmp / "target")
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
            outbox = tmp / "outbox"
            for partner_id in PARTNERS:
                config = partner(partner_id, args.batteries)
                with engine.begin() as conn:
                    conn.execute(
                        text("update bench_raw.batteries set partner_id = :p"), {"p": partner_id}
                    )
                with timed(f"read batch {partner_id}", results, values):
                    batch = read_batch(
                        engine, config, period, schema="bench", raw_schema="bench_raw"
                    )
                for fmt in config.formats:
                    label = f"format {fmt.key} ({partner_id})"
                    with timed(label, results, values):
                        result = issue_format(engine, batch, fmt, outbox, raw_schema="bench_raw")
                    results[label]["bytes"] = sum(p.stat().st_size for p in result.files)
                    results[label]["files"] = len(result.files)
                # what daily_settlement does: all formats side by side, then with the gate
                for label, gate in (
                    ("all formats", None),
                    ("all formats + gate", export_gate(url, "bench", "bench_raw")),
                ):
                    forget_issues(engine)
                    with timed(f"{label} ({partner_id})", results, values):
                        issued, _ = export_partner(
                            engine,
                            config,
                            period,
                            outbox,
                            schema="bench",
                            raw_schema="bench_raw",
                            gate=gate,
                            send=False,
                            workers=args.workers,
                        )
                    assert {r.status for r in issued} == {"new"}, [r.reason for r in issued]
                with timed(f"rerun {partner_id} (unchanged)", results, values):
                    rerun, _ = export_partner(
                        engine,
                        config,
                        period,
                        outbox,
                        schema="bench",
                        raw_schema="bench_raw",
                        send=False,
                        workers=args.workers,
                    )
                assert {r.status for r in rerun} == {"unchanged"}, rerun
                forget_issues(engine)
    finally:
        engine.dispose()
        embedded.stop(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)

    baseline = results["baseline: COPY the day to CSV"]["seconds"]
    # the production path per partner: read the batch, then all its formats side by side
    total = sum(
        v["seconds"] for k, v in results.items() if k.startswith(("read batch", "all formats ("))
    )
    with_gate = sum(
        v["seconds"]
        for k, v in results.items()
        if k.startswith(("read batch", "all formats + gate"))
    )
    one_by_one = sum(
        v["seconds"] for k, v in results.items() if k.startswith(("read batch", "format "))
    )
    summary = {
        "batteries": args.batteries,
        "values_per_channel": values,
        "workers": args.workers,
        "total_seconds_all_formats": round(total, 2),
        "total_seconds_with_quality_gate": round(with_gate, 2),
        "total_seconds_one_format_after_another": round(one_by_one, 2),
        "target_seconds": 60,
        "over_baseline": {
            k: round(v["seconds"] / baseline, 1)
            for k, v in results.items()
            if k != "baseline: COPY the day to CSV"
        },
    }
    write_report(args.out, summary, console, steps=results)


if __name__ == "__main__":
    main()
