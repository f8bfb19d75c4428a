"""Airflow for the DAG tests: its own home (SQLite metadata) in a temporary folder.

Set before Airflow is imported anywhere in the process, as Airflow reads its
configuration once.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from vbatt.orchestration import airflow_env

ROOT = Path(__file__).resolve().parents[2]
# the temporary folders of this module are removed when the process exits
if "AIRFLOW_HOME" not in os.environ:
    _AIRFLOW_HOME = tempfile.TemporaryDirectory(prefix="vbatt-airflow-")
    os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME.name
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
# what keeps Airflow quiet (telemetry off, ...), before Airflow or Cosmos reads it
os.environ.update(airflow_env.QUIET)
# the DAG runs export for a test partner into a temporary outbox, never the repo's
_PARTNERS = tempfile.TemporaryDirectory(prefix="vbatt-partners-")
_OUTBOX = tempfile.TemporaryDirectory(prefix="vbatt-outbox-")
PARTNERS, OUTBOX = Path(_PARTNERS.name), Path(_OUTBOX.name)
os.environ["VBATT_PARTNERS_DIR"] = str(PARTNERS)
os.environ["VBATT_OUTBOX_DIR"] = str(OUTBOX)
(PARTNERS / "p.yaml").write_text(
    "partner_id: p\nname: Test partner\nsender: {id: '9900000000017'}\n"
    "receiver: {id: '9900000000024'}\nformats: [{format: csv}, {format: mscons}]\n"
)


@pytest.fixture(scope="session")
def dags():
    from vbatt.orchestration import airflow_env

    airflow_env.configure(
        "postgresql+psycopg2://postgres@/vbatt?host=/nonexistent",
        home=Path(os.environ["AIRFLOW_HOME"]),
    )
    return airflow_env.load_dags()


@pytest.fixture(scope="session")
def airflow_metadata(dags):
    from vbatt.orchestration import airflow_env

    airflow_env.migrate_metadata()
