"""Bad battery configurations (foundation issue, item 7) are refused at load time,
naming the battery and the field, by every path into raw.batteries; nothing is stored."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text

from tests.quality.conftest import battery_row
from vbatt.battery_config import BatteryConfigError, check_batteries
from vbatt.ingest.csv_inputs import InputFileError, read_batteries_csv
from vbatt.warehouse.loader import BATTERY_COLUMNS, upsert_batteries

BAD = {
    "negative capacity": ({"capacity_kwh": -5.0}, "capacity_kwh", "-5 is negative"),
    "negative initial level": ({"initial_level_kwh": -1.0}, "initial_level_kwh", "negative"),
    "initial level above capacity": (
        {"capacity_kwh": 5.0, "initial_level_kwh": 7.0},
        "initial_level_kwh",
        "7.0 exceeds the capacity 5.0",
    ),
    "end before start": (
        {"end_date": date(2025, 5, 1)},
        "end_date",
        "2025-05-01 is not after start_date 2025-06-01",
    ),
    "end on start": ({"end_date": date(2025, 6, 1)}, "end_date", "is not after start_date"),
    "unknown timezone": ({"timezone": "Mars/Olympus"}, "timezone", "not an IANA time zone"),
    "unknown reset repeat": ({"reset_repeat": "monthly"}, "reset_repeat", "use yearly or none"),
    "no meter": ({"meter_id": ""}, "meter_id", "is required"),
    "no start": ({"start_date": None}, "start_date", "is required"),
    "capacity not a number": ({"capacity_kwh": float("nan")}, "capacity_kwh", "not a finite"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_refused_with_battery_and_field(case):
    changes, field, message = BAD[case]
    with pytest.raises(BatteryConfigError) as refused:
        check_batteries([battery_row(), battery_row(battery_id="BAD-1", **changes)])
    [problem] = refused.value.problems
    assert (problem.battery_id, problem.field) == ("BAD-1", field)
    assert message in problem.message
    assert f"battery 'BAD-1', {field}: " in str(refused.value)


def test_good_configurations_pass():
    rows = [battery_row(), battery_row(battery_id="B2", capacity_kwh=0.0, initial_level_kwh=9.0)]
    assert check_batteries(rows) == rows


def test_duplicate_and_unknown_meter():
    with pytest.raises(BatteryConfigError) as refused:
        check_batteries([battery_row(), battery_row()], known_meters={"other"})
    shown = str(refused.value)
    assert "battery 'QB-1', battery_id: appears twice" in shown
    assert "battery 'QB-1', meter_id: 'QM-1' has no readings" in shown


def test_upsert_refuses_the_lot_and_stores_nothing(pipeline):
    good = battery_row(battery_id="GOOD")
    with pytest.raises(BatteryConfigError, match="battery 'BAD-1', timezone"):
        pipeline.batteries([good, battery_row(battery_id="BAD-1", timezone="Mars/Olympus")])
    with pipeline.engine.connect() as conn:
        assert conn.execute(text(f"select count(*) from {pipeline.raw}.batteries")).scalar() == 0
    upsert_batteries(pipeline.engine, [good], raw_schema=pipeline.raw)
    with pipeline.engine.connect() as conn:
        assert conn.execute(text(f"select count(*) from {pipeline.raw}.batteries")).scalar() == 1


def test_csv_names_file_line_column_and_battery(tmp_path):
    path = tmp_path / "batteries.csv"
    rows = [
        ",".join(BATTERY_COLUMNS),
        "B1,Meier,P,C,M1,5,2025-06-01,,,,Europe/Zurich,7",
        "B2,Keller,P,C,M1,-1,2025-06-01,,,,Mars/Olympus,",
    ]
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(InputFileError) as refused:
        read_batteries_csv(path)
    shown = str(refused.value)
    assert (
        "batteries.csv:2, column initial_level_kwh: 7.0 exceeds the capacity 5.0 (battery 'B1')"
        in shown
    )
    assert "batteries.csv:3, column capacity_kwh: -1 is negative (battery 'B2')" in shown
    assert (
        "batteries.csv:3, column timezone: 'Mars/Olympus' is not an IANA time zone (battery 'B2')"
        in shown
    )


def test_missing_capacity_is_refused_and_defaults_are_filled_in(pipeline):
    """0 would mean unlimited: a missing capacity is an error, not a default; timezone and
    reset_repeat left out get raw.batteries' defaults instead of a constraint error."""
    row = battery_row(battery_id="NOCAP")
    del row["capacity_kwh"]
    with pytest.raises(BatteryConfigError, match="battery 'NOCAP', capacity_kwh"):
        pipeline.batteries([row])
    pipeline.batteries([battery_row(battery_id="DEFAULTS", timezone=None, reset_repeat=None)])
    with pipeline.engine.connect() as conn:
        stored = conn.execute(
            text(f"select timezone, reset_repeat from {pipeline.raw}.batteries")
        ).one()
    assert tuple(stored) == ("Europe/Zurich", "yearly")
