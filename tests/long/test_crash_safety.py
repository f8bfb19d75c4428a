"""A crash of the warehouse server loses nothing anybody reads, and costs no rebuild.

`kill -9` of the PostgreSQL postmaster, as a crash or an out-of-memory kill would do it:
after the restart every table and view of the intermediate and mart schemas (what the
API, the dashboard, the exports and analysts read) answers exactly what it answered
before, and the next run does what a normal run does. Killed in the middle of a dbt run,
the next run ends where a run without the crash ends. PostgreSQL empties unlogged tables
on recovery, so a model read by anyone but the next model must not be unlogged.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest
from sqlalchemy import create_engine, text

from vbatt.ledger.dbt_runner import DbtError, run_dbt
from vbatt.warehouse import embedded
from vbatt.warehouse.migrate import migrate

pytestmark = pytest.mark.long

METERS, DAYS = 30, 20
START = "2025-01-01T00:00:00Z"
# PV households as in benchmarks/ledger.py: registers are running sums of the energies
ENERGY = """
    greatest(0, sin(2 * pi() * ((k % 96) / 96.0 - 0.25)))
        * (0.35 + 0.2 * sin(m)) * (0.6 + 0.4 * cos((k / 96) * 0.9 + m))
    - (0.06 + 0.04 * (1 + sin(k * 0.7 + m)))
"""
RUN_STAMPS = {"computed_at", "realtime_xmin"}  # when a run read, not what it computed


def _load(engine, raw: str, k_from: int, k_to: int) -> None:
    with engine.begin() as conn:
        load_id = conn.execute(
            text(f"insert into {raw}.loads (source) values ('test') returning load_id")
        ).scalar_one()
        # the registers from k = 0, so a later day continues the earlier ones
        conn.execute(
            text(f"""
            insert into {raw}.meter_readings (meter_id, ts, import_kwh, export_kwh, source, load_id)
            select meter_id, ts, import_kwh, export_kwh, 'test', {load_id}
            from (
                select 'CM' || lpad(m::text, 3, '0') as meter_id, k,
                       timestamptz '{START}' + k * interval '15 minutes' as ts,
                       100 * m + sum(greatest(-e.net, 0)) over w as import_kwh,
                       50 + sum(greatest(e.net, 0)) over w as export_kwh
                from generate_series(1, {METERS}) as m
                cross join generate_series(0, {k_to}) as k
                cross join lateral (select {ENERGY} as net) as e
                window w as (partition by m order by k rows unbounded preceding)
            ) as series
            where k >= {k_from}
            """)
        )


def _setup(engine, schema: str) -> str:
    raw = f"{schema}_raw"
    migrate(engine, raw)
    with engine.begin() as conn:
        conn.execute(
            text(f"""
            insert into {raw}.batteries (battery_id, name, partner_id, customer_id, meter_id,
                capacity_kwh, start_date, reset_date, timezone)
            select 'CB' || lpad(m::text, 3, '0'), 'Battery ' || m, 'P1', 'C' || m,
                   'CM' || lpad(m::text, 3, '0'), (array[0, 5, 10])[1 + m % 3],
                   date '2025-01-01', case when m % 2 = 0 then date '2025-01-10' end,
                   'Europe/Zurich'
            from generate_series(1, {METERS}) as m
            """)
        )
    _load(engine, raw, 0, DAYS * 96)
    return raw


def _relations(engine, schema: str) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(
                    "select table_schema, table_name, table_type from information_schema.tables"
                    " where table_schema in (:i, :m) order by 1, 2"
                ),
                {"i": f"{schema}_intermediate", "m": f"{schema}_marts"},
            )
        ]


# The ledger's own bookkeeping between runs (when it last read the terms; which batteries a
# run recomputed, for battery_daily): rewritten by every run by design, read by no one else.
BOOKKEEPING = {"int_battery_ledger_terms_read", "int_battery_ledger_recomputed"}


def _snapshot(engine, schema: str, *, stamps: bool = True) -> dict[str, tuple[int, str]]:
    """Rows and a digest of every row of every relation (optionally without run stamps),
    the ledger's bookkeeping aside."""
    found = {}
    with engine.connect() as conn:
        for table_schema, name, _ in _relations(engine, schema):
            if name in BOOKKEEPING:
                continue
            columns = [
                c
                for c in conn.execute(
                    text(
                        "select column_name from information_schema.columns where"
                        " table_schema = :s and table_name = :t order by ordinal_position"
                    ),
                    {"s": table_schema, "t": name},
                ).scalars()
                if stamps or c not in RUN_STAMPS
            ]
            row = ", ".join(f'"{c}"' for c in columns)
            found[name.split("__")[0]] = tuple(
                conn.execute(
                    text(
                        f"select count(*), md5(coalesce(string_agg(r, '|' order by r), ''))"
                        f" from (select ({row})::text as r from {table_schema}.{name}) as t"
                    )
                ).one()
            )
    return found


