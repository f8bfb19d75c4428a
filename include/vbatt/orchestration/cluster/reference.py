"""The same day single-process: ``dag.test()`` in a child process with SQLite metadata.

``python -m vbatt.orchestration.cluster.reference WAREHOUSE SMARTME HOME RUN_AFTER`` is the child.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from vbatt.orchestration.cluster.airflow_runs import INGEST_DAG, LEDGER_DAG
from vbatt.orchestration.cluster.processes import ClusterError


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
            "vbatt.orchestration.cluster.reference",
            warehouse,
            smartme,
            str(home),
            run_after.isoformat(),
        ],
        # airflow_env.configure() in the child sets what keeps Airflow quiet (QUIET)
        env=env | {"VBATT_TASK_RETRIES": "0"},
        capture_output=True,
        text=True,
    )
    (home / "reference.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise ClusterError(f"single-process run failed (see {home / 'reference.log'})")
    return time.monotonic() - started


def reference_main(warehouse: str, smartme: str, home: str, logical: str) -> int:
    from vbatt.orchestration import airflow_env
    from vbatt.simulator.app import DEMO_API_KEY

    airflow_env.configure(warehouse, smartme, DEMO_API_KEY, home=Path(home), retries=0)
    airflow_env.migrate_metadata()
    when = datetime.fromisoformat(logical)
    for dag_id in (INGEST_DAG, LEDGER_DAG):
        state = airflow_env.run_dag(dag_id, when)
        print(f"{dag_id}: {state}", flush=True)
        if state != "success":
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(reference_main(*sys.argv[1:]))
