"""`make cluster-test`: the DAGs on Airflow's distributed executor, on this machine.

Starts what a `docker compose up` runs, as local processes: Redis (the Celery broker),
an embedded PostgreSQL holding Airflow's metadata and two warehouses, the simulated
smart-me cloud, the API server (Airflow 3 task runners report to its execution API), the
scheduler, the DAG processor and two Celery workers with distinct hostnames. It runs one
day of ``meter_ingest`` (sharded over the workers) and ``battery_ledger`` for N meters,
counts the tasks each worker ran (``task_instance.hostname``), runs the same day
single-process (``dag.test()``, SQLite metadata) into the second warehouse and compares
the two table by table. Everything it started is stopped on the way out, also on Ctrl-C.

Everything lives in ``.cluster-test/`` (recreated each run; process logs in ``logs/``).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from rich.console import Console
from sqlalchemy import create_engine, text

console = Console(width=None if sys.stdout.isatty() else 140, highlight=False)

INGEST_DAG, LEDGER_DAG, SETTLE_DAG = "meter_ingest", "battery_ledger", "daily_settlement"
CLUSTER_DB, REFERENCE_DB, METADATA_DB = "vbatt_cluster", "vbatt_single", "airflow"
SEED = 42
WORKER_ENV = "VBATT_CLUSTER_WORKER"
# Columns stamped by the run itself (when, which load): they differ between any two runs,
# and between one load and one load per shard.
VOLATILE = {
    "computed_at",
    "ingested_at",
    "load_id",
    "max_load_id",
    "reading_seq",
    "updated_at",
    "created_at",
}
COMPARED = (
    "raw.batteries",
    "raw.meter_readings",
    "raw.ingest_watermarks",
    "analytics_intermediate.int_meter_readings",
    "analytics_intermediate.int_counter_intervals",
    "analytics_intermediate.int_battery_ledger",
    "analytics_marts.battery_intervals",
    "analytics_marts.battery_daily",
    "analytics_marts.battery_registers",
    "analytics_marts.settlement_periods",
)


def worker_hostname() -> str:
    """``[core] hostname_callable`` of the test's workers: the machine's name plus the
    worker's, so ``task_instance.hostname`` tells the two workers on one machine apart."""
    return f"{socket.gethostname()}-{os.environ.get(WORKER_ENV, 'worker')}"


# --- processes ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Processes:
    """Long-running children, each in its own process group (Airflow forks its own)."""

    log_dir: Path
    started: list[tuple[str, subprocess.Popen]] = field(default_factory=list)

    def start(self, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the child
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        log.close()
        self.started.append((name, proc))
        return proc

    def check(self) -> None:
        for name, proc in self.started:
            if proc.poll() is not None:
                tail = (self.log_dir / f"{name}.log").read_text(errors="replace")[-3000:]
                raise ClusterError(f"{name} exited with {proc.returncode}:\n{tail}")

    def stop_all(self) -> None:
        for _name, proc in reversed(self.started):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        deadline = time.monotonic() + 30
        for name, proc in reversed(self.started):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            step(f"stopped {name}")
        self.started.clear()


class ClusterError(RuntimeError):
    pass


def step(message: str) -> None:
    console.log(message)


def wait_for(what: str, ready: Callable[[], bool], timeout: float, procs: Processes) -> float:
    started = time.monotonic()
    while not ready():
        procs.check()
        if time.monotonic() - started > timeout:
            raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(1)
    return time.monotonic() - started


# --- databases ---------------------------------------------------------------------------


def create_databases(server_url: str, names: list[str]) -> dict[str, str]:
    """Fresh databases on the embedded cluster, byte-wise collation like the warehouse."""
    admin = create_engine(server_url.replace("/vbatt?", "/postgres?"), isolation_level="AUTOCOMMIT")
    urls = {}
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f"drop database if exists {name} with (force)"))
            conn.execute(
                text(
                    f"create database {name} template template0 encoding 'UTF8'"
                    " locale_provider builtin builtin_locale 'C.UTF-8'"
                )
            )
            urls[name] = server_url.replace("/vbatt?", f"/{name}?")
    admin.dispose()
    return urls


