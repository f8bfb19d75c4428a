"""Shared fixtures: a throw-away PostgreSQL cluster per test process, and isolated schemas."""

from __future__ import annotations

import os
import secrets
import tempfile

import pytest

os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
# validation reports of the tests go to a temporary folder, not the checkout's build/; the
# process that makes it removes it when it exits (test workers inherit the variable)
if "VBATT_DATA_DOCS_DIR" not in os.environ:
    _DATA_DOCS = tempfile.TemporaryDirectory(prefix="vbatt-data-docs-")
    os.environ["VBATT_DATA_DOCS_DIR"] = _DATA_DOCS.name

# Suites of minutes each: whole Airflow runs, end-to-end fault runs, browser journeys of the
# read-only pages, the dense realtime proof, deployment round trips and the big oracle
# comparison. They run in `make test-long` (CI runs it after `make test`), so that
# `make test` stays a quick check. Files marked `pytestmark = pytest.mark.long` join them.
LONG_SUITES = {
    "tests/dags/test_dag_runs.py",
    "tests/dags/test_file_drop_run.py",
    "tests/e2e/test_fault_injection.py",
    "tests/realtime/test_step1_selection.py",
    "tests/deploy/test_sharded_ingest.py",
    "tests/deploy/test_backup_restore.py",
    "tests/deploy/test_deploy_init.py",
    "tests/api/test_dashboard_browser.py",
    "tests/api/test_live_browser.py",
    "tests/quality/test_data_docs_browser.py",
    "tests/dbt/test_ledger_matches_oracle.py",
}


def pytest_collection_modifyitems(config, items):
    root = config.rootpath
    for item in items:
        if item.path.relative_to(root).as_posix() in LONG_SUITES:
            item.add_marker(pytest.mark.long)


@pytest.fixture(scope="session")
def warehouse_url(tmp_path_factory) -> str:
    """A cluster of our own, never the developer's .warehouse nor WAREHOUSE_URL."""
    from vbatt.warehouse import embedded

    data_dir = tmp_path_factory.mktemp("pg")
    url = embedded.start(data_dir)
    yield url
    embedded.stop(data_dir)


@pytest.fixture
def cli_database(warehouse_url, monkeypatch, request):
    """A database of its own on the test cluster, named by the test module's ``DATABASE``,
    with the CLI pointed at it (WAREHOUSE_URL): for commands that act on a whole database
    (restore, psql). Yields an engine on it; the database is dropped afterwards."""
    from sqlalchemy import create_engine, text

    from vbatt.settings import get_settings

    name = request.module.DATABASE
    admin = create_engine(
        warehouse_url.replace("/vbatt?", "/postgres?"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f"drop database if exists {name} with (force)"))
        conn.execute(text(f"create database {name}"))
    url = warehouse_url.replace("/vbatt?", f"/{name}?")
    monkeypatch.setenv("WAREHOUSE_URL", url)
    get_settings.cache_clear()
    engine = create_engine(url)
    yield engine
    engine.dispose()
    get_settings.cache_clear()
    with admin.connect() as conn:
        conn.execute(text(f"drop database {name} with (force)"))
    admin.dispose()


@pytest.fixture(scope="session")
def engine(warehouse_url):
    from sqlalchemy import create_engine

    eng = create_engine(warehouse_url)
    yield eng
    eng.dispose()


@pytest.fixture
def raw(engine):
    """An empty raw layer in a schema of its own (tests may override it with batteries)."""
    from sqlalchemy import text

    from vbatt.warehouse.migrate import migrate

    schema = f"t_{secrets.token_hex(4)}_raw"
    migrate(engine, schema)
    yield schema
    with engine.begin() as conn:
        conn.execute(text(f"drop schema {schema} cascade"))


@pytest.fixture
def pipeline(engine, warehouse_url, tmp_path):
    """An isolated raw schema plus dbt schemas, dropped afterwards."""
    from tests.pipeline import Pipeline

    p = Pipeline(engine, warehouse_url, f"t_{secrets.token_hex(4)}", tmp_path / "dbt-target")
    yield p
    p.drop()
