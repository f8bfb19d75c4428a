"""The Great Expectations gate before delivery, on files read back from their bytes."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import text

from tests.exports.conftest import DAYS, make_partner
from vbatt.exports import readback
from vbatt.exports.formats import csv as csv_format
from vbatt.exports.gate import export_gate
from vbatt.exports.period import day_period
from vbatt.exports.run import export_partner

pytestmark = pytest.mark.slow

DAY = day_period(DAYS[1], "Europe/Zurich")
SWISS = {"vb-1": "CH1000112345000000000000000000001", "vb-2": "CH1000112345000000000000000000002"}


def run(warehouse, partner, outbox):
    return export_partner(
        warehouse.engine,
        partner,
        DAY,
        outbox,
        schema=warehouse.schema,
        raw_schema=warehouse.raw,
        gate=export_gate(warehouse.url, warehouse.schema, warehouse.raw),
    )


def test_every_format_read_back_passes_the_gate(warehouse, tmp_path):
    partner = make_partner(
        "p1",
        [
            {"format": "csv"},
            {"format": "csv", "name": "csv-dach", "options": {"dialect": "dach"}},
            {"format": "mscons", "options": {"version": "2.2e"}},
            {"format": "sdat"},
            {"format": "ise"},
        ],
        batteries={b: {"metering_point": mp} for b, mp in SWISS.items()},
        sender={"id": "12X-VBATT-DEMO-S", "qualifier": "305"},
        receiver={"id": "12X-EWA-DEMO---R", "qualifier": "305"},
    )
    results, delivered = run(warehouse, partner, tmp_path / "outbox")
    assert {r.status for r in results} == {"new"}, [r.reason for r in results]
    assert delivered


def test_readback_sees_what_the_bytes_say(warehouse, tmp_path):
    """The gate's figures come from the files: two batteries x four channels x 100 values."""
    from vbatt.exports.data import read_batch

    partner = make_partner("p1", [{"format": "csv"}])
    batch = read_batch(
        warehouse.engine, partner, DAY, schema=warehouse.schema, raw_schema=warehouse.raw
    )
    files = csv_format.render(batch, {}, None)
    rows = readback.contents(batch, partner.formats[0], files)
    assert len(rows) == 8 and {r["value_count"] for r in rows} == {100}
    intervals = next(f for f in files if f.name.endswith("_intervals.csv"))
    shortened = dataclasses.replace(
        intervals, content=b"\n".join(intervals.content.splitlines()[:-3])
    )
    counts = {
        (r["battery_id"], r["channel"]): r["value_count"]
        for r in readback.contents(batch, partner.formats[0], [shortened])
    }
    assert counts["vb-2", "charge"] == 97


def test_a_failing_gate_holds_back_only_that_partner(warehouse, tmp_path, monkeypatch):
    """A renderer that loses the last quarter hour of one partner's last battery: the
    gate finds the missing value in the file, that partner's files are not issued, the
    other partner's are."""
    original = csv_format.render

    def faulty(batch, options, ctx):
        if batch.partner_id == "p1":
            last = batch.batteries[-1]
            batch = dataclasses.replace(
                batch,
                batteries=(
                    *batch.batteries[:-1],
                    dataclasses.replace(last, intervals=last.intervals[:-1]),
                ),
            )
        return original(batch, options, ctx)

    monkeypatch.setattr(csv_format, "render", faulty)
    outbox = tmp_path / "outbox"
    (blocked,), delivered = run(warehouse, make_partner("p1", [{"format": "csv"}]), outbox)
    assert blocked.status == "blocked" and delivered == []
    assert "vb-2" in blocked.reason, blocked.reason
    assert not (outbox / "p1").exists()
    (sent,), delivered = run(warehouse, make_partner("p2", [{"format": "csv"}]), outbox)
    assert sent.status == "new" and delivered
    with warehouse.engine.connect() as conn:
        issued = (
            conn.execute(text(f"select distinct partner_id from {warehouse.raw}.export_files"))
            .scalars()
            .all()
        )
        failed = conn.execute(
            text(
                f"select count(*) from {warehouse.raw}.quality_runs where checkpoint = 'before_export'"
                " and outcome <> 'passed'"
            )
        ).scalar_one()
    assert issued == ["p2"] and failed >= 1


def test_a_channel_missing_from_the_files_is_caught(warehouse):
    """MSCONS rendered without the shortfall series, for an entry that must carry it."""
    from vbatt.exports.data import read_batch
    from vbatt.exports.formats import mscons
    from vbatt.exports.model import RenderContext

    partner = make_partner("p1", [{"format": "mscons"}])
    batch = read_batch(
        warehouse.engine, partner, DAY, schema=warehouse.schema, raw_schema=warehouse.raw
    )
    ctx = RenderContext("VB00000009", DAY.end_utc + timedelta(hours=3))
    gate = export_gate(warehouse.url, warehouse.schema, warehouse.raw)
    complete = mscons.render(batch, {}, ctx)
    assert gate(batch, partner.formats[0], complete) is None
    partial = mscons.render(batch, {"channels": ["charge", "discharge", "overflow"]}, ctx)
    reason = gate(batch, partner.formats[0], partial)
    assert reason and "shortfall" in reason, reason
    # files without a single quarter hour are not waved through either
    empty = csv_format.render(dataclasses.replace(batch, batteries=()), {}, ctx)
    assert gate(batch, make_partner("p1", [{"format": "csv"}]).formats[0], empty)
