"""Airflow for the cluster test: the environment of every component, runs started and followed."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

from vbatt.orchestration.cluster.processes import ClusterError, Processes, step, wait_for

INGEST_DAG, LEDGER_DAG, SETTLE_DAG = "meter_ingest", "battery_ledger", "daily_settlement"
WORKER_ENV = "VBATT_CLUSTER_WORKER"


def worker_hostname() -> str:
    """``[core] hostname_callable`` of the test's workers: the machine's name plus the
    worker's, so ``task_instance.hostname`` tells the two workers on one machine apart."""
    return f"{socket.gethostname()}-{os.environ.get(WORKER_ENV, 'worker')}"


def airflow_bin() -> str:
    from vbatt.orchestration.airflow_env import airflow_executable

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
    from vbatt.orchestration import airflow_env
    from vbatt.simulator.app import DEMO_API_KEY

    base = dict(os.environ)
    saved = dict(os.environ)
    try:
        base |= airflow_env.configure(warehouse, smartme, DEMO_API_KEY, home=work / "airflow")
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
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "vbatt.orchestration.cluster.airflow_runs.worker_hostname",
        "VBATT_TASK_RETRIES": "0",
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


def start_components(
    procs: Processes,
    env: dict[str, str],
    api_port: int,
    workers: list[str],
    concurrency: int,
    metadata_url: str,
) -> None:
    """API server, scheduler, DAG processor and the Celery workers; back when every one
    answers: the API's health, the three DAGs serialized, each worker "ready"."""
    procs.start(
        "api-server",
        [airflow_bin(), "api-server", "--host", "127.0.0.1", "--port", str(api_port)],
        env,
    )
    procs.start("scheduler", [airflow_bin(), "scheduler"], env)
    procs.start("dag-processor", [airflow_bin(), "dag-processor"], env)
    for name in workers:
        procs.start(
            name,
            [airflow_bin(), "celery", "worker", "--celery-hostname", f"{name}@%h"]
            + ["--concurrency", str(concurrency), "--skip-serve-logs"],
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
            metadata_url,
            "select count(distinct dag_id) from serialized_dag where dag_id = any(:d)",
            d=[INGEST_DAG, LEDGER_DAG, SETTLE_DAG],
        )
        return rows[0][0] == 3

    waited = wait_for("the DAG processor to parse the DAGs", dags_parsed, 300, procs)
    step(f"DAGs parsed by the DAG processor ({waited:.0f}s)")

    def workers_ready() -> bool:
        return all(b"ready." in (procs.log_dir / f"{name}.log").read_bytes() for name in workers)

    waited = wait_for("the Celery workers", workers_ready, 180, procs)
    step(f"{len(workers)} Celery workers ready: {', '.join(workers)} ({waited:.0f}s)")
