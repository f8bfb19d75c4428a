"""Quarantine: a failing reading is held out of the ledger, listed, and re-admitted."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from tests.quality.conftest import METER, battery_row, clean_readings
from tests.quality.test_expectations import near
from vbatt.quality.quarantine import list_quarantine, release

DIP = near("2025-06-02T01:00:00+00:00", d_import=-5.0)  # a bad value, not a meter exchange


def readings_at(pipeline, ts: datetime) -> list[dict]:
    rows = pipeline.rows("int_meter_readings", "reading_at", "reading_at, import_raw_kwh")
    return [r for r in rows if r["reading_at"] == ts]


def test_quarantine_round_trip(pipeline, gate):
    pipeline.batteries([battery_row()])
    pipeline.load(clean_readings())
    assert gate.run("after_ingest").outcome == "passed"
    pipeline.run()
    ledger_before = pipeline.rows(
        "battery_intervals", "interval_start", "interval_start, level_kwh"
    )

    pipeline.load([DIP])
    result = gate.run("after_ingest")
    assert result.outcome == "warned" and result.quarantined == 1, result.summary
    assert "registers_non_decreasing_after_rebasing" in result.summary

    held = list_quarantine(pipeline.url, raw_schema=pipeline.raw)
    assert [(h["meter_id"], h["ts"], h["import_kwh"]) for h in held] == [
        (METER, DIP.ts, DIP.import_kwh)
    ]
    assert held[0]["reason"] == "registers_non_decreasing_after_rebasing"
    assert held[0]["run_id"] == result.run_id
    with pipeline.engine.connect() as conn:
        rejected = conn.execute(
            text(f"select reason, meter_id, record from {pipeline.raw}.rejected_readings")
        ).all()
        stored = conn.execute(
            text(f"select count(*) from {pipeline.raw}.meter_readings where ts = :t"),
            {"t": DIP.ts},
        ).scalar()
    assert [(r.reason, r.meter_id) for r in rejected] == [
        ("registers_non_decreasing_after_rebasing", METER)
    ]
    assert stored == 1  # raw stays append-only: the reading is kept, only held back

    # the ledger does not see the held reading: nothing changes
    pipeline.run()
    assert readings_at(pipeline, DIP.ts) == []
    assert (
        pipeline.rows("battery_intervals", "interval_start", "interval_start, level_kwh")
        == ledger_before
    )
    # a second check of the same loads holds nothing twice
    assert gate.run("after_ingest").quarantined == 0

    assert release(pipeline.url, meter_id="other", raw_schema=pipeline.raw) == 0
    assert release(pipeline.url, meter_id=METER, raw_schema=pipeline.raw) == 1
    assert list_quarantine(pipeline.url, raw_schema=pipeline.raw) == []
    assert list_quarantine(pipeline.url, raw_schema=pipeline.raw, include_released=True)[0][
        "released_at"
    ]
    # released: the next incremental run takes it up (and rebases over the dip)
    pipeline.run()
    assert readings_at(pipeline, DIP.ts) == [
        {"reading_at": DIP.ts, "import_raw_kwh": DIP.import_kwh}
    ]
    incremental = pipeline.rows("battery_intervals", "interval_start", "interval_start, level_kwh")
    pipeline.run(full_refresh=True)
    assert (
        pipeline.rows("battery_intervals", "interval_start", "interval_start, level_kwh")
        == incremental
    )
    assert incremental != ledger_before


def test_data_docs_written(pipeline, gate):
    pipeline.batteries([battery_row()])
    pipeline.load(clean_readings() + [DIP])
    result = gate.run("after_ingest")
    assert result.data_docs == gate.docs_dir / "after_ingest" / "index.html"
    assert result.data_docs.is_file()
    assert str(result.data_docs) in result.summary
    pages = list((gate.docs_dir / "after_ingest" / "validations").rglob("*.html"))
    assert len(pages) == 1, "the latest run's report"
    shown = " ".join(re.sub(r"<[^>]+>", " ", pages[0].read_text()).split())
    assert "Unsuccessful Expectations 1 " in shown
    assert "drops and then comes back" in shown  # the failed expectation's description

    # every checkpoint keeps its latest report; the index above links them all
    pipeline.run()
    assert gate.run("after_ledger").data_docs.is_file()
    gate.run("after_ingest")
    assert len(list((gate.docs_dir / "after_ingest" / "validations").rglob("*.html"))) == 1
    index = (gate.docs_dir / "index.html").read_text()
    assert 'href="after_ingest/index.html"' in index
    assert 'href="after_ledger/index.html"' in index


def test_cli_list_and_release(engine, warehouse_url, monkeypatch, tmp_path, capsys):
    """The commands people use, on the default schemas of a database of their own."""
    from sqlalchemy import make_url

    from vbatt import cli
    from vbatt.settings import get_settings
    from vbatt.warehouse.db import get_engine
    from vbatt.warehouse.loader import load_readings, upsert_batteries
    from vbatt.warehouse.migrate import migrate

    database = f"cli_{secrets.token_hex(4)}"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"create database {database}"))
    url = make_url(warehouse_url).set(database=database).render_as_string(hide_password=False)
    monkeypatch.setenv("WAREHOUSE_URL", url)
    monkeypatch.setenv("VBATT_DATA_DOCS_DIR", str(tmp_path / "docs"))
    get_settings.cache_clear()
    try:
        own = get_engine(url)
        migrate(own)
        upsert_batteries(own, [battery_row()])
        load_readings(own, clean_readings() + [DIP], source="test")
        assert cli.main(["quality", "after_ingest"]) == 0
        assert "1 readings quarantined" in capsys.readouterr().out
        assert cli.main(["quarantine", "list"]) == 0
        out = capsys.readouterr().out
        assert METER in out and "registers_non_decreasing_after_rebasing" in out
        # released without a fix: the gate, run at once, holds it again
        assert cli.main(["quarantine", "release", "--meter", METER]) == 0
        out = capsys.readouterr().out
        assert "1 readings released" in out and "1 readings held (again)" in out
        assert cli.main(["quarantine", "list"]) == 0
        assert "registers_non_decreasing_after_rebasing" in capsys.readouterr().out
        assert (tmp_path / "docs" / "after_ingest" / "index.html").is_file()
    finally:
        get_settings.cache_clear()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f"drop database if exists {database} with (force)"))


@pytest.mark.parametrize("when", [datetime(2025, 6, 2, tzinfo=UTC)])
def test_release_filters_by_time(pipeline, gate, when):
    pipeline.batteries([battery_row()])
    pipeline.load(clean_readings())
    gate.run("after_ingest")
    pipeline.load([DIP, near("2025-06-03T01:00:00+00:00", d_import=-5.0)])
    assert gate.run("after_ingest").quarantined == 2
    assert release(pipeline.url, until=when, raw_schema=pipeline.raw) == 0
    assert (
        release(
            pipeline.url,
            since=when,
            until=datetime(2025, 6, 3, tzinfo=UTC),
            raw_schema=pipeline.raw,
        )
        == 1
    )
    assert len(list_quarantine(pipeline.url, raw_schema=pipeline.raw)) == 1


def test_a_load_committed_after_a_later_one_is_still_checked(pipeline, gate):
    """Loads commit out of order (file drops beside the API ingest): none escapes the gate."""
    from vbatt.warehouse.loader import append_readings, begin_load, finish_load

    pipeline.batteries([battery_row()])
    pipeline.load(clean_readings())
    gate.run("after_ingest")
    with pipeline.engine.connect() as slow:
        with slow.begin():
            load_id = begin_load(slow, pipeline.raw, "test", "slow file")
            received, loaded = append_readings(slow, pipeline.raw, load_id, "test", [DIP])
            finish_load(slow, pipeline.raw, load_id, received, loaded, 0)
            # meanwhile a later load commits and is checked
            pipeline.load([near("2025-06-03T05:00:00+00:00")])
            assert gate.run("after_ingest").outcome == "passed"
        # the slow load is committed now: the next run checks it
    result = gate.run("after_ingest")
    assert result.quarantined == 1, result.summary


def test_a_dip_revealed_by_a_later_load_is_reported(pipeline, gate):
    """The reading that comes back arrives after the dip went into the ledger: the gate
    still names the dip, and says it is too late to hold it back."""
    cut = DIP.ts + timedelta(minutes=1)  # the history ends with the dip
    history = [r for r in clean_readings() if r.ts < cut]
    pipeline.batteries([battery_row()])
    pipeline.load(history + [DIP])
    assert gate.run("after_ingest").outcome == "passed"  # a drop: perhaps a meter exchange
    pipeline.run()
    pipeline.load([r for r in clean_readings() if r.ts >= cut])
    result = gate.run("after_ingest")
    assert "registers_non_decreasing_after_rebasing: 1 rows" in result.summary
    assert result.quarantined == 0
    assert "1 failing readings were already in the ledger" in result.summary


def test_a_released_reading_goes_through_the_gate_again(pipeline, gate):
    from datetime import date

    from vbatt.readings import Reading

    early = Reading(METER, datetime(2025, 5, 30, 12, tzinfo=UTC), 999.0, 499.0)
    pipeline.batteries([battery_row()])
    pipeline.load(clean_readings() + [early])  # before the battery's first day
    first = gate.run("after_ingest")
    assert first.quarantined == 1, first.summary
    [held] = list_quarantine(pipeline.url, raw_schema=pipeline.raw)
    reason = held["reason"]

    # released without a fix: checked again, held again, with its reason
    assert release(pipeline.url, meter_id=METER, raw_schema=pipeline.raw) == 1
    again = gate.run("after_ingest")
    assert again.quarantined == 1, again.summary
    [held] = list_quarantine(pipeline.url, raw_schema=pipeline.raw)
    assert (held["ts"], held["reason"], held["run_id"]) == (early.ts, reason, again.run_id)
    assert held["released_at"] is None
    pipeline.run()
    assert readings_at(pipeline, early.ts) == []  # the ledger never saw it
    with pipeline.engine.connect() as conn:
        reasons = conn.execute(
            text(f"select reason from {pipeline.raw}.rejected_readings where source = 'quality'")
        ).scalars()
        assert list(reasons) == [reason, reason]  # held twice, listed twice

    # fixed (a battery on the meter starts earlier: a start date is fixed for a battery's
    # life, so it is another battery) and released: it passes and reaches the ledger
    pipeline.batteries([battery_row(battery_id="QB-early", start_date=date(2025, 5, 31))])
    assert release(pipeline.url, meter_id=METER, raw_schema=pipeline.raw) == 1
    third = gate.run("after_ingest")
    assert third.quarantined == 0, third.summary
    assert list_quarantine(pipeline.url, raw_schema=pipeline.raw) == []
    pipeline.run()
    assert readings_at(pipeline, early.ts) == [
        {"reading_at": early.ts, "import_raw_kwh": early.import_kwh}
    ]
