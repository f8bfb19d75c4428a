"""IS-E export: each file matches its template, values parse back, bad templates are refused."""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from tests.exports import batches as b
from vbatt.exports.channels import channels_for
from vbatt.exports.formats import ise, ise_template

DATETIME_FIELDS = ("reading_at", "reading_from", "interval_start", "interval_end")


def check_against_template(content: bytes, template: ise_template.Template) -> list[dict[str, str]]:
    """An independent reading of a file by its template: every cell has the declared form.

    Returns the rows as dicts keyed by field name (with values as text).
    """
    if template.bom:
        assert content.startswith(b"\xef\xbb\xbf")
        content = content[3:]
    text = content.decode(template.encoding)
    ending = template.line_ending
    assert text.endswith(ending) and text.count("\n") == text.count(ending[-1])
    if ending == "\r\n":
        assert text.count("\r\n") == text.count("\n")
    else:
        assert "\r" not in text
    lines = list(csv.reader(io.StringIO(text, newline=""), delimiter=template.separator))
    if template.header:
        assert lines[0] == [c.header for c in template.columns]
        lines = lines[1:]
    point = re.escape(template.decimal_point)
    records = []
    for line in lines:
        assert len(line) == len(template.columns), line
        record = {}
        for column, cell in zip(template.columns, line, strict=True):
            if column.field == "value":
                decimals = template.decimals if column.decimals is None else column.decimals
                pattern = rf"-?\d+{point}\d{{{decimals}}}" if decimals else r"-?\d+"
                assert re.fullmatch(pattern, cell), (column, cell)
                assert not re.fullmatch(r"-0+(\D0+)?", cell), "no negative zero"
            elif column.field in DATETIME_FIELDS:
                datetime.strptime(cell, column.format or template.datetime_format)
            elif column.field in ("period_from", "period_to"):
                datetime.strptime(cell, column.format or template.date_format)
            elif column.field == "utc_offset":
                assert re.fullmatch(r"[+-]\d{2}:\d{2}", cell)
            elif column.field == "status":
                assert cell in (template.status_measured, template.status_estimated)
            elif column.field == "literal":
                assert cell == column.value
            elif column.field == "empty":
                assert cell == ""
            record[column.field if column.field != "utc_offset" else f"offset_{column.of}"] = cell
        records.append(record)
    return records


def render_one(batch, template_ref, **options):
    files = ise.render(batch, {"template": template_ref, **options}, b.CONTEXT)
    assert len(files) == 1
    return files[0]


def value(text: str, template) -> float:
    return (
        float(text.replace(template.decimal_point, "."))
        if template.decimal_point != "."
        else float(text)
    )


def test_default_renders_three_files_named_after_partner_period_and_variant():
    batch = b.batch(b.day_period(b.SUMMER_DAY))
    files = ise.render(batch, {}, b.CONTEXT)
    assert [f.name for f in files] == [
        "ewb_2025-06-01_ise_readings.csv",
        "ewb_2025-06-01_ise_vorschub.csv",
        "ewb_2025-06-01_ise_timeseries.csv",
    ]
    assert [f.rows for f in files] == [8, 8, 2 * 4 * 96]


def test_readings_are_the_registers_at_the_period_end():
    batch = b.batch(b.day_period(b.SUMMER_DAY))
    template = ise_template.load("readings")
    file = render_one(batch, "readings")
    records = check_against_template(file.content, template)
    codes = {
        "1-1:1.8.0": "charged_total",
        "1-1:2.8.0": "discharged_total",
        "1-5:1.8.0": "shortfall_total",
    }
    codes["1-5:2.8.0"] = "overflow_total"
    assert [r["obis"] for r in records] == list(codes) * 2
    for record in records:
        battery = next(x for x in batch.batteries if x.metering_point == record["metering_point"])
        register = getattr(battery.registers_end, codes[record["obis"]])
        assert abs(value(record["value"], template) - register) <= 5e-4 + 1e-12
        assert record["reading_at"] == "02.06.2025 00:00"  # the instant after the day, local time
        assert record["unit"] == "kWh"
        assert record["status"] == ("E" if any(i.estimated for i in battery.intervals) else "W")


def test_vorschub_is_the_register_advance_and_equals_the_interval_sums_over_a_month():
    batch = b.batch(b.month_period(2025, 10))
    template = ise_template.load("vorschub")
    records = check_against_template(render_one(batch, "vorschub").content, template)
    channels = {
        "1-1:1.9.0": "charge",
        "1-1:2.9.0": "discharge",
        "1-5:1.9.0": "shortfall",
        "1-5:2.9.0": "overflow",
    }
    assert sorted({r["obis"] for r in records}) == sorted(channels)
    for record in records:
        battery = next(x for x in batch.batteries if x.metering_point == record["metering_point"])
        channel = channels[record["obis"]]
        total = math.fsum(getattr(i, channel) for i in battery.intervals)
        assert abs(value(record["value"], template) - total) <= 5e-4 + 1e-9
        assert (record["reading_from"], record["reading_at"]) == (
            "01.10.2025 00:00",
            "01.11.2025 00:00",
        )


