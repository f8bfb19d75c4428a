"""dag.test(): ingest and ledger end to end against the simulated cloud and a throw-away
warehouse; a second run over the same window changes nothing."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

pytestmark = pytest.mark.slow

TABLES = {
    "raw.meter_readings": "meter_id, ts",
    "analytics_intermediate.int_battery_ledger": "battery_id, interval_start",
    "analytics_marts.battery_daily": "battery_id, local_date",
    "analytics_marts.battery_registers": "battery_id",
}


def snapshot(engine) -> dict:
    out = {}
    with engine.connect() as conn:
        for table, order in TABLES.items():
            rows = conn.execute(text(f"select * from {table} order by {order}")).mappings()
            out[table] = [
                {
                    k: v
                    for k, v in r.items()
                    if k not in ("computed_at", "ingested_at", "load_id", "reading_seq")
                }
                for r in rows
            ]
    return out


def outbox_files() -> dict[str, bytes]:
    from tests.dags.conftest import OUTBOX

    return {
        str(p.relative_to(OUTBOX)): p.read_bytes() for p in sorted(OUTBOX.rglob("*")) if p.is_file()
    }


# what Airflow and Cosmos printed on every task before QUIET and the task group's settings:
# telemetry calls, the on-run-start hook as a node, Cosmos's assets per model
NOISE = (
    "Unable to emit usage metrics",
    "Unavailable conversion function",
    "Asset (Dataset) URIs",
    "cannot create asset event",
)


def test_ingest_and_ledger_through_airflow(
    dags, airflow_metadata, warehouse_url, engine, tmp_path, capfd, caplog
):
    from vbatt.orchestration import airflow_env
    from vbatt.simulator import running
    from vbatt.simulator.app import DEMO_API_KEY
    from vbatt.simulator.households import ground_truth
    from vbatt.warehouse.loader import upsert_batteries
    from vbatt.warehouse.migrate import migrate

    now = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)
    start = (now - timedelta(days=2)).date()
    migrate(engine)
    upsert_batteries(
        engine,
        [
            {
                "battery_id": f"T{i}",
                "name": f"Test {i}",
                "partner_id": "p",
                "customer_id": f"c{i}",
                "meter_id": f"SIM-000{i}",
                "capacity_kwh": cap,
                "start_date": start,
                "reset_date": None,
                "reset_repeat": "yearly",
                "end_date": None,
                "timezone": "Europe/Zurich",
                "initial_level_kwh": 0.0,
            }
            for i, cap in ((1, 5.0), (2, 0.0))
        ],
    )
    with running(meters=2, seed=42) as url:
        airflow_env.configure(warehouse_url, url, DEMO_API_KEY, retries=0)
        for attempt in range(2):
            # the second time as `make demo` runs them: their output into a file
            log = tmp_path / "runs.log"
            with airflow_env.output_to(log) if attempt else contextlib.nullcontext():
                states = {
                    dag_id: airflow_env.run_dag(dag_id, now)
                    for dag_id in ("meter_ingest", "battery_ledger", "daily_settlement")
                }
            assert set(states.values()) == {"success"}, states
            if attempt == 0:
                first, files = snapshot(engine), outbox_files()
                capfd.readouterr()
                caplog.clear()
    terminal, output = capfd.readouterr(), log.read_text()
    assert "Running with dbt=" in output and "Running with dbt=" not in terminal.out + terminal.err
    # logged at all (pytest takes the records before any stream does)
    assert [n for n in NOISE if n in caplog.text + output] == []
    assert snapshot(engine) == first
    # daily_settlement issued the partner's files for 2026-06-02, once, byte-identical
    assert any(name.startswith("p/csv/") for name in files), files
    assert any(name.startswith("p/mscons/") for name in files), files
    assert outbox_files() == files
    with engine.connect() as conn:
        issued = conn.execute(
            text("select period_label, status, count(*) from raw.export_files group by 1, 2")
        ).all()
    assert [(label, status) for label, status, _n in issued] == [("2026-06-02", "delivered")]

    readings = first["raw.meter_readings"]
    assert readings, "nothing was ingested"
    for r in readings[:: max(1, len(readings) // 50)]:
        assert (r["import_kwh"], r["export_kwh"]) == pytest.approx(
            ground_truth(r["meter_id"], r["ts"], seed=42), abs=1e-9
        )
    registers = {r["battery_id"]: r for r in first["analytics_marts.battery_registers"]}
    # two local days plus the morning (UTC) of the third, both batteries
    expected = (now - datetime(2026, 5, 31, 22, 0, tzinfo=UTC)) // timedelta(minutes=15)
    assert registers["T1"]["intervals"] == expected
    assert registers["T2"]["overflow_total_kwh"] == 0  # unlimited never overflows
    assert 0 <= registers["T1"]["level_kwh"] <= 5
