"""`vbatt warehouse psql`: the bundled psql on the warehouse the CLI uses; a SQL file stops
at its first error."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from vbatt.cli import main

DATABASE = "t_psql"


@pytest.fixture
def psql_db(warehouse_url, monkeypatch):
    """A database of its own on the test cluster, the CLI pointed at it."""
    from vbatt.settings import get_settings

    admin = create_engine(
        warehouse_url.replace("/vbatt?", "/postgres?"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f"drop database if exists {DATABASE} with (force)"))
        conn.execute(text(f"create database {DATABASE}"))
    url = warehouse_url.replace("/vbatt?", f"/{DATABASE}?")
    monkeypatch.setenv("WAREHOUSE_URL", url)
    monkeypatch.setenv("PATH", "")  # the wheel's psql, not one the machine may have
    get_settings.cache_clear()
    engine = create_engine(url)
    yield engine
    engine.dispose()
    get_settings.cache_clear()
    with admin.connect() as conn:
        conn.execute(text(f"drop database {DATABASE} with (force)"))
    admin.dispose()


def test_a_sql_file_runs_on_the_warehouse(psql_db, tmp_path, capfd):
    script = tmp_path / "notes.sql"
    script.write_text(
        "create table notes (n int);\ninsert into notes values (1), (2);\n"
        "select sum(n) as total from notes;\n"
    )
    assert main(["warehouse", "psql", str(script)]) == 0
    assert "total" in capfd.readouterr().out
    with psql_db.connect() as conn:
        assert conn.execute(text("select count(*) from notes")).scalar_one() == 2


def test_a_sql_file_stops_at_its_first_error(psql_db, tmp_path, capfd):
    script = tmp_path / "broken.sql"
    script.write_text(
        "create table before_error (n int);\nselect * from no_such_table;\n"
        "create table after_error (n int);\n"
    )
    assert main(["warehouse", "psql", str(script)]) == 3
    assert "no_such_table" in capfd.readouterr().err
    with psql_db.connect() as conn:
        tables = conn.execute(
            text("select table_name from information_schema.tables where table_schema = 'public'")
        ).scalars()
        assert set(tables) == {"before_error"}


def test_a_missing_sql_file_is_named(psql_db, tmp_path, capfd):
    assert main(["warehouse", "psql", str(tmp_path / "nope.sql")]) == 2
    assert "nope.sql" in capfd.readouterr().err
