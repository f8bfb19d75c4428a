"""A readings CSV checked and staged inside the warehouse, not in Python.

A file of millions of readings is copied line by line (COPY) into a temporary table and
split and checked there in SQL. A row that SQL cannot accept on sight (a bad or unusual
value, quotes, non-ASCII text, an odd timestamp form) goes to the row checks of
``csv_inputs``, which decide and word the problem: the rules and the messages stay in one
place, and Python sees only the few unusual rows, never one object per reading.

What SQL accepts on sight is parsed identically by both: ISO timestamps to the second
with ``Z`` or an offset (``TIMESTAMP_SHAPES``), and numbers PostgreSQL parses that are
neither hexadecimal nor infinite nor NaN (both round decimal input correctly). A file the line-wise COPY cannot
take exactly (invalid UTF-8, a quoted field over several lines, bare carriage returns) is
read by ``csv_inputs`` whole, as before: slower, same result.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, text

from vbatt.ingest.csv_inputs import (
    READINGS_HEADER,
    InputFileError,
    InputProblem,
    check_reading_row,
    header_problems,
    parse_readings_csv,
    row_of_values,
)

LINES = "vbatt_csv_lines"
STAGED = "vbatt_staged_readings"  # position, meter_id, ts, import_kwh, export_kwh, good, line


# The timestamps SQL takes on sight (``like``; every ``_`` must be a digit): the forms
# files and pandas write. Any other form Python's rules decide, row by row.
TIMESTAMP_SHAPES = [
    f"____-__-__{sep}__:__:__{zone}" for sep in "T " for zone in ("Z", "+__:__", "-__:__")
]
# the digits of those shapes, joined: all digits exactly when they survive a round trip
# through bigint (no sign, no space, no point; PostgreSQL would take "T 1:00" as 01:00)
TIMESTAMP_DIGITS = (
    "substr(timestamp_text, 1, 4) || substr(timestamp_text, 6, 2)"
    " || substr(timestamp_text, 9, 2) || substr(timestamp_text, 12, 2)"
    " || substr(timestamp_text, 15, 2) || substr(timestamp_text, 18, 2)"
    " || substr(timestamp_text, 21, 2) || substr(timestamp_text, 24, 2)"
)


@dataclass
class StagedReadings:
    """The good rows are in the temporary table ``STAGED``; the bad ones are listed."""

    received: int
    problems: list[tuple[InputProblem, str]] = field(default_factory=list)
    sha256: str = ""


class _Reader:
    """A binary file for COPY that counts lines and hashes what it hands over."""

    def __init__(self, handle):
        self.handle, self.lines, self.last = handle, 0, b""
        self.digest = hashlib.sha256()

    def read(self, size: int = 1 << 20) -> bytes:
        chunk = self.handle.read(size if size and size > 0 else 1 << 20)
        if chunk:
            self.lines += chunk.count(b"\n")
            self.last = chunk[-1:]
            self.digest.update(chunk)
        return chunk

    def readline(self, size: int = -1) -> bytes:  # psycopg2 asks for read() only
        return self.read(size)

    @property
    def physical_lines(self) -> int:
        return self.lines + (1 if self.last and self.last != b"\n" else 0)


def _header(path: Path) -> tuple[list[str], int]:
    """The stripped field names and how many physical lines the header takes."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        first = next(reader, None)
        return [f.strip() for f in (first or [])], max(reader.line_num, 1)


def _split_sql(fields: list[str]) -> str:
    """SQL for the four columns of a line: the field at the LAST index of each name
    (``csv.DictReader`` keeps the last of duplicate names), a missing field empty. Not
    stripped: a field with spaces around it is not taken on sight (see ``_check_sql``)."""
    index = {name: i + 1 for i, name in enumerate(fields)}
    return ", ".join(f"split_part(line, ',', {index[c]}) as {c}_text" for c in READINGS_HEADER)


