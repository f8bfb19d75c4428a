"""A readings CSV checked on its way into the warehouse: one pass, COPY, no object per row.

The file is read in blocks of 256 KB cut at line ends. A block whose every line has
the usual shape (``line_pattern``: a plain ASCII meter id, an ISO timestamp to the second
with ``Z`` or an offset, two plain decimals) goes to COPY as it is: on those forms
PostgreSQL and the Python rules agree exactly (both round decimals correctly; the pattern
leaves out what they read differently: exponents, fractions of a second, signs, spaces,
quotes, non-ASCII text). A block with any other line goes through the row rules of
``csv_inputs`` line by line: they decide and word every problem (the rules and the
messages stay in one place), and only the good rows go on, written in a form both read
alike. A quoted field over several lines hands the rest of the file to the row rules (a
record may then cross blocks), and so does a header other than the four columns.

PostgreSQL may still refuse a value of the usual shape: a day the month does not have (30
February). Then the COPY is rolled back to its savepoint and the file streamed again with
such days checked in Python (``careful``); should COPY refuse even that, by the row rules
alone. The reader's client-side work is C-level regex and byte counting, and it overlaps
with the server's COPY on the other core.
"""

from __future__ import annotations

import codecs
import csv
import io
import queue
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy import Connection, text

from vbatt.ingest.csv_inputs import (
    METER_ID_MAX,
    READINGS_HEADER,
    InputFileError,
    InputProblem,
    check_reading_row,
    csv_error_message,
    encoding_problem,
    header_problems,
    meter_id_problem,
    require_file,
    row_of_values,
    too_many_fields,
)

STAGED = "vbatt_staged_readings"  # position (file order), meter_id, ts, import_kwh, export_kwh
BLOCK = 1 << 18  # 256 KB: the checking thread holds the GIL one block at a time
COLUMNS = {"meter_id": "meter_id", "timestamp": "ts", "import_kwh": "import_kwh"}
COLUMNS["export_kwh"] = "export_kwh"

# One field each, as bytes. The meter id: printable ASCII without quote or comma and
# without spaces at either end (Python strips them), at most METER_ID_MAX (100) characters
# (a longer one goes to the row rules, which quarantine it: a bound, not a check more, so
# the usual line costs the same). Timestamps: years 1900-2099 (no
# overflow when Python converts to UTC), offsets below 15 hours (PostgreSQL's limit).
FIELD_PATTERNS = {
    "meter_id": rb"[!#-+\--~](?:[ !#-+\--~]{0,%d}[!#-+\--~])?" % (METER_ID_MAX - 2),
    "timestamp": rb"(?:19|20)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])[T ]"
    rb"(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:Z|[+-](?:0\d|1[0-4]):[0-5]\d)",
    "import_kwh": rb"(?:\d{1,30}(?:\.\d{0,30})?|\.\d{1,30})",
    "export_kwh": rb"(?:\d{1,30}(?:\.\d{0,30})?|\.\d{1,30})",
}
# the days a month may not have, as the careful pass looks for them
MONTH_END = re.compile(rb"((?:19|20)\d\d)-(\d\d)-(29|30|31)[T ]")


def line_pattern(fields: list[str]) -> re.Pattern[bytes]:
    """Every line of a block in the usual shape, the columns in the header's order."""
    line = b",".join(FIELD_PATTERNS[name] for name in fields) + rb"\r?\n"
    return re.compile(b"(?:" + line + b")*")


@dataclass
class StagedReadings:
    """What a pass over a readings file found: the good rows went to COPY."""

    received: int
    problems: list[tuple[InputProblem, str]] = field(default_factory=list)
    way: str = ""  # how the rows were checked, for the load summary


class _MultiLineRecord(Exception):
    """A quoted field goes over a line end: blocks no longer hold whole records."""