def _unlogged(engine, schema: str) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "select c.relname from pg_class c join pg_namespace n on n.oid ="
                    " c.relnamespace where n.nspname in (:i, :m) and c.relkind = 'r'"
                    " and c.relpersistence = 'u' order by 1"
                ),
                {"i": f"{schema}_intermediate", "m": f"{schema}_marts"},
            ).scalars()
        )


def _kill_server(data_dir: Path) -> None:
    """SIGKILL the postmaster and wait for its backends to go (no clean shutdown)."""
    pid = int((data_dir / "postmaster.pid").read_text().split()[0])
    children = psutil.Process(pid).children(recursive=True)
    os.kill(pid, signal.SIGKILL)
    psutil.wait_procs([psutil.Process(pid), *children], timeout=60)


def _restart(data_dir: Path) -> None:
    """Start the server again as an operator would: ``vbatt warehouse up`` (recovery)."""
    env = {k: v for k, v in os.environ.items() if k != "WAREHOUSE_URL"}
    env["VBATT_WAREHOUSE_DIR"] = str(data_dir)
    result = subprocess.run(
        [sys.executable, "-m", "vbatt.cli", "warehouse", "up"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _dbt(url: str, schema: str, target: Path, *args: str) -> None:
    run_dbt(["run", *args], url=url, schema=schema, raw_schema=f"{schema}_raw", target_dir=target)


def _restamped(engine, schema: str, since) -> dict[str, int]:
    """Rows each incremental model wrote after ``since`` (0 for a run with no new data)."""
    counts = {}
    with engine.connect() as conn:
        for table_schema, name, kind in _relations(engine, schema):
            has_stamp = conn.execute(
                text(
                    "select 1 from information_schema.columns where table_schema = :s"
                    " and table_name = :t and column_name = 'computed_at'"
                ),
                {"s": table_schema, "t": name},
            ).first()
            if kind == "BASE TABLE" and has_stamp:
                counts[name] = conn.execute(
                    text(f"select count(*) from {table_schema}.{name} where computed_at > :t"),
                    {"t": since},
                ).scalar_one()
    return counts


@pytest.fixture
def warehouse():
    """A cluster of its own (it is killed), where the server's own user can reach it."""
    data_dir = Path(tempfile.mkdtemp(prefix="vbatt-crash-"))
    url = embedded.start(data_dir)
    yield data_dir, url
    embedded.stop(data_dir)
    shutil.rmtree(data_dir, ignore_errors=True)


def test_a_crash_after_a_run_changes_nothing_and_costs_no_rebuild(warehouse, tmp_path):
    data_dir, url = warehouse
    engine = create_engine(url)
    _setup(engine, "crash")
    _dbt(url, "crash", tmp_path / "t1")
    before = _snapshot(engine, "crash")
    with engine.connect() as conn:
        stamp = conn.execute(
            text("select max(computed_at) from crash_intermediate.int_counter_intervals")
        ).scalar_one()
    engine.dispose()

    _kill_server(data_dir)
    _restart(data_dir)
    engine = create_engine(url)
    after = _snapshot(engine, "crash")
    emptied = {name: (before[name], after[name]) for name in before if before[name] != after[name]}
    assert not emptied, f"changed by the crash: {emptied}; unlogged: {_unlogged(engine, 'crash')}"

    _dbt(url, "crash", tmp_path / "t1")  # no new data: a normal run rewrites nothing
    assert set(_restamped(engine, "crash", stamp).values()) == {0}, _restamped(
        engine, "crash", stamp
    )
    assert _snapshot(engine, "crash") == before
    engine.dispose()


def test_a_crash_in_the_middle_of_a_run_ends_as_a_run_without_it(warehouse, tmp_path):
    data_dir, url = warehouse
    engine = create_engine(url)
    for schema in ("crash", "clean"):
        raw = _setup(engine, schema)
        _dbt(url, schema, tmp_path / schema)
        _load(engine, raw, DAYS * 96 + 1, DAYS * 96 + 96)  # one more day
    _dbt(url, "clean", tmp_path / "clean")
    expected = _snapshot(engine, "clean", stamps=False)

    failure: list[BaseException] = []

    def run() -> None:
        try:
            _dbt(url, "crash", tmp_path / "crash")
        except DbtError as exc:
            failure.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    caught = None
    deadline = time.monotonic() + 300
    with engine.connect() as conn:
        while runner.is_alive() and time.monotonic() < deadline:
            caught = conn.execute(
                text(
                    # a model's transaction that has written (the clean runs are over)
                    "select query from pg_stat_activity where backend_xid is not null"
                    " and pid <> pg_backend_pid() and query ~ '(int_[a-z_]+|battery_daily)'"
                    " limit 1"
                )
            ).scalar()
            conn.rollback()  # pg_stat_activity is read once per transaction
            if caught:
                break
            time.sleep(0.002)
    assert caught, "dbt finished before a model statement could be interrupted"
    _kill_server(data_dir)
    runner.join(timeout=300)
    assert failure, "the dbt run survived the crash of its server"
    engine.dispose()

    _restart(data_dir)
    engine = create_engine(url)
    _dbt(url, "crash", tmp_path / "crash")
    assert _snapshot(engine, "crash", stamps=False) == expected
    engine.dispose()