def register_batteries(url: str, meters: int, day: date) -> None:
    from vbatt.simulator.households import meter_id_for
    from vbatt.warehouse.db import get_engine
    from vbatt.warehouse.loader import upsert_batteries
    from vbatt.warehouse.migrate import migrate

    engine = get_engine(url)
    migrate(engine)
    upsert_batteries(
        engine,
        [
            {
                "battery_id": f"B{i:07d}",
                "name": f"Cluster test {i}",
                "partner_id": f"partner-{i % 3}",
                "customer_id": f"c{i}",
                "meter_id": meter_id_for(i),
                "capacity_kwh": (0.0, 5.0, 10.0)[i % 3],
                "start_date": day,
                "reset_date": None,
                "reset_repeat": "yearly",
                "end_date": None,
                "timezone": "Europe/Zurich",
                "initial_level_kwh": 0.0,
            }
            for i in range(1, meters + 1)
        ],
    )


def table_fingerprints(url: str) -> dict[str, tuple[int, str]]:
    """Rows and an md5 over the sorted rows of each compared table (run stamps left out)."""
    engine = create_engine(url)
    out = {}
    with engine.connect() as conn:
        for table in COMPARED:
            schema, name = table.split(".")
            columns = [
                c
                for (c,) in conn.execute(
                    text(
                        "select column_name from information_schema.columns"
                        " where table_schema = :s and table_name = :t order by ordinal_position"
                    ),
                    {"s": schema, "t": name},
                )
                if c not in VOLATILE
            ]
            if not columns:
                raise ClusterError(f"{table} does not exist in {url}")
            row = ", ".join(f'"{c}"' for c in columns)
            count, digest = conn.execute(
                text(
                    f"select count(*), md5(coalesce(string_agg(r, E'\\n' order by r), ''))"
                    f" from (select row({row})::text as r from {table}) t"
                )
            ).one()
            out[table] = (count, digest)
    engine.dispose()
    return out


# --- Airflow -----------------------------------------------------------------------------


def airflow_bin() -> str:
    from vbatt.airflow_local import airflow_executable

    return airflow_executable()


def airflow_cli(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [airflow_bin(), *args], env=env, capture_output=True, text=True, timeout=300
    )
    if result.returncode != 0:
        raise ClusterError(
            f"airflow {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        )
    return result.stdout


def cluster_env(
    work: Path, metadata_url: str, broker_url: str, api_port: int, warehouse: str, smartme: str
) -> dict[str, str]:
    from vbatt import airflow_local
    from vbatt.simulator.app import DEMO_API_KEY

    base = dict(os.environ)
    saved = dict(os.environ)
    try:
        base |= airflow_local.configure(warehouse, smartme, DEMO_API_KEY, home=work / "airflow")
        base["PYTHONPATH"] = os.environ["PYTHONPATH"]
    finally:
        os.environ.clear()
        os.environ.update(saved)
    result_backend = "db+" + metadata_url  # psycopg2: SQLAlchemy 2.1 defaults to psycopg 3
    return base | {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": result_backend,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        # only the runs this test triggers: no cron runs, no asset-triggered runs
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "vbatt.cluster_test.worker_hostname",
        "AIRFLOW__SCARF__ENABLED": "False",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "VBATT_TASK_RETRIES": "0",
        "DO_NOT_TRACK": "1",
    }


def metadata_query(url: str, sql: str, **params) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params))
    finally:
        engine.dispose()


def run_state(metadata_url: str, dag_id: str, run_id: str) -> tuple[str | None, dict[str, int]]:
    run = metadata_query(
        metadata_url,
        "select state from dag_run where dag_id = :d and run_id = :r",
        d=dag_id,
        r=run_id,
    )
    tasks = metadata_query(
        metadata_url,
        "select coalesce(state, 'none'), count(*) from task_instance"
        " where dag_id = :d and run_id = :r group by 1",
        d=dag_id,
        r=run_id,
    )
    return (run[0][0] if run else None), {s: n for s, n in tasks}


def start_run(env: dict[str, str], metadata_url: str, dag_id: str, logical: datetime | None) -> str:
    """A run of ``dag_id``; its run id. With a logical date it is a one-interval backfill:
    a manual trigger takes its data interval from the time of triggering, a backfill
    from the schedule (as a regular run would)."""
    if logical is None:
        run_id = f"cluster_test__{secrets.token_hex(4)}"
        airflow_cli(env, "dags", "trigger", dag_id, "--run-id", run_id)
        return run_id
    # the backfill window: the run of ``logical`` and no other (schedules every 15 minutes
    # or daily; the bounds are inclusive)
    first, last = logical - timedelta(minutes=1), logical + timedelta(minutes=1)
    airflow_cli(
        env,
        "backfill",
        "create",
        "--dag-id",
        dag_id,
        "--from-date",
        first.isoformat(),
        "--to-date",
        last.isoformat(),
    )
    rows = metadata_query(
        metadata_url,
        "select run_id from dag_run where dag_id = :d and run_type = 'backfill'",
        d=dag_id,
    )
    if len(rows) != 1:
        raise ClusterError(
            f"backfill of {dag_id} at {logical.isoformat()} created {len(rows)} runs"
        )
    return rows[0][0]


