"""`vbatt export` for a period with nothing to issue still delivers what earlier runs left
waiting: the delivery line names those files and their period, so that it is not read
as this period's delivery (a bare "delivered 2 file(s)" was)."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import make_url, text

from tests.exports.conftest import DAYS, battery_rows, readings

pytestmark = pytest.mark.slow


def test_files_waiting_from_another_period_are_named_with_it(
    engine, warehouse_url, monkeypatch, tmp_path, capsys
):
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
        "receiver: {id: '9900000000024'}\nformats: [{format: csv}]\n"
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
        day = DAYS[1].isoformat()
        issue = ["export", "--partner", "p2", "--period", day, "--out", str(outbox)]
        assert cli.main([*issue, "--no-delivery"]) == 0
        capsys.readouterr()
        names = sorted(p.name for p in outbox.rglob("*") if p.is_file())
        assert names

        later = ["export", "--partner", "p2", "--period", "2030-01-01", "--out", str(outbox)]
        assert cli.main(later) == 0
        out = " ".join(capsys.readouterr().out.split())
        assert "no computed intervals in the period, nothing issued" in out
        assert (
            f"delivered {len(names)} file(s): {day} (waiting from an earlier run):"
            f" {', '.join(names)}" in out
        )
    finally:
        get_settings.cache_clear()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f"drop database {database} with (force)"))
