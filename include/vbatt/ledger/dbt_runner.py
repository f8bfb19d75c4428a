"""Running the dbt project against a warehouse, from the CLI, tests and benchmarks.

dbt runs as a subprocess with the connection passed through the environment that
``dbt/profiles.yml`` reads, so several runs (an isolated ``vbatt simulate`` schema, a
test, the Airflow pipeline) can go on at once without sharing process state: the
default wherever isolation matters.

A caller that runs dbt again and again against one warehouse and schema (the ledger
benchmark's quarter-hour runs) can use ``InProcessDbt`` instead: dbt's Python API in this
process, the project parsed once. A subprocess pays for starting Python, importing dbt and
parsing the project on every run (seconds, against a quarter hour's work of a second or
two); in process, only the first run does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
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


class InProcessDbt:
    """dbt runs in this process for one warehouse, schema and raw schema, the project
    parsed once and its manifest reused by every later run.

    dbt reads its connection from the environment (dbt/profiles.yml), so each run sets it
    for its duration and restores the caller's: use one instance at a time per process,
    never from two threads at once.
    """

    def __init__(
        self,
        *,
        url: str,
        schema: str = "analytics",
        raw_schema: str = "raw",
        target_dir: Path | None = None,
    ):
        settings = get_settings()
        target = target_dir or settings.dbt_target_path
        self._env = dbt_env(url, schema, target) | {"DBT_LOG_PATH": str(target / "logs")}
        self._project_args = [
            "--project-dir",
            str(settings.dbt_project_dir),
            "--vars",
            json.dumps({"raw_schema": raw_schema}),
        ]
        self._manifest = None

    @contextmanager
    def _environment(self) -> Iterator[None]:
        # dbt moves into the project folder (os.chdir) and reads the environment: both are
        # the caller's again afterwards (a later `shutil.which` or relative path would
        # otherwise resolve from dbt/)
        saved, cwd = dict(os.environ), os.getcwd()
        os.environ.update(self._env)
        try:
            yield
        finally:
            os.chdir(cwd)
            os.environ.clear()
            os.environ.update(saved)

    def parse(self) -> None:
        """Parse the project now (the first run would otherwise), so it is paid apart."""
        from dbt.cli.main import dbtRunner

        with self._environment():
            parsed = dbtRunner().invoke(["parse", "--quiet", *self._project_args])
        if not parsed.success:
            raise DbtError(f"dbt parse failed: {parsed.exception}")
        self._manifest = parsed.result

    def run(self, args: list[str]) -> None:
        """Run one dbt command; raise DbtError naming what failed and dbt's message."""
        from dbt.cli.main import dbtRunner

        if self._manifest is None:
            self.parse()
        with self._environment():
            outcome = dbtRunner(manifest=self._manifest).invoke(
                [*args, "--quiet", *self._project_args]
            )
        if outcome.success:
            return
        failures = [
            f"{result.node.unique_id}: {result.message}"
            for result in getattr(outcome.result, "results", None) or []
            if str(result.status) in ("error", "fail", "runtime error")
        ]
        detail = "\n".join(failures) or str(outcome.exception)
        raise DbtError(f"dbt {' '.join(args)} failed:\n{detail}")


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