def wait_for_run(
    env: dict[str, str],
    metadata_url: str,
    dag_id: str,
    run_id: str,
    procs: Processes,
    timeout: float,
) -> float:
    started, last = time.monotonic(), ""
    while True:
        procs.check()
        state, tasks = run_state(metadata_url, dag_id, run_id)
        summary = ", ".join(f"{n} {s}" for s, n in sorted(tasks.items()))
        if summary != last:
            step(f"{dag_id}: {state} ({summary})")
            last = summary
        if state in ("success", "failed"):
            break
        if time.monotonic() - started > timeout:
            raise ClusterError(f"{dag_id} did not finish within {timeout:.0f}s")
        time.sleep(3)
    if state != "success":
        failed = metadata_query(
            metadata_url,
            "select task_id, map_index, hostname from task_instance"
            " where dag_id = :d and run_id = :r and state = 'failed'",
            d=dag_id,
            r=run_id,
        )
        raise ClusterError(
            f"{dag_id} ended {state}; failed tasks: {failed}; logs in {env['AIRFLOW_HOME']}/logs"
        )
    return time.monotonic() - started


# --- the single-process reference --------------------------------------------------------


def reference_run(warehouse: str, smartme: str, home: Path, run_after: datetime) -> float:
    """The same two DAG runs with ``dag.test()`` in a child process of its own (Airflow
    reads its configuration once per process): SQLite metadata, no executor, no shards
    in parallel. ``dag.test(logical_date=T)`` infers the interval that ends at T, as a
    manual run does, so T is the end of the backfilled interval: the same data window."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__") and k != "AIRFLOW_HOME"
    }
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vbatt.cluster_test",
            "_reference",
            warehouse,
            smartme,
            str(home),
            run_after.isoformat(),
        ],
        env=env
        | {
            "VBATT_TASK_RETRIES": "0",
            "AIRFLOW__SCARF__ENABLED": "False",
            "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
            "DO_NOT_TRACK": "1",
        },
        capture_output=True,
        text=True,
    )
    (home / "reference.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise ClusterError(f"single-process run failed (see {home / 'reference.log'})")
    return time.monotonic() - started


def _reference_main(warehouse: str, smartme: str, home: str, logical: str) -> int:
    from vbatt import airflow_local
    from vbatt.simulator.app import DEMO_API_KEY

    airflow_local.configure(warehouse, smartme, DEMO_API_KEY, home=Path(home), retries=0)
    airflow_local.migrate_metadata()
    when = datetime.fromisoformat(logical)
    for dag_id in (INGEST_DAG, LEDGER_DAG):
        state = airflow_local.run_dag(dag_id, when)
        print(f"{dag_id}: {state}", flush=True)
        if state != "success":
            return 1
    return 0


# --- the test ----------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    from vbatt.simulator import start_in_background
    from vbatt.warehouse import embedded

    root = Path(__file__).resolve().parents[2]
    work = (root / args.work_dir).resolve()
    day: date = args.day
    # the data interval that ends at midnight Zurich after the day: its lookback plus each
    # new meter's history since its battery started make one whole local day
    import pendulum

    day_end = pendulum.datetime(day.year, day.month, day.day, tz="Europe/Zurich").add(days=1)
    window_end = datetime.fromtimestamp(day_end.timestamp(), UTC)
    logical = window_end - timedelta(minutes=15)
    timings: dict[str, float] = {}
    t0 = time.monotonic()

    if shutil.which("redis-server") is None:
        console.print(
            "[red]redis-server is missing: apt-get install -y redis-server (make cluster-test"
            " does it)[/red]"
        )
        return 2
    if work.exists():
        shutil.rmtree(work)
    (work / "logs").mkdir(parents=True)
    (work / "airflow").mkdir()
    procs = Processes(work / "logs")
    pg_dir = work / "pg"

    with ExitStack() as stack:

        def on_signal(signum, frame):  # noqa: ARG001
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, on_signal)

        server_url = embedded.start(pg_dir)
        stack.callback(lambda: (embedded.stop(pg_dir), step("stopped PostgreSQL")))
        urls = create_databases(server_url, [METADATA_DB, CLUSTER_DB, REFERENCE_DB])
        step(f"PostgreSQL in {pg_dir.relative_to(root)}: databases {', '.join(urls)}")

        redis_port = free_port()
        procs.start(
            "redis",
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "no"],
            dict(os.environ),
        )
        stack.callback(procs.stop_all)
        step(f"Redis on port {redis_port}")

        smartme, stop_sim = start_in_background(meters=args.meters, seed=SEED)
        stack.callback(lambda: (stop_sim(), step("stopped the simulated smart-me cloud")))
        step(f"simulated smart-me cloud with {args.meters} meters at {smartme}")

        for name in (CLUSTER_DB, REFERENCE_DB):
            register_batteries(urls[name], args.meters, day)
        step(f"{args.meters} batteries from {day} registered in both warehouses")

        api_port = free_port()
        env = cluster_env(
            work,
            urls[METADATA_DB],
            f"redis://127.0.0.1:{redis_port}/0",
            api_port,
            urls[CLUSTER_DB],
            smartme,
        )
        env["VBATT_INGEST_SHARD_SIZE"] = str(args.shard_size)
        env["VBATT_SMARTME_POOL_SLOTS"] = str(args.pool_slots)
        started = time.monotonic()
        airflow_cli(env, "db", "migrate")
        settings_pool = env.get("VBATT_SMARTME_POOL", "smartme_api")
        airflow_cli(env, "pools", "set", settings_pool, str(args.pool_slots), "smart-me API")
        step(
            f"Airflow metadata migrated on PostgreSQL, pool {settings_pool} with"
            f" {args.pool_slots} slots ({time.monotonic() - started:.0f}s)"
        )

        procs.start(
            "api-server",
            [airflow_bin(), "api-server", "--host", "127.0.0.1", "--port", str(api_port)],
            env,
        )
        procs.start("scheduler", [airflow_bin(), "scheduler"], env)
        procs.start("dag-processor", [airflow_bin(), "dag-processor"], env)
        workers = [f"worker{i}" for i in range(1, args.workers + 1)]
        for name in workers:
            procs.start(
                name,
                [airflow_bin(), "celery", "worker", "--celery-hostname", f"{name}@%h"]
                + ["--concurrency", str(args.concurrency), "--skip-serve-logs"],
                env | {WORKER_ENV: name},
            )

        def api_up() -> bool:
            import httpx

            try:
                url = f"http://127.0.0.1:{api_port}/api/v2/monitor/health"
                return httpx.get(url, timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        waited = wait_for("the API server", api_up, 180, procs)
        step(f"API server up on port {api_port} ({waited:.0f}s)")

        def dags_parsed() -> bool:
            rows = metadata_query(
                urls[METADATA_DB],
                "select count(distinct dag_id) from serialized_dag where dag_id = any(:d)",
                d=[INGEST_DAG, LEDGER_DAG, SETTLE_DAG],
            )
            return rows[0][0] == 3

        waited = wait_for("the DAG processor to parse the DAGs", dags_parsed, 300, procs)
        step(f"DAGs parsed by the DAG processor ({waited:.0f}s)")

        def workers_ready() -> bool:
            return all(
                b"ready." in (work / "logs" / f"{name}.log").read_bytes() for name in workers
            )

        waited = wait_for("the Celery workers", workers_ready, 180, procs)
        step(f"{len(workers)} Celery workers ready: {', '.join(workers)} ({waited:.0f}s)")
        for dag_id in (INGEST_DAG, LEDGER_DAG, SETTLE_DAG):
            airflow_cli(env, "dags", "unpause", dag_id)

        # the settlement of the day: its run at 01:00 Zurich the next morning
        settle_at = datetime.fromtimestamp(day_end.add(hours=1).timestamp(), UTC)
        run_ids = []
        for dag_id, when in ((INGEST_DAG, logical), (LEDGER_DAG, None), (SETTLE_DAG, settle_at)):
            run_id = start_run(env, urls[METADATA_DB], dag_id, when)
            run_ids.append(run_id)
            step(f"{dag_id}: run {run_id} created")
            timings[f"cluster {dag_id}"] = wait_for_run(
                env, urls[METADATA_DB], dag_id, run_id, procs, args.timeout
            )
            step(f"{dag_id} succeeded in {timings[f'cluster {dag_id}']:.0f}s")

        per_worker = metadata_query(
            urls[METADATA_DB],
            "select hostname, dag_id, count(*) from task_instance where run_id = any(:r)"
            " and state = 'success' group by 1, 2 order by 1, 2",
            r=run_ids,
        )
        deadline_alerts = metadata_query(
            urls[METADATA_DB],
            "select count(*) from deadline_alert a join serialized_dag s"
            " on a.serialized_dag_id = s.id where s.dag_id = :d",
            d=SETTLE_DAG,
        )[0][0]
        if not deadline_alerts:
            raise ClusterError(f"{SETTLE_DAG} has no deadline alert in the metadata database")
        step(f"{SETTLE_DAG}: deadline alert registered by the DAG processor, run succeeded")
        shard_costs = metadata_query(
            urls[METADATA_DB],
            "select count(*), avg(duration), max(duration) from task_instance"
            " where run_id = :r and task_id = 'fetch_shard' and state = 'success'",
            r=run_ids[0],
        )
        ledger_tasks = metadata_query(
            urls[METADATA_DB],
            "select task_id, duration from task_instance where run_id = :r and dag_id = :d"
            " order by duration desc",
            r=run_ids[1],
            d=LEDGER_DAG,
        )
        by_host: dict[str, int] = {}
        for host, dag_id, count in per_worker:
            step(f"worker {host}: {count} {dag_id} tasks")
            by_host[host] = by_host.get(host, 0) + count
        shards, shard_avg, shard_max = shard_costs[0]
        step(
            f"{shards} ingest shards of up to {args.shard_size} meters:"
            f" {shard_avg or 0:.1f}s average, {shard_max or 0:.1f}s longest"
        )
        procs.stop_all()

        timings["single-process (dag.test) both DAGs"] = reference_run(
            urls[REFERENCE_DB], smartme, work / "reference", window_end
        )
        step(
            "single-process run (dag.test) of the same day:"
            f" {timings['single-process (dag.test) both DAGs']:.0f}s"
        )

        cluster = table_fingerprints(urls[CLUSTER_DB])
        single = table_fingerprints(urls[REFERENCE_DB])
        equal = True
        for table in COMPARED:
            same = cluster[table] == single[table]
            equal &= same
            mark = "[green]equal[/green]" if same else "[red]DIFFERENT[/red]"
            step(f"{table}: {cluster[table][0]:,} rows vs {single[table][0]:,} {mark}")
        timings["total"] = time.monotonic() - t0
        result = {
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count()},
            "meters": args.meters,
            "day": day.isoformat(),
            "workers": args.workers,
            "concurrency": args.concurrency,
            "shard_size": args.shard_size,
            "pool_slots": args.pool_slots,
            "tasks_per_worker": by_host,
            "settlement_deadline_alerts": deadline_alerts,
            "shards": shards,
            "shard_seconds_avg": round(float(shard_avg or 0), 2),
            "shard_seconds_max": round(float(shard_max or 0), 2),
            "ledger_task_seconds": {t: round(float(d or 0), 2) for t, d in ledger_tasks},
            "seconds": {k: round(v, 1) for k, v in timings.items()},
            "tables": {
                t: {"rows": cluster[t][0], "equal": cluster[t] == single[t]} for t in COMPARED
            },
            "equal": equal,
        }
        (work / "result.json").write_text(json.dumps(result, indent=2) + "\n")
        if args.results:
            Path(args.results).write_text(json.dumps(result, indent=2) + "\n")

        ok = equal and len([h for h, n in by_host.items() if n > 0]) >= min(2, args.workers)
        if not equal:
            console.print("[red]FAILED: the cluster's warehouse differs from the single run[/red]")
        elif not ok:
            console.print(f"[red]FAILED: tasks did not run on every worker: {by_host}[/red]")
        else:
            console.print(
                f"[green]cluster test passed[/green]: {sum(by_host.values())} tasks on"
                f" {len(by_host)} workers, warehouse equal to the single-process run,"
                f" {timings['total']:.0f}s in all"
            )
        return 0 if ok else 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m vbatt.cluster_test", description=__doc__)
    p.add_argument("--meters", type=int, default=1000)
    p.add_argument("--day", type=date.fromisoformat, default=date(2026, 6, 1), help="local day")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--concurrency", type=int, default=2, help="task slots per worker")
    p.add_argument("--shard-size", type=int, default=100, help="meters per ingest shard")
    p.add_argument("--pool-slots", type=int, default=4, help="concurrent smart-me fetches")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per DAG run")
    p.add_argument("--work-dir", default=".cluster-test")
    p.add_argument("--results", help="also write the figures (JSON) here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_reference"]:
        return _reference_main(*argv[1:])
    args = parse_args(argv)
    try:
        return run(args)
    except ClusterError as exc:
        console.print(f"[red]cluster test failed: {exc}[/red]")
        return 1
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: everything started is stopped[/yellow]")
        return 130


if __name__ == "__main__":
    sys.exit(main())
