"""The gates' records as the daily summary and ``make demo`` show them."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tests.quality.conftest import battery_row, clean_readings
from tests.quality.test_expectations import near
from vbatt.quality.report import failures_on, overview


def test_warnings_of_the_day_and_overview(pipeline, gate):
    pipeline.batteries([battery_row()])
    pipeline.load(clean_readings() + [near("2025-06-02T01:00:00+00:00", meter="ORPHAN")])
    result = gate.run("after_ingest")
    assert result.outcome == "warned"

    today = datetime.now(ZoneInfo("Europe/Zurich")).date()
    [failure] = failures_on(pipeline.url, today, raw_schema=pipeline.raw)
    assert (failure["checkpoint"], failure["expectation"], failure["level"]) == (
        "after_ingest",
        "meter_has_battery",
        "warn",
    )
    assert (failure["runs"], failure["rows"]) == (1, 1)
    assert failures_on(pipeline.url, today - timedelta(days=1), raw_schema=pipeline.raw) == []

    shown = overview(pipeline.url, raw_schema=pipeline.raw)
    assert "quality after_ingest: warned" in shown and "meter_has_battery" in shown
    assert "Data docs (HTML validation reports):" in shown


def test_overview_before_any_run(pipeline):
    assert overview(pipeline.url, raw_schema=pipeline.raw) == "no quality checkpoint has run yet"
