"""The readings CSV checked on its way in (``csv_stage``) decides exactly as the Python rules.

Every row of a file full of edge cases must come out of the warehouse staging as
``csv_inputs.parse_readings_csv`` reads it: the same readings with the same values, the
same problems with the same lines, columns and words, whether a block of lines went by
the line pattern straight to COPY or through the row rules. Tiny blocks (a line or two)
put the usual lines of the edge-case file on the pattern's way and the others on the rules'.
"""

from __future__ import annotations

from datetime import UTC

import pytest
from sqlalchemy import text

from vbatt.ingest import csv_stage
from vbatt.ingest.csv_inputs import InputFileError, parse_readings_csv
from vbatt.ingest.csv_stage import STAGED, stage_readings_csv

ROWS = [
    "M1,2025-06-01T00:00:00Z,1.5,2",
    "M1,2025-06-01 00:15:00+00:00,1.6,2.0",
    "M1,2025-06-01T02:30:00+02:00,1.7,2e0",
    "M1,2025-06-01T00:45:00-01:30,.5,5.",
    "M1,2025-06-01T01:00:00.25Z,1E2,0",
    "M1,2025-06-01T01:15Z,1,2",
    "M1,2025-06-01T01:30:00z,1,2",
    " M2 ,2025-06-01T00:00:00Z, 3.25 ,\t4\t",
    "\xa0M3,2025-06-01T00:00:00Z,1,2",
    '"M4",2025-06-01T00:00:00Z,"1,5",2',
    '"M5",2025-06-01T00:00:00Z,1,2',
    "",
    "M6,2025-06-01T00:00:00Z,1,2,extra",
    "M7,2025-06-01T00:00:00Z,1",
    "M8,yesterday,1,2",
    "M8,2025-06-01T00:00:00,1,2",
    "M8,2025-02-30T00:00:00Z,1,2",
    "M8,2025-06-01T24:00:00Z,1,2",
    "M8,2025-06-01T23:59:60Z,1,2",
    "M8,2025-06-01T 1:00:00Z,1,2",
    "M8,2025-06-01T01:00:0.Z,1,2",
    "M8,2025-06-01T01:00:00+ 1:00,1,2",
    "M8,2025-06-01T01:00:00+16:00,1,2",
    "M9,2025-06-01T00:00:00Z,x,2",
    "M9,2025-06-01T00:00:00Z,1e,2",
    "M9,2025-06-01T00:00:00Z,1e400,2",
    "M9,2025-06-01T00:00:00Z,1e-400,2",
    "M9,2025-06-01T00:00:00Z,0x10,2",
    "M9,2025-06-01T00:00:00Z,inf,2",
    "M9,2025-06-01T00:00:00Z,NaN,2",
    "M9,2025-06-01T00:00:00Z,-2,2",
    "M9,2025-06-01T00:00:00Z,-0,2",
    "M9,2025-06-01T00:00:00Z,+1,1_0",
    "M9,2025-06-01T00:00:00Z,1 2,2",
    ",2025-06-01T00:00:00Z,1,2",
    "   ",
    "Zähler,2025-06-01T00:00:00Z,0.1,0.2",
]


def _staged(engine, path):
    with engine.begin() as conn:
        staged = stage_readings_csv(conn, path)
        rows = conn.execute(
            text(f"select meter_id, ts, import_kwh, export_kwh from {STAGED} order by position")
        ).all()
    return staged, [(r[0], r[1].astimezone(UTC), r[2], r[3]) for r in rows]


def _python(path):
    readings, problems = parse_readings_csv(path)
    return [(r.meter_id, r.ts, r.import_kwh, r.export_kwh) for r in readings], problems


@pytest.mark.parametrize("block", [1 << 18, 40])
@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_checks_decide_as_the_python_rules(engine, tmp_path, monkeypatch, ending, block):
    monkeypatch.setattr(csv_stage, "BLOCK", block)
    path = tmp_path / "readings.csv"
    path.write_text(
        "meter_id,timestamp,import_kwh,export_kwh" + ending + ending.join(ROWS) + ending,
        encoding="utf-8",
        newline="",
    )
    staged, rows = _staged(engine, path)
    expected_rows, expected_problems = _python(path)
    assert rows == expected_rows
    assert staged.problems == expected_problems
    assert staged.received == len(expected_rows)
    assert len(expected_problems) > 20 and len(expected_rows) > 10  # the file tests both
    if block == 40:  # the usual lines went by the pattern, the others by the rules
        assert staged.way.startswith("line pattern") and "row rules for" in staged.way


def test_header_order_duplicates_and_bom(engine, tmp_path):
    path = tmp_path / "readings.csv"
    path.write_text(
        "\ufeffexport_kwh, timestamp ,meter_id,import_kwh,meter_id\n"
        "2,2025-06-01T00:00:00Z,X,1,M1\n"
        "2,2025-06-01T00:15:00Z,X,1\n"
        "2,2025-06-01T00:30:00Z,X,-1,M2\n",
        encoding="utf-8",
    )
    staged, rows = _staged(engine, path)
    expected_rows, expected_problems = _python(path)
    assert rows == expected_rows and staged.problems == expected_problems
    assert [r[0] for r in rows] == ["M1"]


