"""Benchmark ingest: readings from the simulated smart-me API into the raw layer.

Two sides, measured separately because they are limited by different things:
  api    readings/s fetched through SmartMeClient from the simulator, paced by the client's
         request rate (--rate); the rate bounds what is possible, so the bound is printed
  load   readings/s appended by the project's COPY loader (vbatt.warehouse.loader), once as
         one load (what ingest_smartme appends per run) and once per meter (a transaction per
         meter, for comparison), next to a baseline measured in the same run: a plain COPY
         of the same rows into an unindexed table
Everything runs in a throw-away embedded cluster; results go to benchmarks/results/ingest.json.

    .venv/bin/python benchmarks/ingest.py                      # 1000 meters x 1 day
    .venv/bin/python benchmarks/ingest.py --meters 200 --rate 100
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from report import write_report
from rich.console import Console
from sqlalchemy import Engine, create_engine, event, text

from vbatt.ingest.smartme import SmartMeClient, SmartMeConfig
from vbatt.readings import Reading
from vbatt.simulator import start_in_background
from vbatt.simulator.app import DEMO_API_KEY
from vbatt.simulator.households import meter_id_for
from vbatt.warehouse import embedded, loader
from vbatt.warehouse.migrate import migrate

console = Console()
START = datetime(2025, 6, 10, tzinfo=UTC)
QUARTER = timedelta(minutes=15)
RESULTS = Path(__file__).parent / "results" / "ingest.json"
TARGET_LOAD_READINGS_PER_S = 100_000


def log_step(label: str, seconds: float, readings: int, extra: str = "") -> dict:
    """One line per step, and the same numbers for the JSON report."""
    rate = readings / seconds if seconds else float("inf")
    console.log(
        f"{label}: {readings:,} readings in {seconds:.2f} s = {rate:,.0f} readings/s{extra}"
    )
    return {"seconds": round(seconds, 3), "readings": readings, "readings_per_s": round(rate)}


# --- the API side ---------------------------------------------------------------------


def fetch_all(url: str, meters: list[str], days: int, rate: float, workers: int):
    """Every meter's readings through one client (one token bucket), as ingest would.

    Threads share the client so the request rate, not a single connection's round trip,
    is what limits the fetch; the rate is the production knob that keeps us within the
    cloud's limits."""
    end = START + timedelta(days=days) - QUARTER  # exactly 96 readings per meter and day
    config = SmartMeConfig(base_url=url, api_key=DEMO_API_KEY, rate=rate, burst=1)
    requests = defaultdict(int)

    def one(meter: str) -> list[Reading]:
        result = client.readings(meter, START, end)
        assert not result.rejected, result.rejected[:3]
        return result.readings

    with SmartMeClient(config) as client:
        original = client._call

        def counted(*args, **kwargs):
            requests["n"] += 1  # racy under threads only by a count nobody relies on
            return original(*args, **kwargs)

        client._call = counted
        started = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            batches = list(pool.map(one, meters))
        seconds = time.perf_counter() - started
    readings = [r for batch in batches for r in batch]
    return readings, seconds, requests["n"]


def api_side(meters: int, days: int, rate: float, workers: int, seed: int):
    """Start a clean simulator (no faults), fetch, and report against the rate's bound."""
    ids = [meter_id_for(i) for i in range(1, meters + 1)]
    url, stop = start_in_background(meters=meters, seed=seed)
    try:
        readings, seconds, requests = fetch_all(url, ids, days, rate, workers)
    finally:
        stop()
    per_request = len(readings) / requests
    bound = rate * per_request
    result = log_step(
        f"api: {requests:,} requests at --rate {rate:g}/s, {workers} workers",
        seconds,
        len(readings),
        f" (bound by the rate: {bound:,.0f} readings/s; {requests / seconds:.1f} requests/s)",
    )
    result |= {
        "requests": requests,
        "requests_per_s": round(requests / seconds, 2),
        "rate_limit_requests_per_s": rate,
        "readings_per_request": round(per_request, 1),
        "bound_readings_per_s": round(bound),
        "of_bound": round(result["readings_per_s"] / bound, 3),
        "workers": workers,
    }
    return readings, result


# --- the load side --------------------------------------------------------------------


