"""Benchmark one meter_ingest shard: what a mapped task costs, for docs/scaling.md.

A shard runs ``ingest_smartme`` over its meter range exactly as the DAG's ``fetch_shard``
does, against the simulated smart-me cloud, in a throw-away embedded cluster:

  steady   a regular 15-minute run: every meter complete up to the window, so one request
           per meter for the window plus the 2-hour lookback (9 readings)
  catch-up a new meter's first run: its history since its battery started, one day
           (97 readings), as in `make cluster-test`

Each is measured with the client's rate limit off (``--rate 0``), so the figures are the
cost of the work (HTTP round trip, parsing, one COPY load per shard); the API's own rate
limit then bounds the requests per second separately (docs/scaling.md). Results go to
benchmarks/results/shards.json.

    .venv/bin/python benchmarks/shards.py                    # 4 shards of 250 meters
    .venv/bin/python benchmarks/shards.py --meters 100 --shard-size 50
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from rich.console import Console
from sqlalchemy import create_engine, text

from vbatt.ingest.load import ingest_smartme, meters_to_ingest
from vbatt.ingest.shards import plan_shards
from vbatt.ingest.smartme import SmartMeClient, SmartMeConfig
from vbatt.simulator import start_in_background
from vbatt.simulator.app import DEMO_API_KEY
from vbatt.simulator.households import meter_id_for
from vbatt.warehouse import embedded
from vbatt.warehouse.loader import upsert_batteries
from vbatt.warehouse.migrate import migrate

console = Console()
RESULTS = Path(__file__).parent / "results" / "shards.json"
DAY = date(2026, 6, 1)
WINDOW_END = datetime(2026, 6, 1, 22, 0, tzinfo=UTC)  # midnight in Zurich after DAY
QUARTER = timedelta(minutes=15)


def batteries(meters: int) -> list[dict]:
    return [
        {
            "battery_id": f"B{i:07d}",
            "name": f"bench {i}",
            "partner_id": "p",
            "customer_id": f"c{i}",
            "meter_id": meter_id_for(i),
            "capacity_kwh": 5.0,
            "start_date": DAY,
            "reset_date": None,
            "reset_repeat": "yearly",
            "end_date": None,
            "timezone": "Europe/Zurich",
            "initial_level_kwh": 0.0,
        }
        for i in range(1, meters + 1)
    ]


def run_shards(engine, client, shards, start, end) -> list[dict]:
    out = []
    for shard in shards:
        t0 = time.perf_counter()
        report = ingest_smartme(
            engine,
            client,
            start=start,
            end=end,
            lookback=timedelta(hours=2),
            meter_range=(shard.first, shard.last),
        )
        seconds = time.perf_counter() - t0
        if report.failed:
            raise SystemExit(f"shard {shard.index}: {len(report.failed)} meters failed")
        received = sum(m.received for m in report.meters)
        out.append(
            {
                "meters": len(report.meters),
                "readings": received,
                "seconds": round(seconds, 3),
                "seconds_per_meter": round(seconds / len(report.meters), 4),
            }
        )
        console.log(
            f"shard {shard.index} ({shard.first}..{shard.last}): {len(report.meters)} meters,"
            f" {received:,} readings in {seconds:.2f} s"
        )
    return out


def summary(runs: list[dict]) -> dict:
    meters = sum(r["meters"] for r in runs)
    seconds = sum(r["seconds"] for r in runs)
    return {
        "shards": len(runs),
        "meters": meters,
        "readings": sum(r["readings"] for r in runs),
        "seconds": round(seconds, 2),
        "seconds_per_meter": round(seconds / meters, 4),
        "seconds_per_shard_avg": round(seconds / len(runs), 2),
        "runs": runs,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--meters", type=int, default=1000)
    p.add_argument("--shard-size", type=int, default=250)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="vbatt-bench-shards-"))
    url, stop_sim = start_in_background(meters=args.meters, seed=7)
    try:
        db_url = embedded.start(tmp / "pg")
        engine = create_engine(db_url)
        migrate(engine)
        upsert_batteries(engine, batteries(args.meters))
        shards = plan_shards(meters_to_ingest(engine, WINDOW_END), args.shard_size)
        console.log(f"{args.meters} meters in {len(shards)} shards of {args.shard_size}")
        with SmartMeClient(SmartMeConfig(base_url=url, api_key=DEMO_API_KEY, rate=None)) as c:
            catch_up = summary(run_shards(engine, c, shards, WINDOW_END - QUARTER, WINDOW_END))
            steady = summary(run_shards(engine, c, shards, WINDOW_END, WINDOW_END + QUARTER))
        with engine.connect() as conn:
            stored = conn.execute(text("select count(*) from raw.meter_readings")).scalar()
        engine.dispose()
    finally:
        stop_sim()
        embedded.stop(tmp / "pg")
        shutil.rmtree(tmp, ignore_errors=True)
    report = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "shard_size": args.shard_size,
        "note": "client rate limit off; the simulator runs on the same machine",
        "catch_up_one_day": catch_up,
        "steady_15_minute_run": steady,
        "readings_stored": stored,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    console.print_json(
        json.dumps(
            {
                k: {kk: vv for kk, vv in v.items() if kk != "runs"} if isinstance(v, dict) else v
                for k, v in report.items()
            }
        )
    )


if __name__ == "__main__":
    main()
