"""The ingest gate and the readings model share one advisory lock: while the ledger's
readings model runs (its pre-hook holds the lock), the gate's quarantine waits, so a
reading is never both taken into the ledger and quarantined. Two real connections."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

from sqlalchemy import text

from tests.quality.conftest import battery_row, clean_readings
from tests.quality.test_quarantine import DIP

MODEL = Path(__file__).resolve().parents[2] / "dbt/models/intermediate/int_meter_readings.sql"


def _pre_hook() -> str:
    """The lock statement exactly as the readings model runs it."""
    return re.search(r'pre_hook="([^"]+)"', MODEL.read_text(encoding="utf-8"))[1]


def _waiting(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text("select count(*) from pg_locks where locktype = 'advisory' and not granted")
        ).scalar()


def test_the_gate_waits_while_the_readings_model_holds_the_lock(pipeline, gate):
    pipeline.batteries([battery_row()])
    pipeline.load(clean_readings())
    assert gate.run("after_ingest").outcome == "passed"
    pipeline.run()
    pipeline.load([DIP])  # fails a row-level expectation: the gate will quarantine it

    outcome: dict = {}

    def run_gate() -> None:
        outcome["result"] = gate.run("after_ingest")
        outcome["done_at"] = time.monotonic()

    ledger = pipeline.engine.connect()
    transaction = ledger.begin()
    ledger.execute(text(_pre_hook()))  # the readings model's transaction has begun
    second = threading.Thread(target=run_gate)
    second.start()
    deadline = time.monotonic() + 300
    while _waiting(pipeline.engine) == 0 and second.is_alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    try:
        assert second.is_alive() and "result" not in outcome, "the gate did not wait"
        assert _waiting(pipeline.engine) == 1  # blocked on the advisory lock, not elsewhere
        time.sleep(1.0)
        assert second.is_alive()  # still waiting while the lock is held
    finally:
        released_at = time.monotonic()
        transaction.commit()
        ledger.close()
    second.join(300)
    assert not second.is_alive()
    assert outcome["done_at"] >= released_at
    assert outcome["result"].quarantined == 1, outcome["result"].summary
