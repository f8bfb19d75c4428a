"""`vbatt warehouse psql`: the bundled psql on the warehouse the CLI uses; a SQL file stops
at its first error."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from vbatt.cli import main

DATABASE = "t_psql"


@pytest.fixture
def psql_db(cli_database, monkeypatch):
    monkeypatch.setenv("PATH", "")  # the wheel's psql, not one the machine may have
    return cli_database


def run_script(folder, sql: str) -> int:
    script = folder / "script.sql"
    script.write_text(sql)
    return main(["warehouse", "psql", str(script)])


def test_a_sql_file_runs_on_the_warehouse(psql_db, tmp_path, capfd):
    sql = "create table notes (n int);\ninsert into notes values (1), (2);\n"
    assert run_script(tmp_path, sql + "select sum(n) as total from notes;\n") == 0
    assert "total" in capfd.readouterr().out
    with psql_db.connect() as conn:
        assert conn.execute(text("select count(*) from notes")).scalar_one() == 2


def test_a_sql_file_stops_at_its_first_error(psql_db, tmp_path, capfd):
    sql = "create table before_error (n int);\nselect * from no_such_table;\n"
    assert run_script(tmp_path, sql + "create table after_error (n int);\n") == 3
    assert "no_such_table" in capfd.readouterr().err
    with psql_db.connect() as conn:
        tables = conn.execute(
            text("select table_name from information_schema.tables where table_schema = 'public'")
        ).scalars()
        assert set(tables) == {"before_error"}


def test_a_missing_sql_file_is_named(psql_db, tmp_path, capfd):
    assert main(["warehouse", "psql", str(tmp_path / "nope.sql")]) == 2
    assert "nope.sql" in capfd.readouterr().err
