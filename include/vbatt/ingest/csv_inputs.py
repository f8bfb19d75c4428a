"""The readings and batteries CSV files of ``vbatt simulate`` and ``vbatt ingest``.

Every problem is reported with file, line and column, all at once, so a partner fixes a
file in one pass; a file with any problem is refused whole (nothing is half-loaded).
"""

from __future__ import annotations

import codecs
import csv
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from vbatt.battery_config import (
    BATTERY_FIELDS,
    DEFAULT_TIMEZONE,
    FIXED_FIELDS,
    MAX_LENGTHS,
    field_problems,
)
from vbatt.readings import Reading

READINGS_HEADER = ("meter_id", "timestamp", "import_kwh", "export_kwh")
BATTERIES_HEADER = BATTERY_FIELDS  # the columns of raw.batteries, in the same order
# optional: the local date a row's versioned fields apply from (empty = the start_date)
VALID_FROM = "valid_from"
# a meter id longer than a battery's may be is quarantined: PostgreSQL's unique index on
# the readings cannot hold a key of a few kilobytes, and no real meter id comes near it
METER_ID_MAX = MAX_LENGTHS["meter_id"]
# C0 controls and DEL: never part of an id, and a NUL cannot be stored in a text column
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class InputProblem:
    file: str
    line: int
    column: str
    message: str

    def __str__(self) -> str:
        # line 0: a problem of the whole file (a folder, not UTF-8, empty), no line to name
        where = self.file + (f":{self.line}" if self.line else "")
        where += f", column {self.column}" if self.column else ""
        return f"{where}: {self.message}"


class InputFileError(ValueError):
    def __init__(self, problems: list[InputProblem]):
        self.problems = problems
        shown = "\n".join(str(p) for p in problems[:50])
        more = f"\n... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(shown + more)


def header_problems(path: Path, fields: list[str], header: tuple[str, ...]) -> list[InputProblem]:
    missing = [c for c in header if c not in fields]
    if missing:
        return [InputProblem(str(path), 1, ", ".join(missing), "missing column(s) in the header")]
    return []


def file_problem(path: Path) -> InputProblem | None:
    """Why ``path`` cannot be read as a text file at all, before anything reads it: not
    there, a folder, not readable, empty, or UTF-16 (Excel's "Unicode text"). Checked
    first so that a person gets a sentence naming the file, not an OSError's traceback."""
    name = str(path)
    try:
        if not path.exists():
            return InputProblem(name, 0, "", "no such file")
        if path.is_dir():
            return InputProblem(name, 0, "", "is a folder: give a file")
        if not path.is_file():
            return InputProblem(name, 0, "", "is not a regular file")
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        return InputProblem(name, 0, "", f"cannot be read: {exc.strerror or exc}")
    if not head:
        return InputProblem(name, 0, "", "the file is empty")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return InputProblem(name, 0, "", "the file is UTF-16: save it as UTF-8")
    return None


def require_file(path: Path) -> None:
    """InputFileError when ``file_problem`` finds one."""
    found = file_problem(path)
    if found is not None:
        raise InputFileError([found])


def encoding_problem(path: Path) -> InputProblem:
    """Where a file that failed to decode stops being UTF-8: the first line whose bytes
    are not UTF-8, and the byte. Only called after a decoder failed (the good path never
    pays for it); a line end never falls inside a UTF-8 character, so lines decode alone."""
    found = file_problem(path)
    if found is not None:
        return found
    with path.open("rb") as handle:
        for line, data in enumerate(handle, start=1):
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as exc:
                byte = data[exc.start]
                return InputProblem(
                    str(path),
                    0,
                    "",
                    f"line {line}: not UTF-8 (byte 0x{byte:02x}; Latin-1?): save the file as UTF-8",
                )
    return InputProblem(str(path), 0, "", "not UTF-8: save the file as UTF-8")


def too_many_fields(count: int, header: int) -> str:
    """The problem of a row with more fields than its header: most often decimal commas
    (``1,5`` for 1.5), which would otherwise shift every later value one column on."""
    return f"{count} fields where the header has {header} (a decimal comma? use '.')"