class Breakdown:
    """Where a load's time goes: Python formatting, COPY, and each SQL statement kind.

    Wraps the loader's helpers and listens to the engine's cursor events, so the product
    code runs unchanged and the numbers add up to the measured wall time (the rest is
    SQLAlchemy and driver overhead)."""

    def __init__(self, engine: Engine) -> None:
        self.engine, self.seconds = engine, defaultdict(float)
        self._starts: list[float] = []

    def _before(self, conn, cursor, statement, *_):
        self._starts.append(time.perf_counter())

    def _after(self, conn, cursor, statement, *_):
        words = [w.rsplit(".", 1)[-1] for w in statement.lower().split()[:3]]
        self.seconds[f"sql: {' '.join(words)}"] += time.perf_counter() - self._starts.pop()

    @contextmanager
    def active(self) -> Iterator[None]:
        originals = loader._copy, loader._reading_row
        copy, reading_row = originals

        def timed_copy(conn, table, columns, rows):
            # the rows generator formats lazily inside csv.writerows: split it out first
            started = time.perf_counter()
            rows = list(rows)
            self.seconds["python: rows"] += time.perf_counter() - started
            started = time.perf_counter()
            copy(conn, table, columns, rows)
            self.seconds["copy (csv + COPY)"] += time.perf_counter() - started

        def timed_row(r):
            started = time.perf_counter()
            try:
                return reading_row(r)
            finally:
                self.seconds["python: _reading_row"] += time.perf_counter() - started

        event.listen(self.engine, "before_cursor_execute", self._before)
        event.listen(self.engine, "after_cursor_execute", self._after)
        loader._copy, loader._reading_row = timed_copy, timed_row
        try:
            yield
        finally:
            loader._copy, loader._reading_row = originals
            event.remove(self.engine, "before_cursor_execute", self._before)
            event.remove(self.engine, "after_cursor_execute", self._after)

    def report(self, wall: float) -> dict[str, float]:
        """Seconds per part; what no part explains is mostly COMMIT (WAL flush, temp drop)."""
        parts = sorted(self.seconds.items(), key=lambda kv: -kv[1])
        rest = wall - sum(self.seconds.values())
        return {k: round(v, 3) for k, v in parts} | {
            "other: commit, SQLAlchemy, driver": round(rest, 3),
            "wall": round(wall, 3),
        }


def fresh_raw(engine: Engine, name: str) -> str:
    """A new, empty raw schema, so every trial appends into the same starting state."""
    with engine.begin() as conn:
        conn.execute(text(f"drop schema if exists {name} cascade"))
    migrate(engine, name)
    return name


def bulk_load(engine: Engine, raw: str, readings: list[Reading]) -> None:
    loader.load_readings(engine, readings, source="benchmark", origin="bulk", raw_schema=raw)


def per_meter_loads(engine: Engine, raw: str, readings: list[Reading]) -> None:
    """One transaction per meter (begin/append/finish): the cost ingest avoids by loading a run at once."""
    by_meter: dict[str, list[Reading]] = defaultdict(list)
    for r in readings:
        by_meter[r.meter_id].append(r)
    for meter, batch in by_meter.items():
        with engine.begin() as conn:
            load_id = loader.begin_load(conn, raw, "benchmark", meter)
            received, loaded = loader.append_readings(conn, raw, load_id, "benchmark", batch)
            loader.finish_load(conn, raw, load_id, received, loaded, 0)


def baseline_copy(engine: Engine, raw: str, readings: list[Reading]) -> None:
    """The floor: the same rows, formatted the same way, COPYed into an unindexed table."""
    with engine.begin() as conn:
        conn.execute(text(f"drop table if exists {raw}.bench_floor"))
        conn.execute(
            text(
                f"create table {raw}.bench_floor (meter_id text, ts timestamptz,"
                " import_kwh float8, export_kwh float8)"
            )
        )
    started = time.perf_counter()
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(loader._reading_row(r) for r in readings)
    buffer.seek(0)
    with engine.begin() as conn:
        cursor = conn.connection.dbapi_connection.cursor()
        cursor.copy_expert(f"copy {raw}.bench_floor from stdin with (format csv)", buffer)
    return time.perf_counter() - started


