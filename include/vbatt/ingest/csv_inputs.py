"""The readings and batteries CSV files of ``vbatt simulate`` and ``vbatt ingest``.

Every problem is reported with file, line and column, all at once, so a partner fixes a
file in one pass; a file with any problem is refused whole (nothing is half-loaded).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from vbatt.battery_config import BATTERY_FIELDS, DEFAULT_TIMEZONE, FIXED_FIELDS, field_problems
from vbatt.readings import Reading

READINGS_HEADER = ("meter_id", "timestamp", "import_kwh", "export_kwh")
BATTERIES_HEADER = BATTERY_FIELDS  # the columns of raw.batteries, in the same order
# optional: the local date a row's versioned fields apply from (empty = the start_date)
VALID_FROM = "valid_from"


@dataclass(frozen=True)
class InputProblem:
    file: str
    line: int
    column: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.message}"


class InputFileError(ValueError):
    def __init__(self, problems: list[InputProblem]):
        self.problems = problems
        shown = "\n".join(str(p) for p in problems[:50])
        more = f"\n... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(shown + more)


def _rows(path: Path, header: tuple[str, ...], problems: list[InputProblem]):
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        fields = [f.strip() for f in (reader.fieldnames or [])]
        missing = [c for c in header if c not in fields]
        if missing:
            problems.append(
                InputProblem(str(path), 1, ", ".join(missing), "missing column(s) in the header")
            )
            return
        reader.fieldnames = fields
        for row in reader:
            yield reader.line_num, {k: (v or "").strip() for k, v in row.items() if k}


def parse_timestamp(text: str) -> datetime:
    """ISO 8601 with ``Z`` or an offset; a local time without offset is ambiguous."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("has no time zone: add Z or an offset like +01:00")
    return value.astimezone(UTC)


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("is not a finite number")
    return value


def read_readings_csv(path: Path) -> list[Reading]:
    """All readings of a file, or InputFileError naming every problem (nothing half-read)."""
    readings, problems = parse_readings_csv(path)
    if problems:
        raise InputFileError([problem for problem, _ in problems])
    return readings


def parse_readings_csv(path: Path) -> tuple[list[Reading], list[tuple[InputProblem, str]]]:
    """The good rows and, for each bad row, its problem and the row as written.

    A file whose header lacks a column is refused whole (InputFileError): no row of it
    can be trusted to mean what its position suggests.
    """
    header_problems: list[InputProblem] = []
    problems: list[tuple[InputProblem, str]] = []
    readings: list[Reading] = []
    name = str(path)
    for line, row in _rows(path, READINGS_HEADER, header_problems):
        row_problems: list[InputProblem] = []
        if not row["meter_id"]:
            row_problems.append(InputProblem(name, line, "meter_id", "is empty"))
        try:
            ts = parse_timestamp(row["timestamp"])
        except ValueError as exc:
            row_problems.append(
                InputProblem(name, line, "timestamp", f"{row['timestamp']!r}: {exc}")
            )
        values = {}
        for column in ("import_kwh", "export_kwh"):
            try:
                values[column] = _number(row[column])
            except ValueError:
                row_problems.append(
                    InputProblem(name, line, column, f"{row[column]!r} is not a number")
                )
                continue
            if values[column] < 0:
                row_problems.append(
                    InputProblem(
                        name, line, column, f"{row[column]} is negative: registers count up"
                    )
                )
        if row_problems:
            record = ",".join(row.get(c, "") for c in READINGS_HEADER)
            problems.extend((p, record) for p in row_problems)
        else:
            readings.append(
                Reading(row["meter_id"], ts, values["import_kwh"], values["export_kwh"])
            )
    if header_problems:
        raise InputFileError(header_problems)
    return readings, problems


def _date(text: str) -> date:
    return date.fromisoformat(text)


