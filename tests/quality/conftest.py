"""A small, clean meter history in an isolated schema, and ways to spoil it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text

from vbatt.readings import Reading

METER = "QM-1"
BATTERY = "QB-1"
CAPACITY = 3.0
FIRST = datetime(2025, 5, 31, 21, 0, tzinfo=UTC)  # an hour before the battery's start
LAST = datetime(2025, 6, 3, 23, 0, tzinfo=UTC)  # the local day 2025-06-04 has begun


def clean_readings(
    start: datetime = FIRST, end: datetime = LAST, skip: tuple[datetime, datetime] | None = None
) -> list[Reading]:
    """Quarter-hour readings of a PV household: import at night, export at noon."""
    readings, ts, imp, exp = [], start, 1000.0, 500.0
    while ts <= end:
        if not (skip and skip[0] <= ts < skip[1]):
            readings.append(Reading(METER, ts, round(imp, 6), round(exp, 6)))
        hour = ts.hour
        if 8 <= hour < 16:
            exp += 0.6
        else:
            imp += 0.2
        ts += timedelta(minutes=15)
    return readings


def battery_row(**changes) -> dict:
    row = {
        "battery_id": BATTERY,
        "name": "Quality test",
        "partner_id": "P1",
        "customer_id": "C1",
        "meter_id": METER,
        "capacity_kwh": CAPACITY,
        "start_date": date(2025, 6, 1),
        "reset_date": None,
        "reset_repeat": "yearly",
        "end_date": None,
        "timezone": "Europe/Zurich",
        "initial_level_kwh": 0.0,
    }
    row.update(changes)
    return row


class Gate:
    """Runs the checkpoints of a test pipeline, data docs in a temporary folder."""

    def __init__(self, pipeline, docs_dir):
        self.p, self.docs_dir = pipeline, docs_dir

    def run(self, checkpoint: str):
        from vbatt.quality import run_checkpoint

        return run_checkpoint(
            checkpoint,
            self.p.url,
            schema=self.p.schema,
            raw_schema=self.p.raw,
            docs_dir=self.docs_dir,
        )

    def forget(self, checkpoint: str) -> None:
        """Make the next run check everything again (as a first run would)."""
        with self.p.engine.begin() as conn:
            conn.execute(
                text(
                    f"delete from {self.p.raw}.quality_failures where run_id in (select run_id"
                    f" from {self.p.raw}.quality_runs where checkpoint = :c)"
                ),
                {"c": checkpoint},
            )
            conn.execute(
                text(f"delete from {self.p.raw}.quality_runs where checkpoint = :c"),
                {"c": checkpoint},
            )

    def sql(self, statement: str, **params) -> None:
        s = self.p.schema
        statement = statement.format(
            raw=self.p.raw, intermediate=f"{s}_intermediate", marts=f"{s}_marts"
        )
        with self.p.engine.begin() as conn:
            conn.execute(text(statement), params)


@pytest.fixture
def gate(pipeline, tmp_path):
    return Gate(pipeline, tmp_path / "data_docs")
