"""dbt imports every top-level module named ``dbt_*`` on the path as a plugin of its own
(dbt.plugins.manager). The Makefile and Airflow put plugins/ on the path, so a plugin
module so named would bring Airflow and Cosmos into every dbt run."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_no_module_on_the_plugins_path_is_taken_for_a_dbt_plugin():
    taken = [
        p.name
        for p in (ROOT / "plugins").iterdir()
        if p.name.startswith("dbt_") and (p.suffix == ".py" or p.is_dir())
    ]
    assert taken == []
