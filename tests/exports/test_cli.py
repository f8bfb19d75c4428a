"""`vbatt export` as people run it: default schemas of a database of its own, a partner
folder, the outbox; a second run changes nothing; a bad period gets a clear error."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import make_url, text

from tests.exports.conftest import DAYS, battery_rows, readings

pytestmark = pytest.mark.slow


def test_vbatt_export_issues_once(engine, warehouse_url, monkeypatch, tmp_path, capsys):
    from vbatt import cli
    from vbatt.ledger.dbt_runner import run_dbt
    from vbatt.settings import get_settings
    from vbatt.warehouse.db import get_engine
    from vbatt.warehouse.loader import load_readings, upsert_batteries
    from vbatt.warehouse.migrate import migrate

    database = f"cli_{secrets.token_hex(4)}"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"create database {database}"))
    url = make_url(warehouse_url).set(database=database).render_as_string(hide_password=False)
    partners = tmp_path / "partners"
    partners.mkdir()
    (partners / "p2.yaml").write_text(
        "partner_id: p2\nname: Partner two\nsender: {id: '9900000000017'}\n"
        "receiver: {id: '9900000000024'}\nformats: [{format: csv}, {format: mscons}]\n"
    )
    monkeypatch.setenv("WAREHOUSE_URL", url)
    monkeypatch.setenv("VBATT_PARTNERS_DIR", str(partners))
    monkeypatch.setenv("VBATT_DATA_DOCS_DIR", str(tmp_path / "docs"))
    get_settings.cache_clear()
    try:
        own = get_engine(url)
        migrate(own)
        upsert_batteries(own, battery_rows())
        load_readings(own, readings("SIM-0003"), source="test")
        run_dbt(["run"], url=url, target_dir=tmp_path / "target")
        outbox = tmp_path / "outbox"
        args = ["export", "--partner", "p2", "--period", DAYS[1].isoformat(), "--out", str(outbox)]
        assert cli.main(args) == 0
        out = capsys.readouterr().out
        assert "issued version 1" in out and "delivered 4 file(s)" in out
        files = {p.name: p.read_bytes() for p in outbox.rglob("*") if p.is_file()}
        assert len(files) == 4
        assert cli.main(args) == 0
        assert "files unchanged" in capsys.readouterr().out
        assert {p.name: p.read_bytes() for p in outbox.rglob("*") if p.is_file()} == files

        assert cli.main(["export", "--partner", "p2", "--period", "2025-13"]) == 2
        assert "YYYY-MM" in capsys.readouterr().err
        assert cli.main(["export", "--partner", "nobody", "--period", "2025-10"]) == 2
        assert "known: p2" in capsys.readouterr().err
    finally:
        get_settings.cache_clear()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f"drop database {database} with (force)"))
