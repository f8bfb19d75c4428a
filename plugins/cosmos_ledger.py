"""The dbt project as an Airflow task group (Cosmos, local execution, in-process dbt).

The profile comes from the ``warehouse_default`` connection through WarehouseProfileMapping,
so dbt writes where the ingest tasks read.

Not named ``dbt_*``: dbt imports every top-level module so named as a plugin of its own,
and this one would bring Airflow and Cosmos into every dbt run (seconds of start-up and
warnings about OpenLineage in ``dbt parse``).
"""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

# Cosmos says at import, in every task's log, that OpenLineage events need a provider: this
# project emits no lineage and installs none, so nobody could act on it.
logging.getLogger("cosmos.operators.local").addFilter(
    lambda record: "apache-airflow-providers-openlineage" not in str(record.msg)
)

# E402: these imports come after the filter, which must be in place when Cosmos loads
from cosmos import (  # noqa: E402
    DbtTaskGroup,
    ExecutionConfig,
    ProfileConfig,
    ProjectConfig,
    RenderConfig,
)
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior  # noqa: E402

from vbatt.settings import get_settings  # noqa: E402
from warehouse_hook import WarehouseProfileMapping  # noqa: E402


def profile_config() -> ProfileConfig:
    settings = get_settings()
    return ProfileConfig(
        profile_name="vbatt",
        target_name="warehouse",
        profile_mapping=WarehouseProfileMapping(
            conn_id=settings.warehouse_conn_id,
            profile_args={"schema": "analytics", "threads": settings.dbt_threads},
        ),
    )


def dbt_executable() -> str:
    """dbt beside this interpreter (a virtualenv), else on PATH: the official Airflow image
    installs user packages into ~/.local/bin."""
    beside = Path(sys.executable).with_name("dbt")
    return str(beside if beside.exists() else shutil.which("dbt") or beside)


def ledger_task_group(group_id: str = "dbt_ledger", **kwargs) -> DbtTaskGroup:
    settings = get_settings()
    manifest = settings.dbt_project_dir / "target" / "manifest.json"
    return DbtTaskGroup(
        group_id=group_id,
        project_config=ProjectConfig(
            settings.dbt_project_dir,
            manifest_path=manifest if manifest.exists() else None,
        ),
        profile_config=profile_config(),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.LOCAL,
            invocation_mode=InvocationMode.DBT_RUNNER,
            dbt_executable_path=dbt_executable(),
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST if manifest.exists() else LoadMode.DBT_LS,
            test_behavior=TestBehavior.AFTER_ALL,
            # the on-run-start hook (create_ledger_functions) runs inside every model's dbt
            # invocation; as a node of its own Cosmos has no task for it and warned
            exclude=["resource_type:operation"],
            # no Cosmos assets per model: the DAGs schedule on their own (dag_defaults),
            # and Cosmos's URIs carried the warehouse's socket path and warned every task
            emit_datasets=False,
        ),
        operator_args={"install_deps": False},
        **kwargs,
    )
