"""Shared fixtures: a throw-away PostgreSQL cluster per test process, and isolated schemas."""

from __future__ import annotations

import os
import secrets
import tempfile

import pytest

os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
# validation reports of the tests go to a temporary folder, not the checkout's build/
os.environ.setdefault("VBATT_DATA_DOCS_DIR", tempfile.mkdtemp(prefix="vbatt-data-docs-"))


@pytest.fixture(scope="session")
def warehouse_url(tmp_path_factory) -> str:
    """A cluster of our own, never the developer's .warehouse nor WAREHOUSE_URL."""
    from vbatt.warehouse import embedded

    data_dir = tmp_path_factory.mktemp("pg")
    url = embedded.start(data_dir)
    yield url
    embedded.stop(data_dir)


@pytest.fixture(scope="session")
def engine(warehouse_url):
    from sqlalchemy import create_engine

    eng = create_engine(warehouse_url)
    yield eng
    eng.dispose()


@pytest.fixture
def pipeline(engine, warehouse_url, tmp_path):
    """An isolated raw schema plus dbt schemas, dropped afterwards."""
    from tests.pipeline import Pipeline

    p = Pipeline(engine, warehouse_url, f"t_{secrets.token_hex(4)}", tmp_path / "dbt-target")
    yield p
    p.drop()