@pytest.mark.parametrize(
    ("day", "quarters"), [(b.SUMMER_DAY, 96), (b.SPRING_DAY, 92), (b.AUTUMN_DAY, 100)]
)
def test_timeseries_has_every_quarter_hour_once_with_its_offset(day, quarters):
    batch = b.batch(b.day_period(day))
    template = ise_template.load("timeseries")
    file = render_one(batch, "timeseries")
    records = check_against_template(file.content, template)
    assert len(records) == file.rows == 2 * 4 * quarters
    obis = {
        "charge": "1-1:1.29.0",
        "discharge": "1-1:2.29.0",
        "overflow": "1-5:2.29.0",
        "shortfall": "1-5:1.29.0",
    }
    position = 0
    for battery in batch.batteries:
        for channel, code in obis.items():
            mine = records[position : position + quarters]
            position += quarters
            assert {r["obis"] for r in mine} == {code}
            stamps = [(r["interval_end"], r["offset_interval_end"]) for r in mine]
            assert len(set(stamps)) == quarters, (
                "the repeated autumn hour is told apart by its offset"
            )
            for record, interval in zip(mine, battery.intervals, strict=True):
                parsed = datetime.strptime(
                    f"{record['interval_end']} {record['offset_interval_end']}", "%d.%m.%Y %H:%M %z"
                )
                assert parsed.astimezone(UTC) == interval.end
                assert (
                    abs(value(record["value"], template) - getattr(interval, channel))
                    <= 5e-4 + 1e-12
                )
                assert record["status"] == ("E" if interval.estimated else "W")
    assert file.values["charge"] == pytest.approx(
        sum(round(i.charge, 3) for x in batch.batteries for i in x.intervals), abs=1e-9
    )


CUSTOM = """
name: stadtwerk
variant: timeseries
encoding: iso-8859-1
separator: "|"
decimal_point: ","
decimals: 4
header: false
line_ending: lf
timezone: utc
datetime_format: "%Y-%m-%dT%H:%M:%SZ"
status_codes: {measured: "220", estimated: "67"}
file_name: "{partner}-{period}-zr.txt"
rows:
  - {channel: shortfall, obis: "1-5:1.29.1"}
  - {channel: level}
columns:
  - field: literal
    value: VB
  - battery_name
  - {field: obis}
  - {field: interval_start}
  - {field: value, decimals: 2}
  - {field: status}
  - {field: empty}
"""


def test_a_partners_own_template_file_is_used_without_code_changes(tmp_path):
    path = tmp_path / "partner" / "zr.yaml"
    path.parent.mkdir()
    path.write_text(CUSTOM, encoding="utf-8")
    batch = b.batch(b.day_period(b.AUTUMN_DAY), count=1)
    by_path = render_one(batch, str(path))
    relative = render_one(batch, "zr.yaml", base_dir=str(tmp_path / "partner"))
    assert by_path.content == relative.content
    assert by_path.name == "ewb-2025-10-26-zr.txt"
    template = ise_template.load(path)
    records = check_against_template(by_path.content, template)
    assert b"Batterie 1 M\xfcller" in by_path.content, "written in ISO 8859-1"
    assert by_path.content.count(b"\n") == 200 and b"\r" not in by_path.content
    interval_rows = batch.batteries[0].intervals
    shortfall, level = records[:100], records[100:]
    assert {r["obis"] for r in shortfall} == {"1-5:1.29.1"} and {r["obis"] for r in level} == {
        "1-1:128.8.0"
    }
    for record, interval in zip(level, interval_rows, strict=True):
        assert record["interval_start"] == interval.start.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert re.fullmatch(r"\d+,\d{2}", record["value"])
        assert abs(float(record["value"].replace(",", ".")) - interval.level) <= 0.005 + 1e-12
        assert record["status"] == ("67" if interval.estimated else "220")


def test_only_the_partners_channels_are_written():
    batch = replace(
        b.batch(b.day_period(b.SUMMER_DAY)),
        channels=channels_for({"shortfall": "1-5:1.29.7"}, ["shortfall", "shortfall_total"]),
    )
    files = {f.name.split("_ise_")[1]: f for f in ise.render(batch, {}, b.CONTEXT)}
    assert files["readings.csv"].rows == 2 and files["vorschub.csv"].rows == 2
    assert (
        b"1-5:1.29.7" in files["timeseries.csv"].content and files["timeseries.csv"].rows == 2 * 96
    )
    assert set(files["timeseries.csv"].values) == {"shortfall"}


def test_same_batch_twice_gives_identical_bytes():
    first = ise.render(b.batch(b.day_period(b.AUTUMN_DAY)), {}, b.CONTEXT)
    again = ise.render(b.batch(b.day_period(b.AUTUMN_DAY)), {}, b.CONTEXT)
    assert [(f.name, f.content) for f in first] == [(f.name, f.content) for f in again]