def timed_trials(
    engine: Engine, run: Callable[[Engine, str, list[Reading]], object], readings, trials: int
) -> list[float]:
    """Median of a few trials, each into a fresh schema: one run is too noisy on 2 cores."""
    times = []
    for i in range(trials):
        raw = fresh_raw(engine, f"bench_raw_{i}")
        started = time.perf_counter()
        floor = run(engine, raw, readings)
        times.append(floor if isinstance(floor, float) else time.perf_counter() - started)
    return times


def check_stored(engine: Engine, raw: str, expected: int) -> None:
    with engine.connect() as conn:
        n = conn.execute(text(f"select count(*) from {raw}.meter_readings")).scalar_one()
    if n != expected:
        raise SystemExit(f"the loader stored {n} readings, expected {expected}")


def load_side(engine: Engine, readings: list[Reading], trials: int) -> dict:
    n = len(readings)
    steps = {}
    base = statistics.median(timed_trials(engine, baseline_copy, readings, trials))
    steps["baseline: COPY into an unindexed table"] = log_step(
        "load baseline: plain COPY, unindexed", base, n
    )
    bulk = statistics.median(timed_trials(engine, bulk_load, readings, trials))
    check_stored(engine, f"bench_raw_{trials - 1}", n)
    steps["loader: one load (load_readings)"] = log_step(
        "load: loader, one load", bulk, n, f" ({bulk / base:.1f}x baseline)"
    )
    per_meter = statistics.median(timed_trials(engine, per_meter_loads, readings, trials))
    check_stored(engine, f"bench_raw_{trials - 1}", n)
    steps["loader: one load per meter (for comparison)"] = log_step(
        "load: loader, one load per meter", per_meter, n, f" ({per_meter / base:.1f}x baseline)"
    )
    breakdown = {}
    for label, run in (("one load", bulk_load), ("per meter", per_meter_loads)):
        profile = Breakdown(engine)
        raw = fresh_raw(engine, "bench_raw_profile")
        with profile.active():
            started = time.perf_counter()
            run(engine, raw, readings)
            wall = time.perf_counter() - started
        breakdown[label] = profile.report(wall)
    return {
        "steps": steps,
        "baseline_s": base,
        "bulk_s": bulk,
        "per_meter_s": per_meter,
        "breakdown_seconds": breakdown,
    }


# --- the run --------------------------------------------------------------------------


def summarise(args, api: dict, load: dict, n: int) -> dict:
    bulk_rate, per_meter_rate = n / load["bulk_s"], n / load["per_meter_s"]
    return {
        "meters": args.meters,
        "days": args.days,
        "readings": n,
        "api_readings_per_s": api["readings_per_s"],
        "api_bound_readings_per_s": api["bound_readings_per_s"],
        "api_of_bound": api["of_bound"],
        "load_readings_per_s": round(bulk_rate),
        "load_per_meter_readings_per_s": round(per_meter_rate),
        "baseline_readings_per_s": round(n / load["baseline_s"]),
        "load_over_baseline": round(load["bulk_s"] / load["baseline_s"], 2),
        "load_per_meter_over_baseline": round(load["per_meter_s"] / load["baseline_s"], 2),
        "targets": {"load_readings_per_s": TARGET_LOAD_READINGS_PER_S},
        "load_meets_target": bulk_rate >= TARGET_LOAD_READINGS_PER_S,
        "load_per_meter_meets_target": per_meter_rate >= TARGET_LOAD_READINGS_PER_S,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=1000)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--rate", type=float, default=50.0, help="API requests per second")
    parser.add_argument("--workers", type=int, default=4, help="threads sharing the client")
    parser.add_argument("--trials", type=int, default=5, help="load trials (median)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    console.log(f"{args.meters} meters x {args.days} days, --rate {args.rate:g} requests/s")
    readings, api = api_side(args.meters, args.days, args.rate, args.workers, args.seed)

    data_dir = Path(tempfile.mkdtemp(prefix="vbatt-bench-ingest-"))
    engine = create_engine(embedded.start(data_dir))
    try:
        load = load_side(engine, readings, args.trials)
    finally:
        engine.dispose()
        embedded.stop(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)  # a throw-away cluster: leave no trace

    summary = summarise(args, api, load, len(readings))
    write_report(
        args.out,
        summary,
        console,
        api=api,
        load=load["steps"],
        load_breakdown_seconds=load["breakdown_seconds"],
    )


if __name__ == "__main__":
    main()