def _rows(path: Path, header: tuple[str, ...], problems: list[InputProblem]):
    """The rows of a CSV as ``(line, row, extra)``; ``extra``: the problem of a row with
    more fields than the header (None for the others), whose row then holds the fields as
    written under the key None."""
    require_file(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            line = 0
            try:
                fields = [f.strip() for f in (reader.fieldnames or [])]
                found = header_problems(path, fields, header)
                if found:
                    problems.extend(found)
                    return
                reader.fieldnames = fields
                for row in reader:
                    line = reader.line_num
                    extra = row.pop(None, None)  # DictReader's restkey: the surplus fields
                    values = {k: (v or "").strip() for k, v in row.items() if k}
                    if extra is not None:
                        written = [row[f] for f in fields] + extra
                        values[None] = ",".join(written)
                        yield line, values, too_many_fields(len(written), len(fields))
                    else:
                        yield line, values, None
            except csv.Error as exc:
                raise InputFileError(
                    [InputProblem(str(path), line + 1, "", csv_error_message(exc))]
                ) from None
    except UnicodeDecodeError:
        raise InputFileError([encoding_problem(path)]) from None


def csv_error_message(exc: csv.Error) -> str:
    """What the csv module's complaint means for the person who wrote the file."""
    if "field larger than field limit" in str(exc):
        return (
            f"field too long: more than {csv.field_size_limit():,} characters (a quote left open?)"
        )
    return f"not readable as CSV: {exc}"


def row_of_values(fields: list[str], values: list[str]) -> dict[str, str]:
    """One CSV record as ``csv.DictReader`` and ``_rows`` see it (for a single line); a
    record with more fields than ``fields`` is the caller's to refuse (``too_many_fields``)."""
    row: dict = dict(zip(fields, values, strict=False))
    for key in fields[len(values) :]:
        row[key] = None
    return {k: (v or "").strip() for k, v in row.items() if k}


def meter_id_problem(meter_id: str) -> str | None:
    """Why a meter id cannot be stored as one: too long for the readings' unique index, or
    a control character (a line end inside a quoted field, a NUL) that no meter id has."""
    if len(meter_id) > METER_ID_MAX:
        return f"is {len(meter_id):,} characters long: a meter id has at most {METER_ID_MAX}"
    if CONTROL.search(meter_id):
        return "control character in meter_id"
    return None


def parse_timestamp(text: str) -> datetime:
    """ISO 8601 with ``Z`` or an offset; a local time without offset is ambiguous. An
    instant that falls outside years 1..9999 in UTC (``0001-01-01T00:00:00+01:00``) is a
    ValueError like any other bad timestamp, not Python's OverflowError."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("has no time zone: add Z or an offset like +01:00")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range: in UTC it falls before year 1 or after 9999") from None


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
    found_in_header: list[InputProblem] = []
    problems: list[tuple[InputProblem, str]] = []
    readings: list[Reading] = []
    name = str(path)
    for line, row, extra in _rows(path, READINGS_HEADER, found_in_header):
        if extra is not None:
            problems.append((InputProblem(name, line, "", extra), row[None]))
            continue
        reading, row_problems = check_reading_row(name, line, row)
        if row_problems:
            record = ",".join(row.get(c, "") for c in READINGS_HEADER)
            problems.extend((p, record) for p in row_problems)
        else:
            readings.append(reading)
    if found_in_header:
        raise InputFileError(found_in_header)
    return readings, problems


def check_reading_row(
    name: str, line: int, row: dict[str, str]
) -> tuple[Reading | None, list[InputProblem]]:
    """One row of a readings file: the reading, or every problem of the row (the rules)."""
    row_problems: list[InputProblem] = []
    if not row["meter_id"]:
        row_problems.append(InputProblem(name, line, "meter_id", "is empty"))
    elif (why := meter_id_problem(row["meter_id"])) is not None:
        row_problems.append(InputProblem(name, line, "meter_id", why))
    try:
        ts = parse_timestamp(row["timestamp"])
    except ValueError as exc:
        row_problems.append(InputProblem(name, line, "timestamp", f"{row['timestamp']!r}: {exc}"))
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
                InputProblem(name, line, column, f"{row[column]} is negative: registers count up")
            )
    if row_problems:
        return None, row_problems
    return Reading(row["meter_id"], ts, values["import_kwh"], values["export_kwh"]), []


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
    for line, row, extra in _rows(path, BATTERIES_HEADER, problems):
        if extra is not None:  # its values may sit in the wrong columns: none is used
            problems.append(InputProblem(name, line, "", extra))
            continue
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
        # an empty capacity stays None and is refused (field_problems), as the API refuses
        # it: 0 means unlimited, never a silent default; the initial level has the rule
        # book's default, 0
        for column, default in (("capacity_kwh", None), ("initial_level_kwh", 0.0)):
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
