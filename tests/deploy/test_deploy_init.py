"""The compose file's init service, run here against SQLite metadata and the test
warehouse: metadata and warehouse migrated, pool and connections created; run twice,
it changes nothing and fails on nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def airflow(env: dict, *args: str) -> str:
    exe = Path(sys.executable).with_name("airflow")
    result = subprocess.run([str(exe), *args], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.fixture
def init_env(warehouse_url, tmp_path):
    admin = create_engine(
        warehouse_url.replace("/vbatt?", "/postgres?"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text("drop database if exists t_init with (force)"))
        conn.execute(text("create database t_init"))
    url = warehouse_url.replace("/vbatt?", "/t_init?")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env |= {
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "WAREHOUSE_URL": url,
        "SMARTME_URL": "http://simulator:8765",
        "SMARTME_API_KEY": "key-from-the-env-file",
        "VBATT_SMARTME_POOL_SLOTS": "3",
    }
    yield env, url
    with admin.connect() as conn:
        conn.execute(text("drop database t_init with (force)"))
    admin.dispose()


def test_init_migrates_and_creates_pool_and_connections_idempotently(init_env):
    env, url = init_env
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-m", "vbatt.orchestration.deploy_init"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "ready" in result.stdout
    pools = json.loads(airflow(env, "pools", "list", "-o", "json"))
    assert {"pool": "smartme_api", "slots": "3"}.items() <= {
        k: str(v) for k, v in next(p for p in pools if p["pool"] == "smartme_api").items()
    }.items()
    smartme = json.loads(airflow(env, "connections", "get", "smartme_default", "-o", "json"))[0]
    assert smartme["conn_type"] == "smartme" and smartme["host"] == "http://simulator:8765"
    extra = smartme.get("extra_dejson") or smartme["extra"]
    extra = json.loads(extra) if isinstance(extra, str) else extra
    assert extra["api_key"] == "key-from-the-env-file"
    warehouse = json.loads(airflow(env, "connections", "get", "warehouse_default", "-o", "json"))[0]
    assert warehouse["conn_type"] == "postgres" and warehouse["schema"] == "t_init"
    engine = create_engine(url)
    with engine.connect() as conn:
        versions = conn.execute(text("select count(*) from raw.schema_migrations")).scalar()
    engine.dispose()
    assert versions >= 2


def test_init_without_secrets_says_what_is_missing(init_env):
    env, _ = init_env
    env = {k: v for k, v in env.items() if k != "SMARTME_API_KEY"}
    result = subprocess.run(
        [sys.executable, "-m", "vbatt.orchestration.deploy_init"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "SMARTME_API_KEY" in result.stdout
