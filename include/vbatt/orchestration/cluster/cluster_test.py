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
import shutil
import signal
import sys
import time
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from vbatt.orchestration.cluster.airflow_runs import (
    INGEST_DAG,
    LEDGER_DAG,
    SETTLE_DAG,
    airflow_cli,
    cluster_env,
    metadata_query,
    start_components,
    start_run,
    wait_for_run,
)
from vbatt.orchestration.cluster.processes import ClusterError, Processes, console, free_port, step
from vbatt.orchestration.cluster.reference import reference_run
from vbatt.orchestration.cluster.warehouses import (
    COMPARED,
    create_databases,
    register_batteries,
    table_fingerprints,
)

CLUSTER_DB, REFERENCE_DB, METADATA_DB = "vbatt_cluster", "vbatt_single", "airflow"
SEED = 42


def write_partners(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        (folder / f"partner-{i}.yaml").write_text(
            f"partner_id: partner-{i}\nname: Cluster test partner {i}\n"
            "sender: {id: '9900000000017'}\nreceiver: {id: '9900000000024'}\n"
            "formats: [{format: csv}, {format: mscons}]\n"
        )
    return folder


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
        # the batteries' partners (warehouses.register_batteries: partner-0..2) with files
        # of their own, so daily_settlement issues real exports on the workers
        env["VBATT_PARTNERS_DIR"] = str(write_partners(work / "partners"))
        env["VBATT_OUTBOX_DIR"] = str(work / "outbox")
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

        workers = [f"worker{i}" for i in range(1, args.workers + 1)]
        start_components(procs, env, api_port, workers, args.concurrency, urls[METADATA_DB])
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
        issued = sorted(
            p.relative_to(work / "outbox") for p in (work / "outbox").rglob("*") if p.is_file()
        )
        if not issued:
            raise ClusterError(f"{SETTLE_DAG} succeeded but issued no files in {work / 'outbox'}")
        step(
            f"{SETTLE_DAG}: {len(issued)} files issued to {len({p.parts[0] for p in issued})} partners"
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
    p = argparse.ArgumentParser(
        prog="python -m vbatt.orchestration.cluster.cluster_test", description=__doc__
    )
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