def _copy_lines(conn: Connection, path: Path) -> tuple[_Reader, bool]:
    """COPY every physical line into LINES; False when COPY cannot take the file as is."""
    conn.execute(
        text(
            f"create temporary table {LINES} (position bigint generated always as identity"
            " (cache 100000), line text) on commit drop"
        )
    )
    cursor = conn.connection.dbapi_connection.cursor()
    savepoint = conn.begin_nested()
    with path.open("rb") as handle:
        reader = _Reader(handle)
        try:
            cursor.copy_expert(
                f"copy {LINES} (line) from stdin with (format csv, delimiter E'\\x01',"
                " quote E'\\x02', null '', encoding 'UTF8')",
                reader,
            )
        except Exception as exc:  # noqa: BLE001 - a DataError of any kind: read in Python
            if type(exc).__module__.split(".")[0] != "psycopg2":
                raise
            savepoint.rollback()
            while reader.read():  # the digest covers the whole file
                pass
            return reader, False
    savepoint.commit()
    copied = conn.execute(text(f"select count(*) from {LINES}")).scalar_one()
    # a lone `\.` ends COPY early; a quote opened on one line and closed on another is
    # one CSV record over several lines: both are for the Python reader
    multi_line = conn.execute(
        text(
            f"select exists (select 1 from {LINES} where strpos(line, '\"') > 0"
            " and (length(line) - length(replace(line, '\"', ''))) % 2 = 1)"
        )
    ).scalar_one()
    return reader, copied == reader.physical_lines and not multi_line


def _stage_in_python(conn: Connection, path: Path) -> StagedReadings:
    """The exact, slow way: csv_inputs reads the file (unusual files only)."""
    readings, problems = parse_readings_csv(path)
    conn.execute(text(f"truncate {STAGED}"))
    cursor = conn.connection.dbapi_connection.cursor()
    rows = "".join(
        f"{i}\t{_tsv(r.meter_id)}\t{r.ts.isoformat()}\t{r.import_kwh!r}\t{r.export_kwh!r}\n"
        for i, r in enumerate(readings)
    )
    cursor.copy_expert(
        f"copy {STAGED} (position, meter_id, ts, import_kwh, export_kwh) from stdin",
        io.StringIO(rows),
    )
    return StagedReadings(len(readings), problems)


def _tsv(value: str) -> str:
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def _check_sql(fields: list[str], *, tried: bool) -> str:
    """Split and check every line once (offset 0: each level computes its columns once,
    not in every place that uses them); cast only the rows that pass. A number may have
    spaces around it: PostgreSQL skips them as Python strips them."""
    shape = " or ".join(f"timestamp_text like '{t}'" for t in TIMESTAMP_SHAPES)
    number_checks = " and ".join(
        f"strpos({column}, '{letter}') = 0"
        for column in ("import_kwh_text", "export_kwh_text")
        for letter in "xXnN"  # hexadecimal, inf, infinity, nan: not numbers to Python
    )
    # tried: the casts run only where every value parses (else the statement fails)
    tries = (
        f"""and pg_input_is_valid({TIMESTAMP_DIGITS}, 'int8')
                        and pg_input_is_valid(timestamp_text, 'timestamptz')
                        and pg_input_is_valid(import_kwh_text, 'float8')
                        and pg_input_is_valid(export_kwh_text, 'float8')"""
        if tried
        else ""
    )
    return f"""
        insert into {STAGED}
        select position, meter_id_text,
               case when good then ts end,
               case when good then import_kwh end,
               case when good then export_kwh end,
               good,
               case when not good then line end
        from (
            select cast_values.*,
                   coalesce(
                       shaped_ok
                       and lpad(digits::int8::text, length(digits), '0') = digits
                       and import_kwh >= 0 and export_kwh >= 0,
                       false
                   ) as good
            from (
                select shaped.*,
                       case when shaped_ok then timestamp_text::timestamptz end as ts,
                       case when shaped_ok then import_kwh_text::float8 end as import_kwh,
                       case when shaped_ok then export_kwh_text::float8 end as export_kwh
                from (
                    select fields.*, {TIMESTAMP_DIGITS} as digits,
                        strpos(line, '"') = 0
                        and octet_length(line) = length(line)
                        -- ASCII whitespace, which Python strips, sorts at or below ' '
                        and left(meter_id_text, 1) > ' ' and right(meter_id_text, 1) > ' '
                        and ({shape})
                        and substr(timestamp_text, 12, 2) <= '23'
                        and substr(timestamp_text, 18, 2) <= '59'
                        and {number_checks}
                        {tries} as shaped_ok
                    from (
                        select position, line, {_split_sql(fields)}
                        from {LINES}
                        where position > 1 and line is not null
                        offset 0
                    ) as fields
                    offset 0
                ) as shaped
                offset 0
            ) as cast_values
            offset 0
        ) as checked
    """


