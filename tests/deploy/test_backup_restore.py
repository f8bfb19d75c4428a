"""`vbatt warehouse backup|restore` on the embedded warehouse: a dump restored over a
damaged database gives back every table, view and function as they were."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text

from vbatt.cli import main
from vbatt.readings import Reading
from vbatt.warehouse.loader import load_readings, upsert_batteries
from vbatt.warehouse.migrate import migrate

DATABASE = "t_backup"


@pytest.fixture
def backup_db(cli_database):
    """A database of its own on the test cluster, the CLI pointed at it."""
    return cli_database


def fill(engine) -> None:
    migrate(engine)
    upsert_batteries(
        engine,
        [
            {
                "battery_id": "B1",
                "name": "Backup test",
                "partner_id": "p",
                "customer_id": "c",
                "meter_id": "M1",
                "capacity_kwh": 5.0,
                "start_date": date(2026, 6, 1),
                "reset_date": None,
                "reset_repeat": "yearly",
                "end_date": None,
                "timezone": "Europe/Zurich",
                "initial_level_kwh": 0.0,
            }
        ],
    )
    start = datetime(2026, 6, 1, tzinfo=UTC)
    load_readings(
        engine,
        [
            Reading("M1", start + timedelta(minutes=15 * i), 100 + i * 0.25, 50 + i * 0.5)
            for i in range(96)
        ],
        source="test",
    )
    with engine.begin() as conn:
        conn.execute(text("create schema analytics_marts"))
        conn.execute(
            text(
                "create view analytics_marts.meter_days as select meter_id, ts::date as day,"
                " max(import_kwh) - min(import_kwh) as import_kwh from raw.meter_readings"
                " group by 1, 2"
            )
        )
        conn.execute(
            text(
                "create function analytics_marts.twice(x float8) returns float8 language sql immutable as 'select 2 * x'"
            )
        )


def state(engine) -> dict:
    """Every table's rows, the view's rows and the function's answer."""
    out = {}
    with engine.connect() as conn:
        tables = conn.execute(
            text(
                "select table_schema || '.' || table_name from information_schema.tables"
                " where table_schema not in ('pg_catalog', 'information_schema')"
                " order by 1"
            )
        ).scalars()
        for table in tables:
            out[table] = conn.execute(text(f"select * from {table} order by 1, 2")).all()
        out["twice"] = conn.execute(text("select analytics_marts.twice(21)")).scalar()
    return out


def test_backup_then_restore_over_a_damaged_database(backup_db, tmp_path, capsys):
    fill(backup_db)
    before = state(backup_db)
    assert len(before["raw.meter_readings"]) == 96 and before["twice"] == 42
    dump = tmp_path / "nested" / "warehouse.dump"

    assert main(["warehouse", "backup", str(dump)]) == 0
    assert dump.is_file() and dump.read_bytes().startswith(b"PGDMP")
    assert "backup written" in capsys.readouterr().out

    with backup_db.begin() as conn:  # the accident
        conn.execute(text("delete from raw.meter_readings where ts >= '2026-06-01 12:00Z'"))
        conn.execute(text("drop view analytics_marts.meter_days"))
        conn.execute(text("update raw.batteries set capacity_kwh = 99"))
    assert state(backup_db) != before
    assert main(["warehouse", "restore", str(dump)]) == 0
    assert state(backup_db) == before


def test_restore_of_a_missing_or_broken_file_says_so_and_changes_nothing(
    backup_db, tmp_path, capsys
):
    fill(backup_db)
    before = state(backup_db)
    assert main(["warehouse", "restore", str(tmp_path / "nope.dump")]) == 1
    assert "no backup file" in capsys.readouterr().err
    broken = tmp_path / "broken.dump"
    broken.write_bytes(b"not a dump")
    assert main(["warehouse", "restore", str(broken)]) == 1
    assert "restore failed" in capsys.readouterr().err
    assert state(backup_db) == before
