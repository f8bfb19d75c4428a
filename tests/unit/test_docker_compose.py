"""docker-compose.yml is for users with Docker (no engine runs here): check what it promises."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_wires_airflow_to_the_warehouse():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "airflow"} <= set(services)
    airflow = services["airflow"]
    assert airflow["depends_on"]["postgres"]["condition"] == "service_healthy"
    env = airflow["environment"]
    assert env["WAREHOUSE_URL"].startswith("postgresql+psycopg2://")
    assert "@postgres:5432/vbatt" in env["WAREHOUSE_URL"]
    for conn in ("AIRFLOW_CONN_WAREHOUSE_DEFAULT", "AIRFLOW_CONN_SMARTME_DEFAULT"):
        assert conn in env
    assert "healthcheck" in services["postgres"]
    # Airflow's metadata database must exist before Airflow starts
    metadata_db = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].rsplit("/", 1)[-1]
    init = [v.split(":")[0] for v in services["postgres"]["volumes"] if "initdb" in v]
    assert init and f"create database {metadata_db}" in (ROOT / init[0]).read_text()


def test_dockerfile_uses_the_pinned_airflow_and_requirements():
    dockerfile = (ROOT / "Dockerfile").read_text()
    pinned = re.search(r"^apache-airflow==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert pinned, "requirements.txt pins apache-airflow"
    assert f"apache/airflow:{pinned.group(1)}-python3.11" in dockerfile
    assert "requirements.txt" in dockerfile
