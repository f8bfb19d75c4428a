"""CSV export: parsed back by the csv module and pandas, values equal the batch's."""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from tests import oracle
from tests.exports import batches as b
from vbatt.exports.formats import csv as csv_format
from vbatt.exports.numbers import fixed

TOL = 5e-7 + 1e-12  # 6 decimals written


def render(batch, **options):
    files = csv_format.render(batch, options, b.CONTEXT)
    return {f.name.rsplit("_", 1)[1].removesuffix(".csv"): f for f in files}


def rows_of(file, dialect="default"):
    text = file.content.decode("utf-8-sig" if dialect == "dach" else "utf-8")
    return list(
        csv.DictReader(
            io.StringIO(text, newline=""), delimiter="," if dialect == "default" else ";"
        )
    )


def num(text: str, dialect: str = "default") -> float:
    return float(text.replace(",", ".")) if dialect == "dach" else float(text)


ENERGIES = {
    "import_kwh": "import_kwh",
    "export_kwh": "export_kwh",
    "charge_kwh": "charge",
    "discharge_kwh": "discharge",
    "overflow_kwh": "overflow",
    "shortfall_kwh": "shortfall",
    "forfeited_kwh": "forfeited",
    "level_kwh": "level",
}


def test_default_dialect_round_trips_a_96_interval_day_through_csv_and_pandas():
    batch = b.batch(b.day_period(b.SUMMER_DAY))
    files = render(batch)
    assert set(files) == {"intervals", "days"}
    intervals = files["intervals"]
    assert intervals.name == "ewb_2025-06-01_intervals.csv"
    assert intervals.content.startswith(b"battery_id,metering_point,interval_start,interval_end,")
    assert b"\r\n" in intervals.content and intervals.content.count(
        b"\n"
    ) == intervals.content.count(b"\r\n")
    rows = rows_of(intervals)
    assert len(rows) == intervals.rows == 2 * 96
    expected = [(bat, r) for bat in batch.batteries for r in bat.intervals]
    for row, (bat, r) in zip(rows, expected, strict=True):
        assert row["battery_id"] == bat.battery_id and row["metering_point"] == bat.metering_point
        assert datetime.fromisoformat(row["interval_start"]) == r.start
        assert (
            row["interval_start"].endswith("Z")
            and datetime.fromisoformat(row["interval_end"]) == r.end
        )
        for column, attr in ENERGIES.items():
            assert abs(float(row[column]) - getattr(r, attr)) <= TOL, (column, row)
        assert row["estimated"] == ("1" if r.estimated else "0")

    frame = pd.read_csv(io.BytesIO(intervals.content), dtype={"metering_point": str})
    assert len(frame) == 192 and frame["charge_kwh"].dtype == float
    starts = pd.to_datetime(frame["interval_start"], utc=True)
    assert list(starts) == [r.start for _, r in expected]
    assert math.isclose(
        frame["shortfall_kwh"].sum(), sum(r.shortfall for _, r in expected), abs_tol=192 * TOL
    )
    assert frame["estimated"].sum() == sum(r.estimated for _, r in expected) > 0
    assert intervals.values["charge"] == pytest.approx(frame["charge_kwh"].sum(), abs=1e-9)


@pytest.mark.parametrize(("day", "quarters"), [(b.SPRING_DAY, 92), (b.AUTUMN_DAY, 100)])
def test_dach_dialect_writes_local_time_and_marks_the_repeated_autumn_hour(day, quarters):
    batch = b.batch(b.day_period(day))
    files = render(batch, dialect="dach")
    content = files["intervals"].content
    assert content.startswith(
        b"\xef\xbb\xbfbattery_id;metering_point;date;time_from;time_to;utc_offset;"
    )
    rows = rows_of(files["intervals"], "dach")
    assert len(rows) == 2 * quarters
    keys = [(r["battery_id"], r["date"], r["time_from"], r["utc_offset"]) for r in rows]
    assert len(set(keys)) == len(keys), (
        "every quarter hour is its own row, also in the repeated hour"
    )
    first = [r for r in rows if r["battery_id"] == "B1"]
    hours = Counter(r["time_from"][:2] for r in first)
    zurich = ZoneInfo(b.ZURICH)
    if quarters == 100:
        assert hours["02"] == 8
        assert [r["utc_offset"] for r in first if r["time_from"].startswith("02")] == [
            "+02:00"
        ] * 4 + ["+01:00"] * 4
    else:
        assert "02" not in hours
    for row, r in zip(first, batch.batteries[0].intervals, strict=True):
        local = r.start.astimezone(zurich)
        assert row["date"] == local.strftime("%d.%m.%Y") == day.strftime("%d.%m.%Y")
        assert row["time_from"] == local.strftime("%H:%M")
        assert row["time_to"] == r.end.astimezone(zurich).strftime("%H:%M")
        # the local time and its offset give back the UTC instant exactly
        parsed = datetime.strptime(
            f"{row['date']} {row['time_from']} {row['utc_offset']}", "%d.%m.%Y %H:%M %z"
        )
        assert parsed.astimezone(UTC) == r.start
        assert "." not in row["charge_kwh"]
        for column, attr in ENERGIES.items():
            assert abs(num(row[column], "dach") - getattr(r, attr)) <= TOL