def test_multi_line_quoted_field_and_bad_encoding_read_by_python(engine, tmp_path):
    path = tmp_path / "readings.csv"
    path.write_text(
        'meter_id,timestamp,import_kwh,export_kwh\n"M\n1",2025-06-01T00:00:00Z,1,2\n'
        "M2,2025-06-01T00:00:00Z,1,x\n"
    )
    staged, rows = _staged(engine, path)
    expected_rows, expected_problems = _python(path)
    assert rows == expected_rows and staged.problems == expected_problems
    # the quoted meter id spans lines 2-3 and holds a line break: quarantined, not stored
    assert [(p.line, p.message) for p, _ in expected_problems] == [
        (3, "control character in meter_id"),
        (4, "'x' is not a number"),
    ]

    bad = tmp_path / "latin1.csv"
    bad.write_bytes(
        b"meter_id,timestamp,import_kwh,export_kwh\nZ\xe4hler,2025-06-01T00:00:00Z,1,2\n"
    )
    with pytest.raises(InputFileError, match=r"line 2: not UTF-8 \(byte 0xe4"):
        with engine.begin() as conn:
            stage_readings_csv(conn, bad)


def test_missing_column_is_refused_with_line_1(engine, tmp_path):
    path = tmp_path / "readings.csv"
    path.write_text("meter_id,timestamp,import_kwh\nM1,2025-06-01T00:00:00Z,1\n")
    with pytest.raises(InputFileError, match="readings.csv:1, column export_kwh"):
        with engine.begin() as conn:
            stage_readings_csv(conn, path)


USUAL = [
    "M1,2025-06-01T00:00:00Z,1.5,2",
    "M1,2025-06-01 00:15:00+00:00,1.6,2.0",
    "M1,2025-06-01T02:30:00+02:00,1.7,20.",
    "M1,2025-06-01T00:45:00-01:30,.5,0005.25",
    "M-2 b#,1999-12-31T23:59:59+14:59,0.1,0.30000000000000004",
    "M~3,2099-02-28T23:45:00-00:00,123456789012345.123456789012345,0",
    "M1,2025-06-01T00:00:00Z,1.5,2",
]


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_usual_lines_go_by_the_pattern_with_the_same_values(engine, tmp_path, ending):
    path = tmp_path / "readings.csv"
    body = ending.join(USUAL)  # no line end after the last line
    path.write_text(f"meter_id,timestamp,import_kwh,export_kwh{ending}{body}", newline="")
    staged, rows = _staged(engine, path)
    assert staged.way == "line pattern"
    assert (rows, staged.problems) == _python(path)
    assert staged.received == len(USUAL)


def test_columns_in_any_order_go_by_the_pattern(engine, tmp_path):
    path = tmp_path / "readings.csv"
    path.write_text(
        "\ufeffexport_kwh,timestamp,meter_id,import_kwh\n2,2025-06-01T00:00:00Z,M1,1\n"
        "2.5,2025-06-01T00:15:00Z,M1,1.25\n",
        encoding="utf-8",
    )
    staged, rows = _staged(engine, path)
    assert staged.way == "line pattern"
    assert (rows, staged.problems) == _python(path)
    assert rows[1][2:] == (1.25, 2.5)


@pytest.mark.parametrize("day", ["2025-02-29", "2024-02-30", "2025-04-31"])
def test_a_day_the_month_does_not_have_is_checked_again(engine, tmp_path, day):
    """The pattern takes it, PostgreSQL refuses it: the file goes again, days checked."""
    path = tmp_path / "readings.csv"
    lines = [f"M{i},2025-06-01T00:00:00Z,1,2" for i in range(50)]
    lines[20] = f"M20,{day}T00:00:00Z,1,2"
    path.write_text("meter_id,timestamp,import_kwh,export_kwh\n" + "\n".join(lines) + "\n")
    staged, rows = _staged(engine, path)
    assert staged.way == "line pattern and days, row rules for 1 of 1 blocks"
    assert (rows, staged.problems) == _python(path)
    assert [p.line for p, _ in staged.problems] == [22]
    assert len(rows) == 49


def test_a_record_over_several_lines_hands_the_rest_to_the_rules(engine, tmp_path, monkeypatch):
    monkeypatch.setattr(csv_stage, "BLOCK", 64)
    path = tmp_path / "readings.csv"
    path.write_text(
        "meter_id,timestamp,import_kwh,export_kwh\n"
        + "".join(f"M1,2025-06-01T00:{m:02d}:00Z,1,2\n" for m in range(0, 60, 15))
        + 'M2,2025-06-01T00:00:00Z,"1\n",2\nM3,"2025-06-01T00:00:00Z\n",1,2\n'
        + "M4,2025-06-01T00:00:00Z,x,2\nM5,2025-06-01T00:00:00Z,1,2\n"
    )
    staged, rows = _staged(engine, path)
    assert "row rules from line" in staged.way
    assert (rows, staged.problems) == _python(path)
    assert [p.line for p, _ in staged.problems] == [10]


def test_a_header_with_more_columns_goes_by_the_rules(engine, tmp_path):
    path = tmp_path / "readings.csv"
    path.write_text(
        "meter_id,timestamp,import_kwh,export_kwh,note\n"
        "M1,2025-06-01T00:00:00Z,1,2,a\nM1,2025-06-01T00:15:00Z,-1,2,b\n"
    )
    staged, rows = _staged(engine, path)
    assert staged.way == "row rules"
    assert (rows, staged.problems) == _python(path)
    assert len(rows) == 1 and staged.problems[0][0].line == 3


def test_bad_utf8_in_a_later_block_refuses_the_file(engine, tmp_path, monkeypatch):
    monkeypatch.setattr(csv_stage, "BLOCK", 64)
    path = tmp_path / "readings.csv"
    path.write_bytes(
        b"meter_id,timestamp,import_kwh,export_kwh\n"
        + b"M1,2025-06-01T00:00:00Z,1,2\n" * 10
        + b"Z\xe4hler,2025-06-01T00:00:00Z,1,2\n"
    )
    with pytest.raises(InputFileError, match=r"line 12: not UTF-8 \(byte 0xe4"):
        with engine.begin() as conn:
            stage_readings_csv(conn, path)
