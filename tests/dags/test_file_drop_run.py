"""dag.test() of file_drop: dropped MSCONS and SDAT-CH files are loaded or refused, and the
task's result (its XCom) carries every file's account."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

pytestmark = pytest.mark.slow
DATA = Path(__file__).resolve().parents[1] / "data"


def test_file_drop_loads_sdat_and_mscons_and_reports_each_file(
    dags, airflow_metadata, warehouse_url, engine, monkeypatch, tmp_path
):
    from vbatt.orchestration import airflow_env
    from vbatt.settings import get_settings

    drop = tmp_path / "drop"
    drop.mkdir()
    shutil.copy(DATA / "sdat" / "E66_13_5min_wh_reactive.xml", drop)
    shutil.copy(DATA / "mscons" / "variants" / "2.4c-reactive-only.edi", drop)
    monkeypatch.setenv("VBATT_DROP_DIR", str(drop))
    monkeypatch.setenv("VBATT_DROP_REFUSE_EMPTY", "yes")
    get_settings.cache_clear()
    try:
        airflow_env.configure(warehouse_url, retries=0)
        assert airflow_env.run_dag("file_drop", datetime(2026, 6, 3, 10, tzinfo=UTC)) == "success"
    finally:
        get_settings.cache_clear()

    assert (drop / "loaded" / "E66_13_5min_wh_reactive.xml").is_file()
    reason = (drop / "refused" / "2.4c-reactive-only.edi.reason.txt").read_text()
    assert reason.startswith("no usable values: 2 reactive energy (1-1:5.29.0)")
    with engine.connect() as conn:
        sdat = conn.execute(
            text("select kind, status, values_used, account from raw.files where file_name = :n"),
            {"n": "E66_13_5min_wh_reactive.xml"},
        ).one()
    assert (sdat.kind, sdat.status, sdat.values_used) == ("sdat", "loaded", 8)
    assert sdat.account["ignored"] == {"reactive energy (1-1:5.29.0, unit KVARH)": 2}
    assert list(sdat.account["quarantined"].values()) == [1]

    from airflow.utils.session import create_session

    with create_session() as session:
        value = session.execute(
            text(
                "select value from xcom where dag_id = 'file_drop'"
                " and task_id = 'load_dropped_files' and key = 'return_value'"
            )
        ).scalar_one()
    summary = json.loads(value) if isinstance(value, str | bytes) else value
    assert (summary["loaded"], summary["refused"]) == (1, 1)
    files = {f["file"]: f for f in summary["files"]}
    assert files["E66_13_5min_wh_reactive.xml"]["used"] == sdat.account["used"]
    assert files["2.4c-reactive-only.edi"]["reason"] == reason.strip()
