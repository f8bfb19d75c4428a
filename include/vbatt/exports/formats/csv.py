"""CSV: the battery's quarter hours and local days, for spreadsheets and scripts.

Two dialects (docs/formats/csv.md):

- ``default``: ``,`` separator, ``.`` decimal point, UTC timestamps in ISO 8601 with ``Z``;
  UTF-8 without BOM. For programs: unambiguous and locale-free.
- ``dach``: ``;`` separator, decimal comma, local time of the battery's timezone as date,
  time from, time to and the UTC offset of the interval start (the repeated autumn hour
  appears twice, once ``+02:00`` and once ``+01:00``); UTF-8 with BOM, so Excel in a
  German or Swiss locale opens it with the right characters and columns.

Both end lines with CRLF (RFC 4180) and write at most 6 decimals (option ``decimals``, 0..6,
e.g. 3 as MSCONS), trailing zeros dropped, never an exponent nor "-0", rounded by the one
rule of all formats (``numbers.fixed``). Column names are the same in both dialects, so a program
reading one reads the other once it knows the separators.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from vbatt.exports import delimited
from vbatt.exports.days import DayRow, day_rows
from vbatt.exports.localtime import offset_text, to_local, utc_text
from vbatt.exports.model import ExportBatch, ExportFile, IntervalRow, RenderContext
from vbatt.exports.naming import safe_part
from vbatt.exports.numbers import fixed

DECIMALS = 6
DIALECTS = ("default", "dach")
FILES = ("intervals", "days")

ENERGY_COLUMNS = (
    ("import_kwh", "import_kwh"),
    ("export_kwh", "export_kwh"),
    ("charge_kwh", "charge"),
    ("discharge_kwh", "discharge"),
    ("overflow_kwh", "overflow"),
    ("shortfall_kwh", "shortfall"),
    ("forfeited_kwh", "forfeited"),
)
CHANNEL_SUMS = ("charge", "discharge", "overflow", "shortfall")


def interval_header(dialect: str) -> list[str]:
    times = (
        ["interval_start", "interval_end"]
        if dialect == "default"
        else ["date", "time_from", "time_to", "utc_offset"]
    )
    energies = [column for column, _ in ENERGY_COLUMNS]
    return ["battery_id", "metering_point", *times, *energies, "level_kwh", "estimated"]


DAY_HEADER = [
    "battery_id",
    "metering_point",
    "local_date",
    *(column for column, _ in ENERGY_COLUMNS),
    "level_end_kwh",
    "level_min_kwh",
    "level_max_kwh",
    "intervals",
    "estimated_intervals",
    "expected_intervals",
]


def render(batch: ExportBatch, options: dict[str, Any], ctx: RenderContext) -> list[ExportFile]:
    """The intervals file and the days file of the batch (``options["files"]`` picks)."""
    del ctx  # CSV carries no document reference: the same rows give the same bytes
    dialect = options.get("dialect", "default")
    if dialect not in DIALECTS:
        raise ValueError(f"unknown CSV dialect {dialect!r}; use one of {', '.join(DIALECTS)}")
    decimals = options.get("decimals", DECIMALS)
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 6:
        raise ValueError(f"CSV decimals must be a whole number 0..6, not {decimals!r}")
    wanted = options.get("files", list(FILES))
    unknown = [name for name in wanted if name not in FILES]
    if unknown or not wanted:
        raise ValueError(f"CSV files must be a non-empty subset of {list(FILES)}, not {wanted!r}")
    stem = f"{safe_part(batch.partner_id, 'partner id')}_{safe_part(batch.period.label, 'period')}"
    files = []
    if "intervals" in wanted:
        files.append(_intervals_file(batch, dialect, f"{stem}_intervals.csv", decimals))
    if "days" in wanted:
        files.append(_days_file(batch, dialect, f"{stem}_days.csv", decimals))
    return files


def _number(dialect: str, decimals: int = DECIMALS) -> Callable[[float], str]:
    point = "." if dialect == "default" else ","
    return lambda value: fixed(value, decimals, decimal_point=point, trim=True)


def _times(row: IntervalRow, timezone: str, dialect: str) -> tuple[str, ...]:
    return _instants(row.start, row.end, timezone, dialect)


@lru_cache(maxsize=8192)
def _instants(start: datetime, end: datetime, timezone: str, dialect: str) -> tuple[str, ...]:
    """Cached: all batteries of a period share the same quarter hours."""
    if dialect == "default":
        return (utc_text(start), utc_text(end))
    local_start = to_local(start, timezone)
    local_end = to_local(end, timezone)
    return (
        local_start.strftime("%d.%m.%Y"),
        local_start.strftime("%H:%M"),
        local_end.strftime("%H:%M"),
        offset_text(local_start),
    )


def _intervals_file(batch: ExportBatch, dialect: str, name: str, decimals: int) -> ExportFile:
    number = _number(dialect, decimals)
    rows = []
    for battery in batch.batteries:
        for row in sorted(battery.intervals, key=lambda r: r.start):
            rows.append(
                [
                    battery.battery_id,
                    battery.metering_point,
                    *_times(row, battery.timezone, dialect),
                    *(number(getattr(row, attr)) for _, attr in ENERGY_COLUMNS),
                    number(row.level),
                    "1" if row.estimated else "0",
                ]
            )
    return _file(name, dialect, interval_header(dialect), rows)


def _day_values(day: DayRow, dialect: str, decimals: int = DECIMALS) -> list[str]:
    number = _number(dialect, decimals)
    when = (
        day.local_date.isoformat() if dialect == "default" else day.local_date.strftime("%d.%m.%Y")
    )
    return [
        day.battery_id,
        day.metering_point,
        when,
        *(number(getattr(day, attr)) for _, attr in ENERGY_COLUMNS),
        number(day.level_end),
        number(day.level_min),
        number(day.level_max),
        str(day.intervals),
        str(day.estimated_intervals),
        str(day.expected_intervals),
    ]


def _days_file(batch: ExportBatch, dialect: str, name: str, decimals: int) -> ExportFile:
    rows = [
        _day_values(day, dialect, decimals)
        for battery in batch.batteries
        for day in day_rows(battery)
    ]
    return _file(name, dialect, DAY_HEADER, rows)


def _file(name: str, dialect: str, header: list[str], rows: list[list[str]]) -> ExportFile:
    text = delimited.write(
        [header, *rows], separator="," if dialect == "default" else ";", line_ending="\r\n"
    )
    encoding = "utf-8" if dialect == "default" else "utf-8-sig"
    return ExportFile(
        name=name,
        content=text.encode(encoding),
        rows=len(rows),
        values=_sums(header, rows, dialect),
        media_type="text/csv",
    )


def _sums(header: Sequence[str], rows: list[list[str]], dialect: str) -> dict[str, float]:
    """Channel sums of the numbers as written, for the export ledger's cross-checks."""
    sums = {}
    for channel in CHANNEL_SUMS:
        index = header.index(f"{channel}_kwh")
        values = (
            float(row[index].replace(",", ".")) if dialect == "dach" else float(row[index])
            for row in rows
        )
        sums[channel] = math.fsum(values)
    return sums
