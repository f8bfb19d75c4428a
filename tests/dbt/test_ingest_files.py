"""Dropped files into the warehouse: every reference MSCONS file, CSV with bad rows,
broken files refused whole, the same file twice loaded once."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from vbatt.ingest.load import ingest_file, process_drop_folder
from vbatt.ingest.mscons import read_mscons, to_interval_energies

MSCONS_DIR = Path(__file__).resolve().parents[1] / "data" / "mscons"
pytestmark = pytest.mark.slow


def count(engine, sql: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar_one()


def test_every_reference_file_loads_and_profiles_become_intervals(pipeline):
    files = sorted(MSCONS_DIR.glob("real-*/*.txt"))
    assert len(files) == 19
    outcomes = [ingest_file(pipeline.engine, f, raw_schema=pipeline.raw) for f in files]
    assert [o.status for o in outcomes] == ["loaded"] * len(files), [
        (o.path.name, o.reason) for o in outcomes if o.status != "loaded"
    ]
    swiss_22e = [o for o in outcomes if o.path.name.startswith("20191215_")]
    assert len(swiss_22e) == 6 and all(o.warnings for o in swiss_22e)
    raw = pipeline.raw
    assert count(pipeline.engine, f"select count(*) from {raw}.files") == len(files)
    # every distinct quarter-hour value of the files is stored once (days are re-sent)
    expected = {
        (e.meter_id, e.interval_start, e.register, e.kwh, e.substitute)
        for f in files
        for e in to_interval_energies(read_mscons(f))
        if e.interval_end - e.interval_start == timedelta(minutes=15)
    }
    stored = count(pipeline.engine, f"select count(*) from {raw}.interval_energies")
    assert stored == len(expected) > 3000

    pipeline.run()
    intervals = pipeline.rows("int_profile_intervals", "meter_id, interval_start")
    # the Swiss 2.2e location sends import (1.29) and export (2.29): one day of quarter hours
    assert len(intervals) == 96
    meter = intervals[0]["meter_id"]
    with pipeline.engine.connect() as conn:
        import_sum, export_sum = conn.execute(
            text(
                f"select sum(kwh) filter (where register = 'import'),"
                f" sum(kwh) filter (where register = 'export')"
                f" from {raw}.interval_energies where meter_id = :m"
            ),
            {"m": meter},
        ).one()
    assert sum(i["import_kwh"] for i in intervals) == pytest.approx(import_sum)
    assert sum(i["export_kwh"] for i in intervals) == pytest.approx(export_sum)

    again = ingest_file(pipeline.engine, files[0], raw_schema=pipeline.raw)
    assert again.status == "skipped"


def test_broken_mscons_is_refused_whole_and_moved_aside(pipeline, tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    good = sorted((MSCONS_DIR / "real-ch").glob("20191215_*.txt"))[0]
    shutil.copy(good, drop / good.name)
    text_ = good.read_text(encoding="latin-1")
    (drop / "truncated.txt").write_text(text_[: len(text_) // 2], encoding="latin-1")
    (drop / "notes.txt").write_text("hello\n")
    loads_before = count(pipeline.engine, f"select count(*) from {pipeline.raw}.loads")

    outcomes = {
        o.path.name: o for o in process_drop_folder(pipeline.engine, drop, raw_schema=pipeline.raw)
    }
    assert outcomes[good.name].status == "loaded"
    assert outcomes["truncated.txt"].status == "refused"
    assert outcomes["notes.txt"].status == "refused"
    assert (drop / "loaded" / good.name).exists()
    reason = (drop / "refused" / "truncated.txt.reason.txt").read_text()
    assert "truncated.txt" in reason or "segment" in reason
    assert not any(p.is_file() for p in drop.iterdir())
    # only the good file made a load; the refused ones are recorded, nothing half-loaded
    assert count(pipeline.engine, f"select count(*) from {pipeline.raw}.loads") == loads_before + 1
    assert (
        count(
            pipeline.engine, f"select count(*) from {pipeline.raw}.files where status = 'refused'"
        )
        == 2
    )


def test_csv_bad_rows_are_quarantined_with_the_reason(pipeline, tmp_path):
    path = tmp_path / "readings.csv"
    path.write_text(
        "meter_id,timestamp,import_kwh,export_kwh\n"
        "M1,2026-01-01T00:00:00Z,1.0,2.0\n"
        "M1,2026-01-01T00:15:00Z,abc,2.0\n"
        "M1,2026-01-01T00:30:00Z,1.5,-2.0\n"
        "M1,2026-01-01T00:45:00Z,1.7,2.1\n"
    )
    outcome = ingest_file(pipeline.engine, path, raw_schema=pipeline.raw)
    assert (outcome.status, outcome.loaded, outcome.rejected) == ("loaded", 2, 2)
    with pipeline.engine.connect() as conn:
        rejected = conn.execute(
            text(
                f"select location, record, reason from {pipeline.raw}.rejected_readings"
                " order by location"
            )
        ).all()
    assert [r.location for r in rejected] == ["readings.csv:3", "readings.csv:4"]
    assert "'abc' is not a number" in rejected[0].reason
    assert "negative" in rejected[1].reason
    assert rejected[0].record == "M1,2026-01-01T00:15:00Z,abc,2.0"


def test_csv_without_a_column_is_refused(pipeline, tmp_path):
    path = tmp_path / "readings.csv"
    path.write_text("meter_id,timestamp,import_kwh\nM1,2026-01-01T00:00:00Z,1.0\n")
    outcome = ingest_file(pipeline.engine, path, raw_schema=pipeline.raw)
    assert outcome.status == "refused"
    assert "export_kwh" in outcome.reason
    assert count(pipeline.engine, f"select count(*) from {pipeline.raw}.meter_readings") == 0


def test_a_file_is_known_by_its_digest_whatever_its_size_says(engine, raw, tmp_path):
    """The digest is waited for only when a loaded file has the same size (or none
    recorded, as before migration 0014): the same file again is skipped either way, and
    a different file of the same size is loaded."""
    header = "meter_id,timestamp,import_kwh,export_kwh\n"
    first = tmp_path / "a.csv"
    first.write_text(header + "M1,2026-01-01T00:00:00Z,1.0,2.0\n")
    same_size = tmp_path / "b.csv"
    same_size.write_text(header + "M1,2026-01-01T00:15:00Z,1.5,2.5\n")
    assert first.stat().st_size == same_size.stat().st_size
    loaded = ingest_file(engine, first, raw_schema=raw)
    assert loaded.status == "loaded"
    with engine.connect() as conn:
        assert conn.execute(text(f"select bytes from {raw}.files")).scalar_one() == (
            first.stat().st_size
        )
    assert ingest_file(engine, first, raw_schema=raw).status == "skipped"
    other = ingest_file(engine, same_size, raw_schema=raw)
    assert (other.status, other.loaded) == ("loaded", 1)
    with engine.begin() as conn:
        conn.execute(text(f"update {raw}.files set bytes = null"))
    again = ingest_file(engine, same_size, raw_schema=raw)
    assert (again.status, again.load_id) == ("skipped", other.load_id)
    assert count(engine, f"select count(*) from {raw}.meter_readings") == 2