def bad(text: str) -> str:
    with pytest.raises(ise_template.TemplateError) as caught:
        ise_template.parse(text, "test.yaml")
    return str(caught.value)


def good_readings(**changes) -> str:
    import yaml

    data = yaml.safe_load(_READINGS)
    data.update(changes)
    return yaml.safe_dump(data)


_READINGS = (
    ise_template.resources.files("vbatt.exports") / "templates/ise/readings.yaml"
).read_text("utf-8")


def test_bad_templates_are_refused_with_messages_that_say_what_to_do():
    assert "columns[1]: unknown field 'zaehlerstand'" in bad(
        good_readings(columns=[{"field": "obis"}, {"field": "zaehlerstand"}, {"field": "value"}])
    )
    assert "known: battery_id, battery_name" in bad(
        good_readings(columns=[{"field": "zaehlerstand"}])
    )
    assert "separator: ';;' must be one character" in bad(good_readings(separator=";;"))
    assert "separator: '' must be one character" in bad(good_readings(separator=""))
    assert "decimal_point and separator are both ','" in bad(
        good_readings(separator=",", decimal_point=",")
    )
    assert "decimal_point: ';' must be '.' or ','" in bad(good_readings(decimal_point=";"))
    assert "unknown setting(s) ['seperator']" in bad(good_readings(seperator=","))
    assert "no column shows the value" in bad(good_readings(columns=[{"field": "obis"}]))
    assert "variant: 'zaehlerstaende' is not one of" in bad(good_readings(variant="zaehlerstaende"))
    assert "encoding: 'latin-9x'" in bad(good_readings(encoding="latin-9x"))
    assert "unknown placeholder(s) ['date']" in bad(good_readings(file_name="{partner}_{date}.csv"))
    assert "no folders" in bad(good_readings(file_name="../{partner}.csv"))
    assert "channel 'charge' has no readings value" in bad(
        good_readings(rows=[{"channel": "charge"}])
    )
    assert "decimals: 12 must be 0..9" in bad(good_readings(decimals=12))
    assert "header: expected true or false" in bad(good_readings(header="yes please"))
    assert "utc_offset needs of" in bad(
        good_readings(columns=[{"field": "value"}, {"field": "utc_offset"}])
    )
    assert "not valid YAML" in bad("name: [unclosed")
    assert "a byte order mark is written for utf-8 only" in bad(
        good_readings(bom=True, encoding="cp1252")
    )
    several = bad(good_readings(separator=";;", columns=[{"field": "nope"}]))
    assert "separator" in several and "unknown field 'nope'" in several, (
        "all problems in one message"
    )


def test_local_time_series_without_offset_is_refused_as_ambiguous():
    timeseries = (
        ise_template.resources.files("vbatt.exports") / "templates/ise/timeseries.yaml"
    ).read_text("utf-8")
    without_offset = "\n".join(line for line in timeseries.splitlines() if "utc_offset" not in line)
    assert "ambiguous in the repeated autumn hour" in bad(without_offset)
    with_z = without_offset.replace(
        'datetime_format: "%d.%m.%Y %H:%M"', 'datetime_format: "%d.%m.%Y %H:%M%z"'
    )
    assert ise_template.parse(with_z, "ok.yaml").variant == "timeseries"


def test_unknown_templates_and_unwritable_text_are_refused_clearly(tmp_path):
    batch = b.batch(b.day_period(b.SUMMER_DAY), count=1)
    with pytest.raises(
        ise_template.TemplateError,
        match="unknown IS-E template 'zaehler'.*readings, timeseries, vorschub",
    ):
        ise.render(batch, {"template": "zaehler"}, b.CONTEXT)
    with pytest.raises(ise_template.TemplateError, match="does not exist"):
        ise.render(batch, {"template": str(tmp_path / "missing.yaml")}, b.CONTEXT)
    ascii_names = tmp_path / "ascii.yaml"
    ascii_names.write_text(
        good_readings(
            encoding="ascii",
            columns=[{"field": "battery_name"}, {"field": "obis"}, {"field": "value"}],
        )
    )
    with pytest.raises(ValueError, match="'ü' cannot be written in ascii"):
        ise.render(batch, {"template": str(ascii_names)}, b.CONTEXT)
    with pytest.raises(ValueError, match="either 'template' or 'templates'"):
        ise.render(batch, {"template": "readings", "templates": ["vorschub"]}, b.CONTEXT)


@pytest.mark.parametrize(
    ("register", "advance"),
    [
        ("1-1:1.8.0", "1-1:1.9.0"),
        ("1-5:1.8.3", "1-5:1.9.3"),
        ("1-1:2.8.1*255", "1-1:2.9.1*255"),
        ("1-1:128.8.0", "1-1:128.9.0"),
    ],
)
def test_vorschub_codes_turn_d_8_into_9(register, advance):
    assert ise.advance_code(register) == advance


def test_a_profile_code_has_no_vorschub_code():
    with pytest.raises(ValueError, match="give the code as obis in the template's row"):
        ise.advance_code("1-1:1.29.0")
