"""`vbatt export` as people run it: default schemas of a database of its own, a partner
folder, the outbox; a second run changes nothing; a bad period gets a clear error; files
waiting from another period are named with it."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import make_url, text

from tests.exports.conftest import DAYS, battery_rows, readings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def computed(engine, warehouse_url, tmp_path_factory):
    """A database of its own with partner p2's batteries computed (one dbt run for the
    module), the CLI pointed at it; each test exports a day of its own."""
    from vbatt.ledger.dbt_runner import run_dbt
    from vbatt.settings import get_settings
    from vbatt.warehouse.db import get_engine
    from vbatt.warehouse.loader import load_readings, upsert_batteries
    from vbatt.warehouse.migrate import migrate

    home = tmp_path_factory.mktemp("export_cli")
    database = f"cli_{secrets.token_hex(4)}"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"create database {database}"))
    url = make_url(warehouse_url).set(database=database).render_as_string(hide_password=False)
    partners = home / "partners"
    partners.mkdir()
    (partners / "p2.yaml").write_text(
        "partner_id: p2\nname: Partner two\nsender: {id: '9900000000017'}\n"
        "receiver: {id: '9900000000024'}\nformats: [{format: csv}, {format: mscons}]\n"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WAREHOUSE_URL", url)
        patch.setenv("VBATT_PARTNERS_DIR", str(partners))
        patch.setenv("VBATT_DATA_DOCS_DIR", str(home / "docs"))
        get_settings.cache_clear()
        try:
            own = get_engine(url)
            migrate(own)
            upsert_batteries(own, battery_rows())
            load_readings(own, readings("SIM-0003"), source="test")
            run_dbt(["run"], url=url, target_dir=home / "target")
            yield
        finally:
            get_settings.cache_clear()
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text(f"drop database {database} with (force)"))


def export_day(day) -> list[str]:
    return ["export", "--partner", "p2", "--period", day.isoformat()]


def test_vbatt_export_issues_once(computed, tmp_path, capsys):
    from vbatt import cli

    outbox = tmp_path / "outbox"
    args = [*export_day(DAYS[1]), "--out", str(outbox)]
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


def test_files_waiting_from_another_period_are_named_with_it(computed, tmp_path, capsys):
    """A period with nothing to issue still delivers what earlier runs left waiting: the
    delivery line names those files and their period, so that it is not read as this
    period's delivery (a bare "delivered 2 file(s)" was)."""
    from vbatt import cli

    outbox = tmp_path / "outbox"
    assert cli.main([*export_day(DAYS[2]), "--out", str(outbox), "--no-delivery"]) == 0
    capsys.readouterr()
    names = sorted(p.name for p in outbox.rglob("*") if p.is_file())
    assert names

    later = ["export", "--partner", "p2", "--period", "2030-01-01", "--out", str(outbox)]
    assert cli.main(later) == 2  # a period not ended is not issued unless asked
    refused = " ".join(capsys.readouterr().err.split())
    assert "period 2030-01-01 has not ended" in refused and "--unfinished" in refused
    assert cli.main([*later, "--unfinished"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "no computed intervals in the period, nothing issued" in out
    assert f"delivered {len(names)} file(s): {DAYS[2]} (waiting from an earlier run):" in out
    assert all(name in out for name in names)