def test_days_file_sums_the_intervals_over_a_month_with_the_autumn_day():
    period = b.month_period(2025, 10)
    batch = b.batch(period)
    for dialect in ("default", "dach"):
        files = render(batch, dialect=dialect)
        days = rows_of(files["days"], dialect)
        intervals = rows_of(files["intervals"], dialect)
        assert len(days) == 2 * 31 == files["days"].rows
        assert len(intervals) == 2 * (31 * 96 + 4)
        for day in days:
            key = day["local_date"]
            if dialect == "default":
                mine = [
                    r
                    for r in intervals
                    if r["battery_id"] == day["battery_id"] and _local_date(r) == key
                ]
            else:
                mine = [
                    r
                    for r in intervals
                    if r["battery_id"] == day["battery_id"] and r["date"] == key
                ]
            assert int(day["intervals"]) == len(mine) == int(day["expected_intervals"])
            assert int(day["expected_intervals"]) == (
                100 if key in ("2025-10-26", "26.10.2025") else 96
            )
            assert int(day["estimated_intervals"]) == sum(r["estimated"] == "1" for r in mine)
            for column in ENERGIES:
                if column == "level_kwh":
                    continue
                total = math.fsum(num(r[column], dialect) for r in mine)
                assert abs(num(day[column], dialect) - total) <= TOL * (len(mine) + 1), (
                    column,
                    key,
                )
            levels = [num(r["level_kwh"], dialect) for r in mine]
            assert num(day["level_end_kwh"], dialect) == levels[-1]
            assert num(day["level_min_kwh"], dialect) == min(levels)
            assert num(day["level_max_kwh"], dialect) == max(levels)


def _local_date(row) -> str:
    start = datetime.fromisoformat(row["interval_start"]).astimezone(ZoneInfo(b.ZURICH))
    return start.date().isoformat()


def test_days_equal_the_oracles_daily_view():
    """An independent derivation of the daily view: the rule book's, in tests/oracle.py."""
    period = b.month_period(2025, 3)
    export, spec, rows = b.battery(1, period)
    inside = [r for r in rows if period.start_utc <= r.interval_start < period.end_utc]
    expected = oracle.daily(spec, inside)
    batch = b.batch(period, count=1)
    days = rows_of(render(batch)["days"])
    assert [d["local_date"] for d in days] == [e.local_date.isoformat() for e in expected]
    for day, e in zip(days, expected, strict=True):
        for column, attr in (
            ("charge_kwh", "charge"),
            ("discharge_kwh", "discharge"),
            ("overflow_kwh", "overflow"),
        ):
            assert abs(float(day[column]) - getattr(e, attr)) <= TOL
        assert abs(float(day["shortfall_kwh"]) - e.shortfall) <= TOL
        assert abs(float(day["level_end_kwh"]) - e.level_end) <= TOL
        assert (int(day["intervals"]), int(day["estimated_intervals"])) == (
            e.intervals,
            e.estimated_intervals,
        )
    assert {int(d["intervals"]) for d in days} == {92, 96}


def test_same_batch_twice_gives_identical_bytes():
    batch = b.batch(b.day_period(b.AUTUMN_DAY))
    for dialect in ("default", "dach"):
        first = csv_format.render(batch, {"dialect": dialect}, b.CONTEXT)
        again = csv_format.render(
            b.batch(b.day_period(b.AUTUMN_DAY)), {"dialect": dialect}, b.CONTEXT
        )
        assert [(f.name, f.content) for f in first] == [(f.name, f.content) for f in again]


def test_files_option_and_bad_options_are_refused_clearly():
    batch = b.batch(b.day_period(b.SUMMER_DAY), count=1)
    assert [f.name for f in csv_format.render(batch, {"files": ["days"]}, b.CONTEXT)] == [
        "ewb_2025-06-01_days.csv"
    ]
    with pytest.raises(ValueError, match="unknown CSV dialect 'excel'"):
        csv_format.render(batch, {"dialect": "excel"}, b.CONTEXT)
    with pytest.raises(ValueError, match="subset of"):
        csv_format.render(batch, {"files": ["weeks"]}, b.CONTEXT)
    from dataclasses import replace

    with pytest.raises(ValueError, match="cannot be part of a file name"):
        csv_format.render(replace(batch, partner_id="../etc"), {}, b.CONTEXT)


@pytest.mark.parametrize(
    ("value", "decimals", "trim", "text"),
    [
        (-0.0, 6, True, "0"),
        (-1e-9, 6, True, "0"),
        (-1e-9, 3, False, "0.000"),
        (1e-7, 6, True, "0"),
        (1e-6, 6, True, "0.000001"),
        (2.5e-5, 6, True, "0.000025"),
        (12345678.9, 6, True, "12345678.9"),
        (1e16, 3, False, "10000000000000000.000"),
        (-1.25, 6, True, "-1.25"),
        (2.0, 6, True, "2"),
        (0.1 + 0.2, 6, True, "0.3"),
    ],
)
def test_fixed_numbers_have_no_exponent_and_no_negative_zero(value, decimals, trim, text):
    assert fixed(value, decimals, trim=trim) == text
    assert fixed(value, decimals, trim=trim, decimal_point=",") == text.replace(".", ",")


def test_fixed_refuses_what_is_not_a_number():
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match="finite"):
            fixed(bad, 3)


@pytest.mark.parametrize("separator", [",", ";", "|", "\t"])
def test_fast_writer_writes_exactly_what_the_csv_module_writes(separator):
    from vbatt.exports import delimited

    rows = [
        ["B1", "1.5", "2025-06-01T00:00:00Z"],
        ["Müller, Hans", 'say "hi"', "two\nlines"],
        ["", "", ""],
        [""],
        ["only"],
        ["a;b", "c,d", "e|f\tg"],
        ["cr\rhere", "x", "-0,5"],
    ]
    for ending in ("\r\n", "\n"):
        expected = io.StringIO(newline="")
        csv.writer(expected, delimiter=separator, lineterminator=ending).writerows(rows)
        assert delimited.write(rows, separator=separator, line_ending=ending) == expected.getvalue()
