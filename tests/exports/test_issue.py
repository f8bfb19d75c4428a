"""Issuing files: exactly once, byte-identical re-runs, corrections, SFTP delivery, gates."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import text

from tests.exports.conftest import DAYS, make_partner
from tests.sftp_server import SftpServer
from vbatt.exports.data import read_batch
from vbatt.exports.period import day_period
from vbatt.exports.run import export_partner
from vbatt.readings import Reading

pytestmark = pytest.mark.slow

DAY = day_period(DAYS[1], "Europe/Zurich")  # the autumn DST day: 100 quarter hours


def export(warehouse, partner, outbox, **kw):
    return export_partner(
        warehouse.engine,
        partner,
        DAY,
        outbox,
        schema=warehouse.schema,
        raw_schema=warehouse.raw,
        **kw,
    )


@pytest.fixture
def outbox(tmp_path):
    return tmp_path / "outbox"


def tree(folder) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def ledger(warehouse) -> list[dict]:
    with warehouse.engine.connect() as conn:
        return [
            dict(r._mapping)
            for r in conn.execute(
                text(
                    f"select partner_id, format_key, period_label, version, reference, file_name, sha256,"
                    f" status, delivered_to from {warehouse.raw}.export_files order by version, file_name"
                )
            )
        ]


def test_batch_reads_the_marts_and_registers_continue_across_periods(warehouse):
    partner = make_partner("p1", [{"format": "csv"}])
    engine, kw = warehouse.engine, {"schema": warehouse.schema, "raw_schema": warehouse.raw}
    days = [read_batch(engine, partner, day_period(d, "Europe/Zurich"), **kw) for d in DAYS]
    assert [b.battery_id for b in days[1].batteries] == ["vb-1", "vb-2"]
    assert [len(b.intervals) for b in days[1].batteries] == [100, 100]
    assert any(r.estimated for r in days[1].batteries[1].intervals)
    for before, after in zip(days, days[1:], strict=False):
        for b0, b1 in zip(before.batteries, after.batteries, strict=True):
            assert b1.registers_start.charged_total == pytest.approx(
                b0.registers_end.charged_total, abs=1e-9
            )
            assert b1.registers_start.level == pytest.approx(b0.registers_end.level, abs=1e-9)
    registers = {r["battery_id"]: r for r in warehouse.rows("battery_registers", "battery_id")}
    for b in days[-1].batteries:
        reg = registers[b.battery_id]
        assert b.registers_end.level == pytest.approx(reg["level_kwh"], abs=1e-9)
        assert b.registers_end.charged_total == pytest.approx(reg["charged_total_kwh"], abs=1e-9)
        assert b.registers_end.shortfall_total == pytest.approx(
            reg["shortfall_total_kwh"], abs=1e-9
        )
    mart = [
        r
        for r in warehouse.rows("battery_intervals", "battery_id, interval_start")
        if r["battery_id"] == "vb-1" and DAY.start_utc <= r["interval_start"] < DAY.end_utc
    ]
    assert [(r.charge, r.level) for r in days[1].batteries[0].intervals] == [
        (m["charge_kwh"], m["level_kwh"]) for m in mart
    ]


def test_rerun_is_byte_identical_and_delivers_nothing_twice(warehouse, outbox):
    partner = make_partner("p1", [{"format": "csv"}, {"format": "mscons"}])
    results, delivered = export(warehouse, partner, outbox)
    assert [r.status for r in results] == ["new", "new"]
    assert len({r.reference for r in results}) == 2
    first = tree(outbox)
    assert first and len(delivered) == len(first)
    assert {r["status"] for r in ledger(warehouse)} == {"delivered"}

    results, delivered = export(warehouse, partner, outbox)
    assert [r.status for r in results] == ["unchanged", "unchanged"]
    assert delivered == []
    assert tree(outbox) == first
    # a file deleted from the outbox is restored byte for byte, not re-issued
    victim = next(p for p in outbox.rglob("*") if p.is_file())
    victim.unlink()
    results, delivered = export(warehouse, partner, outbox)
    assert {r.status for r in results} == {"unchanged"} and delivered == []
    assert tree(outbox) == first


def test_changed_data_is_reissued_as_a_correction(warehouse, outbox):
    partner = make_partner("p1", [{"format": "csv"}])
    (original,), _ = export(warehouse, partner, outbox)
    before = tree(outbox)
    # a late, corrected reading inside the day (the newest version wins downstream)
    ts = DAY.start_utc + timedelta(hours=12)
    with warehouse.engine.connect() as conn:
        imp, exp = conn.execute(
            text(
                f"select import_kwh, export_kwh from {warehouse.raw}.meter_readings"
                " where meter_id = 'SIM-0001' and ts = :ts"
            ),
            {"ts": ts},
        ).one()
    warehouse.load([Reading("SIM-0001", ts, imp + 0.5, exp)])
    warehouse.run()
    (correction,), delivered = export(warehouse, partner, outbox)
    assert correction.status == "correction" and correction.version == 2
    assert correction.reference != original.reference
    assert all("_v2" in p.name for p in correction.files) and delivered
    after = tree(outbox)
    assert {k: v for k, v in after.items() if k in before} == before  # the original stays
    rows = ledger(warehouse)
    assert {r["status"] for r in rows if r["version"] == 1} == {"superseded"}
    assert {r["status"] for r in rows if r["version"] == 2} == {"delivered"}


def test_sftp_delivery_happens_once_and_is_retried_after_a_failure(
    warehouse, tmp_path, monkeypatch
):
    remote = tmp_path / "remote"
    remote.mkdir()
    server = SftpServer(remote)
    try:
        monkeypatch.setenv(
            "AIRFLOW_CONN_PARTNER_SFTP", server.connection_json().replace(str(server.port), "1")
        )  # nothing listens on port 1: the upload fails
        partner = make_partner(
            "p1",
            [{"format": "csv"}],
            delivery={"sftp": {"conn_id": "partner_sftp", "remote_dir": "in"}},
        )
        outbox = tmp_path / "outbox"
        with pytest.raises(Exception):  # noqa: B017 - whatever the SSH stack raises
            export(warehouse, partner, outbox)
        assert {r["status"] for r in ledger(warehouse)} == {"issued"}  # issued, not delivered

        monkeypatch.setenv("AIRFLOW_CONN_PARTNER_SFTP", server.connection_json())
        results, delivered = export(warehouse, partner, outbox)
        assert results[0].status == "unchanged" and len(delivered) == len(results[0].files)
        for path in results[0].files:
            assert (remote / "in" / "csv" / path.name).read_bytes() == path.read_bytes()
        assert not list(remote.rglob("*.part"))
        assert all(r["delivered_to"].startswith("sftp://partner_sftp/") for r in ledger(warehouse))

        _, delivered = export(warehouse, partner, outbox)
        assert delivered == []
    finally:
        server.stop()


def test_a_blocking_gate_stops_only_that_partner(warehouse, outbox):
    p1 = make_partner("p1", [{"format": "csv"}])
    p2 = make_partner("p2", [{"format": "csv"}])

    def gate(batch, fmt, files):
        return "ledger check failed: 3 rows" if batch.partner_id == "p1" else None

    (blocked,), delivered = export(warehouse, p1, outbox, gate=gate)
    assert blocked.status == "blocked" and "3 rows" in blocked.reason and delivered == []
    assert not (outbox / "p1").exists()
    (sent,), delivered = export(warehouse, p2, outbox, gate=gate)
    assert sent.status == "new" and delivered
    assert {r["partner_id"] for r in ledger(warehouse)} == {"p2"}
    # references are unique and increasing per partner; the blocked attempt left a gap
    (later,), _ = export(warehouse, p1, outbox)
    assert (sent.reference, later.reference) == ("VB00000001", "VB00000002")


class _NewRelease:
    """The CSV renderer of a later release: the same values, written differently."""

    @staticmethod
    def render(batch, options, ctx):
        from dataclasses import replace

        from vbatt.exports.formats import csv

        return [
            replace(f, content=f.content + b"# rendered by a newer release\n")
            for f in csv.render(batch, options, ctx)
        ]


def test_a_new_rendering_of_the_same_values_reissues_nothing(warehouse, outbox, monkeypatch):
    partner = make_partner("p1", [{"format": "csv"}])
    (original,), _ = export(warehouse, partner, outbox)
    sent = tree(outbox)
    monkeypatch.setattr("vbatt.exports.issue.renderer", lambda name: _NewRelease)
    (rerun,), delivered = export(warehouse, partner, outbox)
    assert rerun.status == "unchanged" and rerun.version == 1 and delivered == []
    assert rerun.reference == original.reference
    assert tree(outbox) == sent  # the files as sent stay, not the new rendering
    assert [r["version"] for r in ledger(warehouse)] == [1] * len(sent)


def test_an_issue_without_a_values_fingerprint_adopts_one_when_its_bytes_match(
    warehouse, outbox, monkeypatch
):
    partner = make_partner("p1", [{"format": "csv"}])
    export(warehouse, partner, outbox)
    with warehouse.engine.begin() as conn:  # as recorded before the fingerprint existed
        conn.execute(text(f"update {warehouse.raw}.export_files set values_sha256 = null"))
    (rerun,), _ = export(warehouse, partner, outbox)
    assert rerun.status == "unchanged"
    with warehouse.engine.connect() as conn:
        adopted = (
            conn.execute(text(f"select distinct values_sha256 from {warehouse.raw}.export_files"))
            .scalars()
            .all()
        )
    assert len(adopted) == 1 and adopted[0]
    # from now on a new rendering of the same values is no correction either
    monkeypatch.setattr("vbatt.exports.issue.renderer", lambda name: _NewRelease)
    (again,), _ = export(warehouse, partner, outbox)
    assert again.status == "unchanged" and again.version == 1


def test_an_issue_without_a_fingerprint_and_other_bytes_is_corrected(
    warehouse, outbox, monkeypatch
):
    """Without a fingerprint nothing tells a new rendering from new values: the old rule."""
    partner = make_partner("p1", [{"format": "csv"}])
    export(warehouse, partner, outbox)
    with warehouse.engine.begin() as conn:
        conn.execute(text(f"update {warehouse.raw}.export_files set values_sha256 = null"))
    monkeypatch.setattr("vbatt.exports.issue.renderer", lambda name: _NewRelease)
    (rerun,), _ = export(warehouse, partner, outbox)
    assert rerun.status == "correction" and rerun.version == 2
