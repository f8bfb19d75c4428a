"""Local days of a battery, summed from the intervals of an export batch.

The warehouse has the same figures in ``battery_daily``; deriving them here from the
batch keeps every file of a period consistent with its own interval rows (the days file
is exactly the sum of the intervals file), and the integration test compares the two
derivations. A day is a local date of the battery's timezone: 92, 96 or 100 quarter hours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from vbatt.exports.localtime import quarter_hours_in_day, to_local
from vbatt.exports.model import BatteryExport, IntervalRow

SUMMED = ("import_kwh", "export_kwh", "charge", "discharge", "overflow", "shortfall", "forfeited")


@dataclass(frozen=True)
class DayRow:
    battery_id: str
    metering_point: str
    local_date: date
    import_kwh: float
    export_kwh: float
    charge: float
    discharge: float
    overflow: float
    shortfall: float
    forfeited: float
    level_end: float  # level at the end of the day's last interval
    level_min: float
    level_max: float
    intervals: int
    estimated_intervals: int
    expected_intervals: int  # quarter hours of the local day: 92, 96 or 100


def day_rows(battery: BatteryExport) -> list[DayRow]:
    """One row per local day that has at least one interval, in date order."""
    by_day: dict[date, list[IntervalRow]] = {}
    for row in battery.intervals:
        by_day.setdefault(to_local(row.start, battery.timezone).date(), []).append(row)
    days = []
    for day in sorted(by_day):
        rows = sorted(by_day[day], key=lambda r: r.start)
        sums = {name: math.fsum(getattr(r, name) for r in rows) for name in SUMMED}
        levels = [r.level for r in rows]
        days.append(
            DayRow(
                battery_id=battery.battery_id,
                metering_point=battery.metering_point,
                local_date=day,
                **sums,
                level_end=rows[-1].level,
                level_min=min(levels),
                level_max=max(levels),
                intervals=len(rows),
                estimated_intervals=sum(1 for r in rows if r.estimated),
                expected_intervals=quarter_hours_in_day(day, battery.timezone),
            )
        )
    return days
