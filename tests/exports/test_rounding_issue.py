"""The rounding rule changed (``exports/numbers.py``): periods already issued stay as sent.

A period is re-issued only when its values change (the values fingerprint of
``raw.export_files``), never because a newer release writes the same values differently;
periods issued from then on use the new rule.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from tests.exports.conftest import DAYS, FIRST, LAST, battery_rows, make_partner, readings
from vbatt.exports.period import day_period
from vbatt.exports.run import export_partner
from vbatt.readings import Reading

pytestmark = pytest.mark.slow

ZURICH = "Europe/Zurich"
METER = "TIE-0001"


# The register after the 10:00 UTC quarter hour of each day: the steps 0.0025, 0.0025 and
# 0.0125 kWh are exact decimal ties whose doubles lie above them (Python's binary rounding
# writes 0.003 and 0.013, the rule 0.002 and 0.012), and each difference of these doubles
# is exactly that double.
STEPS = {DAYS[0]: 0.0025, DAYS[1]: 0.005, DAYS[2]: 0.0175}


def _tie_readings() -> list[Reading]:
    out, ts, register = [], FIRST, 0.0
    while ts <= LAST:
        out.append(Reading(METER, ts, register, 0.0))
        if ts.hour == 10 and ts.minute == 0:
            register = STEPS[ts.date()]
        ts += timedelta(minutes=15)
    return out


@pytest.fixture
def tied(pipeline):
    rows = [r for r in battery_rows() if r["partner_id"] == "p1"][:1]
    rows[0] |= {"battery_id": "vb-tie", "meter_id": METER, "partner_id": "p-tie"}
    pipeline.batteries(rows)
    pipeline.load(_tie_readings())
    pipeline.load(readings("SIM-0001"))
    pipeline.run()
    return pipeline


def _export(w, partner, day, outbox):
    return export_partner(
        w.engine, partner, day_period(day, ZURICH), outbox, schema=w.schema, raw_schema=w.raw
    )


def _tie_cells(outbox, day) -> set[str]:
    (path,) = outbox.rglob(f"*{day.isoformat()}_intervals.csv")
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    at = f",{day.isoformat()}T10:00:00Z,{day.isoformat()}T10:15:00Z,"  # holds the tie
    (row,) = [line.split(",") for line in lines[1:] if at in line]
    return {row[header.index("import_kwh")], row[header.index("shortfall_kwh")]}


def test_rounding_change_reissues_nothing(tied, tmp_path, monkeypatch):
    partner = make_partner(
        "p-tie", [{"format": "csv", "options": {"decimals": 3, "files": ["intervals"]}}]
    )
    outbox = tmp_path / "outbox"
    day, next_day = DAYS[1], DAYS[2]
    # the previous release rounded the binary value
    monkeypatch.setattr("vbatt.exports.numbers._tie", lambda value, decimals: False)
    (first,), _ = _export(tied, partner, day, outbox)
    assert first.status == "new" and first.version == 1
    assert _tie_cells(outbox, day) == {"0.003"}
    sent = {p: p.read_bytes() for p in outbox.rglob("*") if p.is_file()}

    monkeypatch.undo()  # this release: the one rule
    (again,), delivered = _export(tied, partner, day, outbox)
    assert again.status == "unchanged" and again.version == 1 and delivered == []
    assert {p: p.read_bytes() for p in outbox.rglob("*") if p.is_file()} == sent
    with tied.engine.connect() as conn:
        versions = conn.execute(
            text(
                f"select distinct version from {tied.raw}.export_files"
                " where partner_id = 'p-tie' and period_label = :l"
            ),
            {"l": day.isoformat()},
        ).scalars()
        assert list(versions) == [1]

    (later,), _ = _export(tied, partner, next_day, outbox)  # issued from now on: the rule
    assert later.status == "new"
    assert _tie_cells(outbox, next_day) == {"0.012"}
