"""Running the dbt project against a warehouse, from the CLI, tests and benchmarks.

dbt runs as a subprocess with the connection passed through the environment that
``dbt/profiles.yml`` reads, so several runs (an isolated ``vbatt simulate`` schema, a
test, the Airflow pipeline) can go on at once without sharing process state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from vbatt.settings import get_settings
from vbatt.warehouse.embedded import dbt_connection_env


class DbtError(RuntimeError):
    pass


def dbt_env(url: str, schema: str = "analytics", target_dir: Path | None = None) -> dict[str, str]:
    settings = get_settings()
    env = dict(os.environ)
    env.update(dbt_connection_env(url))
    env["VBATT_DBT_SCHEMA"] = schema
    env["VBATT_DBT_THREADS"] = str(settings.dbt_threads)
    env["DBT_PROFILES_DIR"] = str(settings.dbt_project_dir)
    env["DBT_TARGET_PATH"] = str(target_dir or settings.dbt_target_path)
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    return env


def run_dbt(
    args: list[str],
    *,
    url: str,
    schema: str = "analytics",
    raw_schema: str = "raw",
    target_dir: Path | None = None,
    capture: bool = True,
) -> str:
    """Run one dbt command; raise DbtError with dbt's own account of what failed."""
    settings = get_settings()
    dbt = Path(sys.executable).with_name("dbt")
    target = target_dir or settings.dbt_target_path
    command = [
        str(dbt if dbt.exists() else "dbt"),
        *args,
        "--project-dir",
        str(settings.dbt_project_dir),
        "--vars",
        json.dumps({"raw_schema": raw_schema}),
    ]
    env = dbt_env(url, schema, target)
    env["DBT_LOG_PATH"] = str(target / "logs")
    result = subprocess.run(
        command, env=env, capture_output=capture, text=True, cwd=settings.dbt_project_dir
    )
    if result.returncode != 0:
        output = (result.stdout or "") + (result.stderr or "") if capture else ""
        lines = [line for line in output.splitlines() if line.strip()]
        raise DbtError(
            f"dbt {' '.join(args)} failed (exit {result.returncode}):\n" + "\n".join(lines[-40:])
        )
    return result.stdout or ""


def create_model_schemas(url: str) -> list[str]:
    """Create the schemas the dbt models write to, as dbt's manifest names them, one caller
    at a time. Airflow runs the models as parallel tasks; on a fresh warehouse two of them
    could both find a schema missing and race on CREATE SCHEMA (a unique violation in
    pg_namespace), so battery_ledger calls this first. Without a manifest it does nothing
    and dbt creates the schemas as usual."""
    from sqlalchemy import text

    from vbatt.warehouse.db import get_engine

    manifest = get_settings().dbt_target_path / "manifest.json"
    if not manifest.is_file():
        return []
    nodes = json.loads(manifest.read_text())["nodes"].values()
    schemas = sorted(
        {n["schema"] for n in nodes if n["resource_type"] in ("model", "seed", "snapshot")}
    )
    with get_engine(url).begin() as conn:
        conn.execute(text("select pg_advisory_xact_lock(hashtext('vbatt-create-schemas'))"))
        for schema in schemas:
            conn.execute(text(f'create schema if not exists "{schema}"'))
    return schemas
