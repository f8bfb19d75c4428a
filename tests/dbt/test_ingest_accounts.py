"""Every load says what it did with every value, in raw.files/raw.loads, the CLI and the
file_drop task; SDAT-CH documents load like MSCONS load profiles (DST days included)."""

from __future__ import annotations

import json
import logging
import secrets
import shutil
from pathlib import Path

import pytest
from sqlalchemy import make_url, text

from tests.exports import batches as b
from vbatt.exports.formats import sdat as writer
from vbatt.exports.numbers import fixed
from vbatt.ingest.load import ingest_file, process_drop_folder

DATA = Path(__file__).resolve().parents[1] / "data"
VARIANTS = DATA / "mscons" / "variants"
pytestmark = pytest.mark.slow


def _one(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).one()


def test_sdat_dst_days_become_profile_quarter_hours(pipeline, tmp_path):
    expected = {}
    for day, count in ((b.SPRING_DAY, 92), (b.AUTUMN_DAY, 100)):
        batch = b.batch(b.day_period(day), count=1)
        (file,) = writer.render(batch, {"channels": ["charge", "discharge"]}, b.CONTEXT)
        path = tmp_path / file.name
        path.write_bytes(file.content)
        outcome = ingest_file(pipeline.engine, path, raw_schema=pipeline.raw)
        assert (outcome.status, outcome.kind) == ("loaded", "sdat"), outcome.reason
        assert outcome.account.used == {
            "1-1:1.29.0 (import load profile)": count,
            "1-1:2.29.0 (export load profile)": count,
        }
        (battery,) = batch.batteries
        for row in battery.intervals:
            expected[row.start] = (
                float(fixed(row.charge, 3)),
                float(fixed(row.discharge, 3)),
                row.estimated,
            )
    pipeline.run()
    rows = pipeline.rows("int_profile_intervals", "interval_start")
    assert len(rows) == 92 + 100
    got = {r["interval_start"]: (r["import_kwh"], r["export_kwh"], r["estimated"]) for r in rows}
    assert got == expected
    assert any(estimated for _i, _e, estimated in expected.values())


def test_a_file_without_usable_values_loads_and_says_why_or_is_refused(pipeline, tmp_path):
    path = VARIANTS / "2.4c-reactive-only.edi"
    outcome = ingest_file(pipeline.engine, path, raw_schema=pipeline.raw)
    assert outcome.status == "loaded"
    head = outcome.report()[0]
    assert "0 values used, 4 ignored, 0 quarantined" in head
    assert (
        "no usable values: 2 reactive energy (1-1:5.29.0); 2 reactive energy (1-1:8.29.0)" in head
    )
    row = _one(
        pipeline.engine,
        f"select f.values_used, f.values_ignored, f.values_quarantined, f.account,"
        f" l.values_ignored as load_ignored, l.account as load_account"
        f" from {pipeline.raw}.files f join {pipeline.raw}.loads l using (load_id)"
        f" where f.file_name = :n",
        n=path.name,
    )
    assert (row.values_used, row.values_ignored, row.values_quarantined) == (0, 4, 0)
    assert (
        row.account
        == row.load_account
        == {
            "used": {},
            "ignored": {"reactive energy (1-1:5.29.0)": 2, "reactive energy (1-1:8.29.0)": 2},
            "quarantined": {},
        }
    )
    assert row.load_ignored == 4

    drop = tmp_path / "drop"
    drop.mkdir()
    shutil.copy(VARIANTS / "2.2g-monthly-quantities-dtm-610.edi", drop)
    shutil.copy(VARIANTS / "2.4c-profile-qty-qualifiers.edi", drop)
    outcomes = {
        o.path.name: o
        for o in process_drop_folder(
            pipeline.engine, drop, raw_schema=pipeline.raw, refuse_empty=True
        )
    }
    monthly = outcomes["2.2g-monthly-quantities-dtm-610.edi"]
    assert monthly.status == "refused"
    reason = (drop / "refused" / "2.2g-monthly-quantities-dtm-610.edi.reason.txt").read_text()
    assert reason.startswith("no usable values: ")
    assert "1-1:1.9.0: an energy quantity over a period" in reason
    qualifiers = outcomes["2.4c-profile-qty-qualifiers.edi"]
    assert qualifiers.status == "loaded" and qualifiers.account.values_used == 9
    report = "\n".join(qualifiers.report())
    assert "used 3 values of 1-1:1.29.0 (import load profile)" in report
    assert "ignored 1 values: proposed value (QTY+201) of 1-1:1.29.0" in report
    assert "quarantined 1 values: a value the sender marks not usable (QTY+20)" in report
    refused = _one(
        pipeline.engine,
        f"select status, reason, values_used, values_ignored from {pipeline.raw}.files"
        " where file_name = :n",
        n="2.2g-monthly-quantities-dtm-610.edi",
    )
    assert (refused.status, refused.values_used, refused.values_ignored) == ("refused", 0, 2)
    assert refused.reason == reason.strip()


def test_cli_and_file_drop_print_the_account(
    engine, warehouse_url, monkeypatch, tmp_path, capsys, caplog
):
    from vbatt import cli
    from vbatt.orchestration.pipeline import ingest_drop_folder
    from vbatt.settings import get_settings

    database = f"acc_{secrets.token_hex(4)}"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"create database {database}"))
    url = make_url(warehouse_url).set(database=database).render_as_string(hide_password=False)
    monkeypatch.setenv("WAREHOUSE_URL", url)
    get_settings.cache_clear()
    try:
        units = VARIANTS / "2.4c-units-and-media.edi"
        broken = tmp_path / "broken.edi"
        broken.write_text(units.read_text(encoding="latin-1")[:300], encoding="latin-1")
        assert cli.main(["ingest", str(units), str(broken)]) == 2
        captured = capsys.readouterr()
        assert "2.4c-units-and-media.edi: loaded as load" in captured.out
        assert "6 values used, 6 ignored, 0 quarantined" in captured.out
        assert "used 3 values of 1-1:1.29.0 (import load profile)" in captured.out
        assert "ignored 1 values: not electricity: gas volume (7-20:3.0.0, MTQ)" in captured.out
        assert "broken.edi: refused, nothing loaded" in captured.err

        drop = tmp_path / "drop"
        drop.mkdir()
        shutil.copy(VARIANTS / "2.4c-reactive-only.edi", drop)
        shutil.copy(VARIANTS / "2.4c-series-period-resolution.edi", drop)
        monkeypatch.setenv("VBATT_DROP_REFUSE_EMPTY", "true")
        get_settings.cache_clear()
        with caplog.at_level(logging.INFO, logger="vbatt.orchestration.pipeline"):
            summary = ingest_drop_folder(url, drop)
        assert (summary["loaded"], summary["refused"]) == (1, 1)
        assert summary["values_used"] == 16 and summary["values_ignored"] == 0
        files = {f["file"]: f for f in summary["files"]}
        assert files["2.4c-reactive-only.edi"]["status"] == "refused"
        assert files["2.4c-series-period-resolution.edi"]["used"] == {
            "1-1:1.29.0 (import load profile)": 8,
            "1-1:2.29.0 (export load profile)": 8,
        }
        json.dumps(summary)  # an Airflow XCom
        logged = caplog.text
        assert "2.4c-reactive-only.edi: refused, nothing loaded: no usable values" in logged
        assert "used 8 values of 1-1:1.29.0 (import load profile)" in logged
    finally:
        get_settings.cache_clear()
