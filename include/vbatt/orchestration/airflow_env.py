"""Airflow on this machine: SQLite metadata in .airflow/, connections from the environment.

Used by `make demo` (runs the DAGs with ``dag.test()``, in-process), `make airflow`
(the UI with ``airflow standalone``) and the DAG tests. Production deployments configure
Airflow their own way; nothing here is needed there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TextIO
from urllib.parse import parse_qs, urlsplit

from vbatt.settings import get_settings

# What keeps Airflow and Cosmos from calling out and from warning about what this project
# does not use: no usage telemetry (Airflow's Scarf, Cosmos's; without internet every
# task logged a failed connection), and a lineage namespace of its own (Cosmos reads it
# at import; unset, Airflow warned in every task). docker-compose.yml sets the same.
QUIET = {
    "AIRFLOW__SCARF__ENABLED": "False",
    "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
    "DO_NOT_TRACK": "1",
    "AIRFLOW__OPENLINEAGE__NAMESPACE": "vbatt",
}


def warehouse_connection(url: str) -> dict:
    parts = urlsplit(url)
    host = parse_qs(parts.query).get("host", [parts.hostname or "localhost"])[0]
    conn = {
        "conn_type": "postgres",
        "host": host,
        "login": parts.username or "postgres",
        "schema": parts.path.lstrip("/") or "vbatt",
        "port": parts.port or 5432,
    }
    if parts.password:
        conn["password"] = parts.password
    return conn


def smartme_connection(base_url: str, api_key: str) -> dict:
    return {"conn_type": "smartme", "host": base_url, "extra": {"api_key": api_key, "rate": 50}}


def configure(
    warehouse_url: str,
    smartme_url: str | None = None,
    api_key: str = "",
    home: Path | None = None,
    retries: int | None = None,
) -> dict[str, str]:
    """Set (and return) the environment Airflow reads: home, DAGs, plugins, connections."""
    settings = get_settings()
    root = settings.root
    env = {
        "AIRFLOW_HOME": str(home or root / ".airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
        "AIRFLOW__CORE__UNIT_TEST_MODE": os.environ.get("AIRFLOW__CORE__UNIT_TEST_MODE", "False"),
        "AIRFLOW_CONN_WAREHOUSE_DEFAULT": json.dumps(warehouse_connection(warehouse_url)),
        **QUIET,
    }
    if retries is not None:
        env["VBATT_TASK_RETRIES"] = str(retries)
        get_settings.cache_clear()
    if smartme_url:
        env["AIRFLOW_CONN_SMARTME_DEFAULT"] = json.dumps(smartme_connection(smartme_url, api_key))
    # `airflow standalone` and the cluster's components start their children as `airflow`
    # from PATH: the virtualenv's bin/ must be on it even when the user did not activate it.
    bin_dir = str(Path(airflow_executable()).parent)
    path = os.environ.get("PATH", "").split(os.pathsep)
    if not path or path[0] != bin_dir:
        env["PATH"] = os.pathsep.join([bin_dir, *(p for p in path if p and p != bin_dir)])
    os.environ.update(env)
    get_settings.cache_clear()
    plugins = str(root / "plugins")
    if plugins not in sys.path:
        sys.path.insert(0, plugins)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (plugins, os.environ.get("PYTHONPATH", "")) if p
    )
    return env


def airflow_executable() -> str:
    """The ``airflow`` command of this Python: beside it in a virtualenv, else on PATH
    (the official image installs it with ``pip --user``, apart from the interpreter)."""
    beside = Path(sys.executable).with_name("airflow")
    if beside.is_file():
        return str(beside)
    found = shutil.which("airflow")
    if found is None:
        raise RuntimeError("the airflow command is not installed beside Python nor on PATH")
    return found


def migrate_metadata() -> None:
    """Create or upgrade Airflow's metadata database (SQLite under AIRFLOW_HOME), and the
    pools the DAGs use."""
    result = subprocess.run(
        [airflow_executable(), "db", "migrate"], capture_output=True, text=True, env=os.environ
    )
    if result.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{result.stdout}\n{result.stderr}")
    create_pools()


def create_pools() -> None:
    """The pool that caps concurrent smart-me fetches (meter_ingest's mapped shards)."""
    settings = get_settings()
    result = subprocess.run(
        [
            airflow_executable(),
            "pools",
            "set",
            settings.smartme_pool,
            str(settings.smartme_pool_slots),
            "smart-me API: concurrent shard fetches across all workers",
        ],
        capture_output=True,
        text=True,
        env=os.environ,
    )
    if result.returncode != 0:
        raise RuntimeError(f"airflow pools set failed:\n{result.stdout}\n{result.stderr}")


def load_dags() -> dict:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(get_settings().root / "dags"))
    if bag.import_errors:
        raise RuntimeError(f"DAGs do not import: {bag.import_errors}")
    return bag.dags


def run_dag(dag_id: str, logical_date: datetime) -> str:
    """Run one DAG run in-process (``dag.test()``); return its final state."""
    dag = load_dags()[dag_id]
    # Airflow 3.3.2's dag.test() looks a finished run's deadline alerts up by database id
    # but holds them serialized, and fails ('dict' object has no attribute 'hex'); an
    # in-process run has no triggerer to fire them anyway (docs/operations.md).
    dag.deadline = None
    run = dag.test(logical_date=logical_date)
    state = str(getattr(run, "state", run))
    return state.rsplit(".", 1)[-1].lower()


@contextmanager
def output_to(log_file: Path) -> Iterator[TextIO]:
    """Send this process's standard output and error to ``log_file`` (appended) while the
    block runs; yield a stream to the terminal they went to before.

    At the descriptors, so child processes and every stream on descriptors 1 and 2 follow;
    ``sys.stdout`` and ``sys.stderr`` are such streams meanwhile (under pytest they are
    not), and stay valid afterwards: Airflow's loggers keep the stream they first found, and
    a stream on the descriptor writes wherever the descriptor points, never to a closed file.
    ``dag.test()`` prints every task's log, dbt's output and Airflow's own messages (a
    thousand lines for the demo's three runs): the demo shows one line per run and keeps
    the rest in the file for when something fails."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    streams = sys.stdout, sys.stderr
    for stream in streams:
        stream.flush()
    saved = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(saved[0]), "w", buffering=1)
    with log_file.open("ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    sys.stdout, sys.stderr = (
        os.fdopen(fd, "w", buffering=1, errors="replace", closefd=False) for fd in (1, 2)
    )
    try:
        yield terminal
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = streams
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        terminal.close()