def stage_readings_csv(conn: Connection, path: Path) -> StagedReadings:
    """Check every row of a readings CSV; leave the good ones in the temporary table
    ``STAGED`` of this transaction (dropped at commit). InputFileError when the header
    lacks a column. The bad rows come back with their problem and record, in file order,
    worded exactly as ``csv_inputs`` words them."""
    name = str(path)
    fields, header_lines = _header(path)
    found = header_problems(path, fields, READINGS_HEADER)
    if found:
        raise InputFileError(found)
    conn.execute(
        text(
            f"create temporary table {STAGED} (position bigint, meter_id text, ts timestamptz,"
            " import_kwh float8, export_kwh float8, good boolean, line text) on commit drop"
        )
    )
    reader, exact = _copy_lines(conn, path)
    if not exact or header_lines != 1:
        staged = _stage_in_python(conn, path)
        staged.sha256 = reader.digest.hexdigest()
        return staged

    # Optimistic: the checks above guard the casts; a value of the right shape that still
    # does not parse (30 February, 1e400, "1e") fails the statement, and only then is every
    # value tried first (pg_input_is_valid: exact, but several times slower).
    savepoint = conn.begin_nested()
    try:
        conn.execute(text(_check_sql(fields, tried=False)))
        savepoint.commit()
    except Exception as exc:  # noqa: BLE001 - an invalid value of the right shape
        if type(exc).__module__.split(".")[0] != "sqlalchemy":
            raise
        savepoint.rollback()
        conn.execute(text(_check_sql(fields, tried=True)))
    conn.execute(text(f"drop table {LINES}"))
    problems: list[tuple[InputProblem, str]] = []
    fixed: list[str] = []
    suspects = conn.connection.dbapi_connection.cursor(name="vbatt_csv_suspects")
    suspects.itersize = 10_000
    suspects.execute(f"select position, line from {STAGED} where not good order by position")
    for position, line in suspects:
        values = next(csv.reader([line]), [])
        if not values:
            continue  # csv.DictReader skips an empty record
        row = row_of_values(fields, values)
        reading, row_problems = check_reading_row(name, position, row)
        if row_problems:
            record = ",".join(row.get(c, "") for c in READINGS_HEADER)
            problems.extend((p, record) for p in row_problems)
        else:  # an unusual form the rules accept: its values as Python parsed them
            fixed.append(
                f"{position}\t{_tsv(reading.meter_id)}\t{reading.ts.isoformat()}"
                f"\t{reading.import_kwh!r}\t{reading.export_kwh!r}\n"
            )
    suspects.close()
    if fixed:
        cursor = conn.connection.dbapi_connection.cursor()
        cursor.copy_expert(
            f"copy {STAGED} (position, meter_id, ts, import_kwh, export_kwh) from stdin",
            io.StringIO("".join(fixed)),
        )
    conn.execute(text(f"delete from {STAGED} where good is false"))  # fixed rows: null
    received = conn.execute(text(f"select count(*) from {STAGED}")).scalar_one()
    return StagedReadings(received, problems, reader.digest.hexdigest())


def staged_meters(conn: Connection) -> set[str]:
    """The meters of the staged readings (for checking a batteries file against them)."""
    return set(conn.execute(text(f"select distinct meter_id from {STAGED}")).scalars())