class _Stream:
    """The checked rows of a readings file as a file for ``copy_expert``.

    Columns in ``columns`` order (the file's own order on the block path). ``mode``:
    ``fast`` (the pattern alone), ``careful`` (and days checked), ``rules`` (every row).
    """

    def __init__(self, path: Path, fields: list[str] | None, mode: str):
        self.path, self.name, self.mode = path, str(path), mode
        self.fields = fields  # the four names in file order; None: the rules read the header
        self.columns = fields or list(READINGS_HEADER)
        self.received, self.blocks, self.by_rules = 0, 0, 0
        self.rules_from: int | None = None  # line where the rules took over the rest
        self.problems: list[tuple[InputProblem, str]] = []
        self.error: BaseException | None = None
        # the blocks are checked in a thread of their own: while psycopg2 sends one (the
        # GIL released), the next is matched, and the server's COPY never waits for it
        self._queue: queue.Queue = queue.Queue(maxsize=4)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, daemon=True)
        self._thread.start()

    # --- the file interface psycopg2 uses -------------------------------------------
    def read(self, size: int = BLOCK) -> bytes:
        chunk = self._queue.get()
        if isinstance(chunk, BaseException):
            self.error = chunk  # kept: psycopg2 reports its own message instead
            raise chunk
        return chunk

    readline = read

    def close(self) -> None:
        """Stop the checking thread (COPY may end early) and wait for it."""
        self._stop.set()
        self._thread.join()

    def _produce(self) -> None:
        try:
            for chunk in self._generate():
                if chunk and not self._put(chunk):  # b"" would end the COPY
                    return
            self._put(b"")
        except BaseException as exc:  # noqa: BLE001 - handed to the reading thread
            self._put(exc)

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    # --- the blocks ------------------------------------------------------------------
    def _generate(self) -> Iterator[bytes]:
        if self.fields is None:
            yield from self._rules_from(0, 1, header=True)
            return
        pattern = line_pattern(self.fields)
        with self.path.open("rb") as handle:
            start = len(handle.readline())
            line, carry = 2, b""
            while True:
                data = handle.read(BLOCK)
                end = not data
                data = carry + data
                if not data:
                    return
                cut = len(data) if end else data.rfind(b"\n") + 1
                if cut == 0:  # a line longer than a block: read on
                    carry = data
                    continue
                block, carry = data[:cut], data[cut:]
                self.blocks += 1
                matched = block if block.endswith(b"\n") else block + b"\n"
                if pattern.fullmatch(matched) and self._days_exist(matched):
                    self.received += matched.count(b"\n")
                    line += matched.count(b"\n")
                    yield matched.replace(b"\r\n", b"\n") if b"\r" in matched else matched
                else:
                    self.by_rules += 1
                    # what the block's rows counted is undone should it hand over to
                    # _rules_from, which reads them again (else they count twice)
                    received, problems = self.received, len(self.problems)
                    try:
                        out, lines = self._rules_block(block.decode("utf-8"), line)
                    except _MultiLineRecord:
                        self.received = received
                        del self.problems[problems:]
                        yield from self._rules_from(start, line, header=False)
                        return
                    line += lines
                    yield out
                start += cut

    def _days_exist(self, block: bytes) -> bool:
        if self.mode != "careful":
            return True
        for year, month, day in set(MONTH_END.findall(block)):
            try:
                date(int(year), int(month), int(day))
            except ValueError:
                return False
        return True

    def _rules_block(self, text_block: str, first_line: int) -> tuple[bytes, int]:
        """A block line by line through the row rules; its records are its lines."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        reader = csv.reader(io.StringIO(text_block, newline=""))
        lines = _Lines(lambda: io.StringIO(text_block, newline=""))
        done = 0  # lines of the records read so far
        while True:
            try:
                values = next(reader, None)
            except csv.Error as exc:
                if reader.line_num > done + 1:  # a quoted field went on over lines
                    raise _MultiLineRecord from None
                self._unreadable(exc, lines.get(done, reader.line_num), first_line + done)
                done = reader.line_num
                continue
            if values is None:
                break
            if any("\n" in v or "\r" in v for v in values):
                raise _MultiLineRecord
            done = reader.line_num
            self._check(writer, values, first_line + reader.line_num - 1)
        return out.getvalue().encode("utf-8"), reader.line_num

    def _rules_from(self, offset: int, first_line: int, *, header: bool) -> Iterator[bytes]:
        """The rest of the file from a record boundary, record by record (the rules)."""
        self.rules_from = first_line
        encoding = "utf-8-sig" if header else "utf-8"

        def text_from(raw) -> io.TextIOWrapper:
            raw.seek(offset)
            return io.TextIOWrapper(raw, encoding=encoding, newline="")

        with self.path.open("rb") as raw:
            reader = csv.reader(text_from(raw))
            if header:
                self.fields = [f.strip() for f in next(reader, [])]
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            with _Lines(lambda: text_from(self.path.open("rb"))) as lines:
                done = reader.line_num  # lines of the records read so far
                while True:
                    try:
                        values = next(reader, None)
                    except csv.Error as exc:
                        record = lines.get(done, reader.line_num)
                        self._unreadable(exc, record, first_line + done)
                        done = reader.line_num
                        continue
                    if values is None:
                        break
                    done = reader.line_num
                    self._check(writer, values, first_line + reader.line_num - 1)
                    if out.tell() >= BLOCK:
                        yield out.getvalue().encode("utf-8")
                        out.seek(0)
                        out.truncate()
            yield out.getvalue().encode("utf-8")

    def _unreadable(self, exc: csv.Error, record: str, line: int) -> None:
        """A record the csv module cannot take (a field over its size limit): quarantined
        as written, and the rows after it are read on (a long value loses no other row).
        When the meter id is the field too long, the reason says so, as for any meter id
        over ``METER_ID_MAX`` characters."""
        record = record.rstrip("\r\n")
        column, message = "", csv_error_message(exc)
        first = record.split(",", 1)[0].strip()
        if self.fields and self.fields[0] == "meter_id" and len(first) > METER_ID_MAX:
            column, message = "meter_id", meter_id_problem(first)
        self.problems.append((InputProblem(self.name, line, column, message), record))

    def _check(self, writer, values: list[str], line: int) -> None:
        if not values:
            return  # csv.DictReader skips an empty record
        if len(values) > len(self.fields):  # decimal commas would shift values: none used
            problem = InputProblem(
                self.name, line, "", too_many_fields(len(values), len(self.fields))
            )
            self.problems.append((problem, ",".join(values)))
            return
        row = row_of_values(self.fields, values)
        reading, problems = check_reading_row(self.name, line, row)
        if problems:
            record = ",".join(row.get(c, "") for c in READINGS_HEADER)
            self.problems.extend((p, record) for p in problems)
            return
        self.received += 1
        parsed = {
            "meter_id": reading.meter_id,
            "timestamp": reading.ts.isoformat(),
            "import_kwh": repr(reading.import_kwh),
            "export_kwh": repr(reading.export_kwh),
        }
        writer.writerow([parsed[c] for c in self.columns])

    @property
    def way(self) -> str:
        if self.rules_from == 1:
            return "row rules"
        way = "line pattern" + (" and days" if self.mode == "careful" else "")
        if self.rules_from is not None:
            return f"{way}, row rules from line {self.rules_from}"
        if self.by_rules:
            return f"{way}, row rules for {self.by_rules} of {self.blocks} blocks"
        return way


class _Lines:
    """The lines of a text as the csv reader takes them, fetched again only when a record
    could not be read (to quarantine it as written); forward only, so that many such
    records cost one more pass, not one each. ``opened`` makes the text's lines anew."""

    def __init__(self, opened):
        self._opened, self._handle, self._at = opened, None, 0

    def get(self, after: int, upto: int) -> str:
        """Lines ``after + 1`` to ``upto`` (counted as the reader counts them) joined."""
        if self._handle is None or self._at > after:
            self.close()
            self._handle, self._at = self._opened(), 0
        for _ in range(after - self._at):
            next(self._handle, "")
        self._at = upto
        return "".join(next(self._handle, "") for _ in range(upto - after))

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> _Lines:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _header(path: Path) -> tuple[list[str], bool]:
    """The stripped field names, and whether the block path can take the file: a
    one-line header of exactly the four columns (any order), plain ASCII."""
    with path.open("rb") as handle:
        first = handle.readline()
    head = first.removeprefix(codecs.BOM_UTF8)
    body = head.removesuffix(b"\n").removesuffix(b"\r")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        fields = [f.strip() for f in next(csv.reader(handle), [])]
    plain = head.endswith(b"\n") and body.isascii() and not re.search(rb'["\r\n]', body)
    return fields, plain and sorted(fields) == sorted(READINGS_HEADER)


