"""dbt imports every top-level module named ``dbt_*`` on the path as a plugin of its own
(dbt.plugins.manager). The Makefile and Airflow put plugins/ on the path: a module there
so named brought Airflow and Cosmos into every dbt run (seconds of start-up, OpenLineage
warnings in ``dbt parse``, and Cosmos fixing its default dbt from PATH too early)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

DISCOVER = """
import sys
from dbt.plugins.manager import PluginManager
PluginManager.get_prefixed_modules()
print(sorted(m for m in ("airflow", "cosmos") if m in sys.modules))
"""


def test_dbt_plugin_discovery_with_the_plugins_folder_imports_no_airflow():
    env = dict(os.environ, PYTHONPATH=str(ROOT / "plugins"))
    found = subprocess.run(
        [sys.executable, "-c", DISCOVER], env=env, capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "[]"
