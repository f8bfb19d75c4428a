"""Benchmark the read API: p95 latency of /api/Devices/{id} and of a month of intervals.

Builds N batteries x D days through the real pipeline in a throw-away embedded cluster
(the readings generator and battery rows of benchmarks/ledger.py, then `dbt run`), so the
marts, their indexes and the planner's statistics are the production ones. Then it:
  explain  checks that a month of one battery's intervals is an index range scan on the
           ledger and that no query reads a table of over 10,000 rows whole (the plans are
           written to the results; the run fails otherwise)
  serve    starts the API (`python -m vbatt.api`) as its own process on 127.0.0.1
  load     C client threads (httpx) request random batteries of two partners' keys for
           R requests per endpoint; latency is measured per request at the client
Writes benchmarks/results/api.json.

    .venv/bin/python benchmarks/api.py                             # the targets: 10,000 x 365
    .venv/bin/python benchmarks/api.py --batteries 200 --days 30   # a quick look

The full size builds 350M quarter hours (about 10x benchmarks/ledger.py's full run in time
and disk: plan for an hour and ~100 GB free in the temp directory).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
from report import write_report
from rich.console import Console
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).parent))
from ledger import START, setup_history  # noqa: E402 - the same generator as the ledger's

from vbatt.api.keys import Principal, create_key  # noqa: E402
from vbatt.ledger.dbt_runner import run_dbt  # noqa: E402
from vbatt.warehouse import embedded  # noqa: E402

console = Console()
RESULTS = Path(__file__).parent / "results" / "api.json"
TARGETS_MS = {"device": 100.0, "month_of_intervals": 300.0}
SCHEMA = "bench"
BIG_TABLE_ROWS = 10_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def plan_nodes(plan: dict) -> list[str]:
    """Node types with their relation and index, depth first."""
    node = plan["Plan"] if "Plan" in plan else plan
    label = node["Node Type"]
    if "Index Name" in node:
        label += f" using {node['Index Name']}"
    if "Relation Name" in node:
        label += f" on {node['Relation Name']}"
    return [label] + [n for child in node.get("Plans", []) for n in plan_nodes(child)]


def explain(engine, sql: str, params: dict) -> list[str]:
    with engine.connect() as conn:
        plan = conn.execute(text("explain (format json) " + sql), params).scalar_one()
    return plan_nodes(plan[0])


def count_rows(engine, relation: str) -> int:
    """Rows of a benchmark relation, counted (statistics may be missing right after dbt)."""
    with engine.connect() as conn:
        schema = conn.execute(
            text(
                "select n.nspname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
                " where c.relname = :r and n.nspname like :s"
            ),
            {"r": relation, "s": f"{SCHEMA}%"},
        ).scalar_one()
        return conn.execute(text(f'select count(*) from "{schema}"."{relation}"')).scalar_one()


def check_plans(engine, battery_id: str, month: date) -> dict[str, list[str]]:
    """EXPLAIN the API's own queries; a sequential scan over a big table fails the run."""
    from vbatt.api.models import Interval
    from vbatt.api.queries import Marts

    marts = Marts(engine, f"{SCHEMA}_marts", f"{SCHEMA}_raw")
    columns = ", ".join(f"i.{c}" for c in Interval.model_fields)
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    plans = {
        "month_of_intervals": explain(
            engine,
            f"select {columns} from {marts.marts}.battery_intervals i where i.battery_id = :id"
            " and i.interval_start >= :start and i.interval_start < :end"
            " order by i.interval_start limit 10000",
            {"id": battery_id, "start": start, "end": start + timedelta(days=31)},
        ),
        "settlements": explain(
            engine,
            f"select * from {marts.marts}.settlement_periods s where s.battery_id = :id"
            " order by s.period_start limit 1000",
            {"id": battery_id},
        ),
        "device": explain(
            engine,
            marts._battery_sql() + " and b.battery_id = :id",
            {"id": battery_id, "partner": "P1", "customer": None},
        ),
    }
    for name, nodes in plans.items():
        for node in nodes:  # a small table may be read whole; a big one never
            if not node.startswith("Seq Scan"):
                continue
            relation = node.rsplit(" on ", 1)[-1]
            rows = count_rows(engine, relation)
            if rows > BIG_TABLE_ROWS:
                raise SystemExit(f"{name}: sequential scan of {relation} ({rows:,} rows): {nodes}")
    if not any("int_battery_ledger" in n and "Index" in n for n in plans["month_of_intervals"]):
        raise SystemExit(f"month_of_intervals is not an index scan: {plans['month_of_intervals']}")
    return plans