def read_batteries_csv(path: Path, known_meters: set[str] | None = None) -> list[dict]:
    """Battery rows with the rule book's defaults applied, ready for raw.batteries.

    With the optional column ``valid_from``, several rows of a battery are its versions
    (rule book, "Configuration over time"): they must agree on the fixed fields and the
    end_date, one of them starts on the start_date (an empty ``valid_from``), and each
    ``valid_from`` lies in [start_date, end_date) once. Each row's ``valid_from`` is None
    for the start_date."""
    problems: list[InputProblem] = []
    batteries: list[dict] = []
    lines: list[int] = []
    name = str(path)
    for line, row in _rows(path, BATTERIES_HEADER, problems):
        found: list[InputProblem] = []

        def problem(
            column: str,
            message: str,
            line: int = line,
            found: list = found,
            battery_id: str = row["battery_id"],
        ) -> None:
            battery = f" (battery {battery_id!r})" if battery_id else ""
            found.append(InputProblem(name, line, column, message + battery))

        parsed: dict = {c: row[c] or None for c in BATTERIES_HEADER}
        parsed["name"] = row["name"] or row["battery_id"]
        parsed["partner_id"] = row["partner_id"] or "default"
        parsed["customer_id"] = row["customer_id"] or row["battery_id"]
        unparsable: set[str] = set()
        for column, default in (("capacity_kwh", 0.0), ("initial_level_kwh", 0.0)):
            try:
                parsed[column] = _number(row[column]) if row[column] else default
            except ValueError:
                problem(column, f"{row[column]!r} is not a number")
                parsed[column] = default
                unparsable.add(column)
        parsed[VALID_FROM] = None
        for column in ("start_date", "reset_date", "end_date", VALID_FROM):
            if row.get(column):
                try:
                    parsed[column] = _date(row[column])
                except ValueError:
                    problem(column, f"{row[column]!r} is not a date (YYYY-MM-DD)")
                    parsed[column] = None
                    unparsable.add(column)
        parsed["reset_repeat"] = row["reset_repeat"] or "yearly"
        parsed["timezone"] = row["timezone"] or DEFAULT_TIMEZONE
        # the rule book's constraints: one place for them (vbatt.battery_config)
        for column, message in field_problems(parsed):
            if column not in unparsable:
                problem(column, message)
        if known_meters is not None and row["meter_id"] and row["meter_id"] not in known_meters:
            problem("meter_id", f"{row['meter_id']!r} has no readings in the readings file")
        if parsed[VALID_FROM] == parsed["start_date"]:
            parsed[VALID_FROM] = None
        problems.extend(found)
        if not found:
            batteries.append(parsed)
            lines.append(line)
    problems += _version_problems(name, batteries, lines)
    if problems:
        raise InputFileError(sorted(problems, key=lambda p: p.line))
    return batteries


def _version_problems(name: str, rows: list[dict], lines: list[int]) -> list[InputProblem]:
    """The rules across the rows of one battery (its versions)."""
    found: list[InputProblem] = []
    first_line: dict[str, int] = {}
    first_row: dict[str, dict] = {}
    seen: dict[tuple, int] = {}
    for row, line in zip(rows, lines, strict=True):
        battery = row["battery_id"]
        of = f" (battery {battery!r})"
        start, end, valid_from = row["start_date"], row["end_date"], row[VALID_FROM]
        if battery in first_row:
            for column in (*FIXED_FIELDS, "end_date"):
                if row[column] != first_row[battery][column]:
                    found.append(
                        InputProblem(
                            name,
                            line,
                            column,
                            f"differs from line {first_line[battery]}: rows of a battery"
                            f" agree on it (a version changes only name, meter_id,"
                            f" capacity_kwh, reset_date, reset_repeat){of}",
                        )
                    )
        else:
            first_row[battery], first_line[battery] = row, line
        key = (battery, valid_from or start)
        if key in seen:
            column = VALID_FROM if valid_from else "battery_id"
            found.append(
                InputProblem(
                    name,
                    line,
                    column,
                    f"{battery!r} appears twice: line {seen[key]} is the version from"
                    f" {key[1]} too{of}",
                )
            )
        seen.setdefault(key, line)
        if valid_from is not None and valid_from < start:
            found.append(
                InputProblem(
                    name, line, VALID_FROM, f"{valid_from} is before start_date {start}{of}"
                )
            )
        elif valid_from is not None and end is not None and valid_from >= end:
            found.append(
                InputProblem(
                    name, line, VALID_FROM, f"{valid_from} is on or after end_date {end}{of}"
                )
            )
    for battery, line in first_line.items():
        starts = [r[VALID_FROM] for r in rows if r["battery_id"] == battery]
        if None not in starts and all(s > first_row[battery]["start_date"] for s in starts):
            found.append(
                InputProblem(
                    name,
                    line,
                    VALID_FROM,
                    f"no version starts on start_date {first_row[battery]['start_date']}: the"
                    f" first version's valid_from is the start_date (leave it empty)"
                    f" (battery {battery!r})",
                )
            )
    return found