def estimate_rows(path: Path) -> int:
    """About how many rows a readings file holds (its size over its first lines' length);
    0 for what is not a readable file (``copy_readings_csv`` then says what it is)."""
    if not path.is_file():
        return 0
    size = path.stat().st_size
    with path.open("rb") as handle:
        sample = handle.read(BLOCK)
    lines = sample.count(b"\n")
    return size * lines // len(sample) if sample and lines else 0


def copy_readings_csv(conn: Connection, path: Path, table: str) -> StagedReadings:
    """Check every row of a readings CSV and COPY the good ones into ``table`` (columns
    ``meter_id, ts, import_kwh, export_kwh``), in file order. InputFileError when the
    header lacks a column. The bad rows come back with their problem and record, in file
    order, worded exactly as ``csv_inputs`` words them; nothing of them is copied. A file
    that is not UTF-8 (or no file, empty, UTF-16) is an InputFileError naming the line."""
    require_file(path)
    try:
        fields, blocks = _header(path)
    except UnicodeDecodeError:
        raise InputFileError([encoding_problem(path)]) from None
    except csv.Error as exc:
        raise InputFileError([InputProblem(str(path), 1, "", csv_error_message(exc))]) from None
    found = header_problems(path, fields, READINGS_HEADER)
    if found:
        raise InputFileError(found)
    cursor = conn.connection.dbapi_connection.cursor()
    for mode in ("fast", "careful", "rules") if blocks else ("rules",):
        stream = _Stream(path, fields if mode != "rules" else None, mode)
        columns = ", ".join(COLUMNS[c] for c in stream.columns)
        savepoint = conn.begin_nested()
        try:
            cursor.copy_expert(
                f"copy {table} ({columns}) from stdin with (format csv, encoding 'UTF8')",
                stream,
                size=BLOCK,
            )
        except Exception as exc:
            stream.close()
            savepoint.rollback()
            if isinstance(stream.error, UnicodeDecodeError):  # say where, and what to do
                raise InputFileError([encoding_problem(path)]) from None
            if stream.error is not None:
                raise stream.error from None  # the file itself
            if mode == "rules" or getattr(exc, "pgcode", "")[:2] not in ("22", "23"):
                raise
            continue  # a value of the usual shape PostgreSQL refuses: check more
        stream.close()
        savepoint.commit()
        problems = sorted(stream.problems, key=lambda p: p[0].line)
        return StagedReadings(stream.received, problems, stream.way)
    raise AssertionError("unreachable: the rules pass returns or raises")


def stage_readings_csv(conn: Connection, path: Path) -> StagedReadings:
    """Check every row of a readings CSV; leave the good ones in the temporary table
    ``STAGED`` of this transaction (dropped at commit), ``position`` in file order."""
    conn.execute(
        text(
            f"create temporary table {STAGED} (position bigint generated always as identity"
            " (cache 100000), meter_id text not null, ts timestamptz not null,"
            " import_kwh float8 not null, export_kwh float8 not null) on commit drop"
        )
    )
    return copy_readings_csv(conn, path, STAGED)