def start_api(url: str, port: int, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vbatt.api",
            "--port",
            str(port),
            "--warehouse-url",
            url,
            "--marts-schema",
            f"{SCHEMA}_marts",
            "--raw-schema",
            f"{SCHEMA}_raw",
            "--log-level",
            "warning",
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    for _ in range(150):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/Health").status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit(f"the API did not start: {log.read_text()[-2000:]}")


def load(
    base: str, keys: dict[str, str], batteries: int, months: list[date], clients: int, n: int
) -> dict:
    """``n`` requests per endpoint from ``clients`` threads; latencies in ms."""
    latencies: dict[str, list[float]] = {"device": [], "month_of_intervals": []}
    errors: list[str] = []
    lock = threading.Lock()
    jobs = [(kind, i) for i in range(n) for kind in latencies]
    random.Random(1).shuffle(jobs)
    next_job = iter(jobs)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=base, timeout=60) as client:
            while True:
                with lock:
                    job = next(next_job, None)
                if job is None:
                    return
                kind, _ = job
                m = rng.randint(1, batteries)
                battery = f"BB{m:05d}"
                headers = {"Authorization": f"ApiKey {keys[f'P{m % 2}']}"}
                if kind == "device":
                    url = f"/api/Devices/{battery}"
                else:
                    first = rng.choice(months)
                    after = (first + timedelta(days=32)).replace(day=1)
                    url = f"/v1/batteries/{battery}/intervals?start={first}&end={after}&limit=10000"
                started = time.perf_counter()
                response = client.get(url, headers=headers)
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    if response.status_code != 200:
                        errors.append(f"{response.status_code} {url}")
                    latencies[kind].append(elapsed)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    if errors:
        raise SystemExit(f"{len(errors)} failed requests, e.g. {errors[:3]}")

    def stats(values: list[float]) -> dict:
        q = statistics.quantiles(values, n=100)
        return {
            "requests": len(values),
            "p50_ms": round(q[49], 1),
            "p95_ms": round(q[94], 1),
            "p99_ms": round(q[98], 1),
            "max_ms": round(max(values), 1),
        }

    return {
        "wall_seconds": round(wall, 2),
        "requests_per_s": round(2 * n / wall, 1),
        **{kind: stats(values) for kind, values in latencies.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batteries", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    parser.add_argument("--requests", type=int, default=2000, help="per endpoint")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="vbatt-bench-api-"))
    url = embedded.start(data_dir)
    engine = create_engine(url)
    api = None
    steps: dict = {}
    try:
        with tempfile.TemporaryDirectory() as target:
            started = time.perf_counter()
            with console.status("generating readings and running the pipeline"):
                rows = setup_history(engine, url, SCHEMA, args.batteries, args.days, Path(target))
                run_dbt(
                    ["run", "--full-refresh"],
                    url=url,
                    schema=SCHEMA,
                    raw_schema=f"{SCHEMA}_raw",
                    target_dir=Path(target),
                )
            steps["build_seconds"] = round(time.perf_counter() - started, 1)
            console.log(
                f"{args.batteries:,} batteries x {args.days} days = {rows:,} intervals"
                f" built in {steps['build_seconds']} s"
            )
        last = (START + timedelta(days=args.days - 1)).date()
        months = sorted(
            {(START + timedelta(days=d)).date().replace(day=1) for d in range(args.days)}
        )
        full_months = [
            m for m in months if (m + timedelta(days=32)).replace(day=1) <= last
        ] or months
        steps["plans"] = check_plans(engine, "BB00001", full_months[0])
        console.log("plans checked: " + json.dumps(steps["plans"]))
        keys = {
            p: create_key(engine, Principal(partner_id=p), raw_schema=f"{SCHEMA}_raw").key
            for p in ("P0", "P1")
        }
        port = free_port()
        api = start_api(url, port, data_dir / "api.log")  # removed with the cluster
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base) as warm:  # connections and plans, not measured
            for m in range(1, min(args.batteries, 20) + 1):
                warm.get(
                    f"/api/Devices/BB{m:05d}",
                    headers={"Authorization": f"ApiKey {keys[f'P{m % 2}']}"},
                )
        with console.status(f"{args.clients} clients, {args.requests} requests per endpoint"):
            measured = load(base, keys, args.batteries, full_months, args.clients, args.requests)
        console.log(f"load: {json.dumps(measured)}")
    finally:
        if api is not None:
            api.terminate()
            api.wait(10)
        engine.dispose()
        embedded.stop(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)

    summary = {
        "batteries": args.batteries,
        "days": args.days,
        "intervals": rows,
        "clients": args.clients,
        "device_p95_ms": measured["device"]["p95_ms"],
        "month_of_intervals_p95_ms": measured["month_of_intervals"]["p95_ms"],
        "targets_at_10000_batteries": {
            "device_p95_ms": TARGETS_MS["device"],
            "month_of_intervals_p95_ms": TARGETS_MS["month_of_intervals"],
        },
        "full_size": args.batteries >= 10_000 and args.days >= 365,
    }
    write_report(args.out, summary, console, load=measured, steps=steps)


if __name__ == "__main__":
    main()
