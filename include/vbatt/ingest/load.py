"""Bringing meter data into the raw layer: from the smart-me cloud and from dropped files.

Both paths end in the same append-only tables through the loader, so a reading means the
same whichever way it came. Every run is idempotent: the same reading twice is one row,
the same file twice is one load.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, text

from vbatt.ingest.accounting import ValueAccount
from vbatt.ingest.csv_inputs import (
    InputFileError,
    InputProblem,
    encoding_problem,
    file_problem,
    meter_id_problem,
    parse_readings_csv,
)
from vbatt.ingest.csv_stage import (
    STAGED,
    copy_readings_csv,
    estimate_rows,
    stage_readings_csv,
)
from vbatt.readings import Reading, Rejected
from vbatt.settings import get_settings
from vbatt.warehouse.loader import (
    append_energies,
    append_readings,
    append_staged_readings,
    begin_load,
    copy_readings_into_raw,
    finish_load,
    is_big_load,
    quarantine_once,
    record_account,
)
from vbatt.warehouse.migrate import check_schema_name

log = logging.getLogger(__name__)
QUARTER_HOUR = timedelta(minutes=15)
LOCAL_TIME = ZoneInfo("Europe/Zurich")  # zone-less MSCONS dates of Swiss senders


# --- the smart-me cloud -------------------------------------------------------------


@dataclass
class MeterOutcome:
    meter_id: str
    fetched_from: datetime | None = None
    received: int = 0
    rejected: int = 0
    error: str = ""


@dataclass
class IngestReport:
    start: datetime
    end: datetime
    meters: list[MeterOutcome] = field(default_factory=list)
    loaded: int = 0  # readings new to the warehouse (the rest were stored already)
    already_quarantined: int = 0  # refused values an earlier run quarantined: not stored again

    @property
    def failed(self) -> list[MeterOutcome]:
        return [m for m in self.meters if m.error]

    def summary(self) -> str:
        received = sum(m.received for m in self.meters)
        rejected = sum(m.rejected for m in self.meters)
        already = f" ({self.already_quarantined} already)" if self.already_quarantined else ""
        return (
            f"{len(self.meters)} meters, {received} readings received, {self.loaded} new,"
            f" {received - self.loaded} already stored, {rejected} quarantined{already},"
            f" {len(self.failed)} meters failed"
        )


class IngestError(RuntimeError):
    """Some meters could not be fetched; what the others brought is stored."""


def meters_to_ingest(
    engine: Engine,
    start: datetime,
    raw_schema: str = "raw",
    meter_range: tuple[str, str] | None = None,
) -> dict[str, datetime]:
    """Meters of batteries live in the window, with the earliest battery start on each:
    a meter seen for the first time is fetched from there (its history). ``meter_range``
    limits them to one shard (inclusive bounds in byte order, see ``vbatt.ingest.shards``)."""
    raw = check_schema_name(raw_schema)
    in_range = ""
    params: dict = {"start": start}
    if meter_range is not None:
        in_range = ' and meter_id collate "C" between :first and :last'
        params |= {"first": meter_range[0], "last": meter_range[1]}
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                f"select meter_id, min(start_date::timestamp at time zone timezone)"
                # every meter of every version (raw.batteries holds the newest one's)
                f" from (select meter_id, start_date, end_date, timezone from {raw}.batteries"
                f" union select v.meter_id, b.start_date, b.end_date, b.timezone"
                f" from {raw}.battery_versions v join {raw}.batteries b using (battery_id))"
                " as batteries"
                " where (end_date is null or end_date >= (:start at time zone timezone)::date)"
                f"{in_range}"
                ' group by meter_id order by meter_id collate "C"'
            ),
            params,
        )
        return {r[0]: r[1] for r in rows}


def _watermarks(engine: Engine, raw: str, source: str) -> dict[str, datetime]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(f"select meter_id, complete_until from {raw}.ingest_watermarks where source = :s"),
            {"s": source},
        )
        return {r[0]: r[1] for r in rows}


def fetch_window(
    start: datetime,
    end: datetime,
    lookback: timedelta,
    complete_until: datetime | None,
    max_catch_up: timedelta,
) -> datetime:
    """Where to start fetching: the window plus a lookback for late data, and further back
    to where the meter is complete when earlier runs missed data (or to its battery's
    start for a new meter), never more than max_catch_up before the window's end."""
    fetch_from = start - lookback
    if complete_until is not None and complete_until < fetch_from:
        fetch_from = max(complete_until, end - max_catch_up)
    return fetch_from


def ingest_smartme(
    engine: Engine,
    client,
    *,
    start: datetime,
    end: datetime,
    lookback: timedelta = timedelta(hours=2),
    max_catch_up: timedelta = timedelta(days=31),
    meter_ids: Iterable[str] | None = None,
    meter_range: tuple[str, str] | None = None,
    raw_schema: str = "raw",
    source: str = "smartme",
    progress: Callable[[str], None] | None = None,
) -> IngestReport:
    """Fetch [start - lookback, end] for every meter, then append it all as one load.

    A meter that fails (after the client's retries) does not stop the others; the report
    lists it and the caller decides (the Airflow task fails, so it is retried). A meter's
    watermark moves to ``end`` only when nothing of it was refused: a meter with refused
    values is fetched again from where it was complete on the next run (up to
    ``max_catch_up`` back), so a value the cloud sends properly later is not lost.
    ``meter_range`` restricts the run to one shard of the live meters: one load per shard.
    """
    raw = check_schema_name(raw_schema)
    if meter_ids is None:
        meters = meters_to_ingest(engine, start, raw, meter_range)
    else:
        meters = dict.fromkeys(meter_ids)
    marks = _watermarks(engine, raw, source)
    report = IngestReport(start, end)
    readings: list[Reading] = []
    rejected: list[Rejected] = []
    complete: list[str] = []
    for meter_id, since in meters.items():
        outcome = MeterOutcome(meter_id)
        report.meters.append(outcome)
        complete_until = marks.get(meter_id, since)
        outcome.fetched_from = fetch_window(start, end, lookback, complete_until, max_catch_up)
        try:
            result = client.readings(meter_id, outcome.fetched_from, end)
        except Exception as exc:  # noqa: BLE001 - reported per meter, raised by the caller
            outcome.error = str(exc)
            log.warning("meter %s: %s", meter_id, exc)
            continue
        outcome.received, outcome.rejected = len(result.readings), len(result.rejected)
        readings.extend(result.readings)
        rejected.extend(result.rejected)
        if not result.rejected:
            complete.append(meter_id)
        if progress:
            progress(meter_id)

    fetched = [m for m in report.meters if not m.error]
    if not fetched:
        return report
    with engine.begin() as conn:
        load_id = begin_load(conn, raw, source, f"{len(fetched)} meters ..{end.isoformat()}")
        received, report.loaded = append_readings(conn, raw, load_id, source, readings)
        # a value the cloud keeps sending is quarantined once, not on every run
        held = quarantine_once(conn, rejected, source=source, load_id=load_id, raw_schema=raw)
        report.already_quarantined = held.already
        finish_load(conn, raw, load_id, received, report.loaded, len(rejected))
        if complete:
            conn.execute(
                text(
                    f"insert into {raw}.ingest_watermarks (source, meter_id, complete_until)"
                    " values (:s, :m, :t) on conflict (source, meter_id) do update"
                    " set complete_until = greatest(ingest_watermarks.complete_until,"
                    " excluded.complete_until), updated_at = now()"
                ),
                [{"s": source, "m": meter_id, "t": end} for meter_id in complete],
            )
    return report


# --- dropped files --------------------------------------------------------------------


@dataclass
class FileOutcome:
    path: Path
    kind: str = ""
    status: str = ""  # loaded | refused | skipped (already loaded)
    reason: str = ""
    warnings: list[str] = field(default_factory=list)
    received: int = 0
    loaded: int = 0
    rejected: int = 0
    load_id: int | None = None
    account: ValueAccount = field(default_factory=ValueAccount)
    way: str = ""  # how a readings CSV was checked and loaded (csv_stage, loader)
    notes: list[str] = field(default_factory=list)  # how the reader read it, for the report
    quarantined_before: tuple[int, ...] = ()  # loads that hold values refused again

    def report(self) -> list[str]:
        """One headline and the per-register account, for the CLI and the DAG's log."""
        name = self.path.name
        if self.status == "refused":
            return [f"{name}: refused, nothing loaded: {self.reason}"]
        if self.status == "skipped":
            return [f"{name}: {self.reason}"]
        head = (
            f"{name}: loaded as load {self.load_id} ({self.kind}{', ' if self.way else ''}"
            f"{self.way}): {self.account.headline()};"
            f" {self.loaded} new rows, {self.received - self.loaded} already stored"
        )
        if not self.account.values_used:
            head += f". {self.account.nothing_usable()}"
        lines = [head, *(f"  {line}" for line in [*self.account.lines(), *self.notes])]
        if self.rejected:
            commands = "; ".join(f"vbatt quarantine rejected --load {n}" for n in self._held_by())
            lines.append(f"  where and what was refused: {commands}")
        return lines

    def _held_by(self) -> list[int]:
        """The loads whose quarantine holds this load's refused values: its own for those
        stored now, the earlier ones for those quarantined already."""
        stored = self.rejected > self.account.already_quarantined
        return sorted({*self.quarantined_before, *([self.load_id] if stored else [])})


@dataclass
class FileContent:
    """What a reader made of a file: rows for the warehouse and the account of every value."""

    readings: list[Reading] = field(default_factory=list)
    energies: list = field(default_factory=list)  # IntervalEnergy (mscons, sdat)
    rejected: list[Rejected] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # a reader's, once each: what to do
    notes: list[str] = field(default_factory=list)  # a reader's summary lines for the report
    account: ValueAccount = field(default_factory=ValueAccount)


def detect_kind(path: Path) -> str:
    with path.open("rb") as handle:  # the start only: a readings file may be gigabytes
        head = handle.read(2048).lstrip(b"\xef\xbb\xbf").lstrip()
    if head.startswith((b"UNA", b"UNB")):
        return "mscons"
    if head.startswith(b"<") and b"ValidatedMeteredData" in head:
        return "sdat"
    first_line = head.split(b"\n", 1)[0].decode("utf-8", "replace").lower()
    if "meter_id" in first_line and "timestamp" in first_line:
        return "readings_csv"
    return "unknown"


def _rejected_row(path: Path, problem: InputProblem, record: str) -> Rejected:
    """A bad CSV row for the quarantine: its record as written and its problem (a problem
    of the whole row, as too many fields, names no column)."""
    column = f"column {problem.column}: " if problem.column else ""
    return Rejected(
        meter_id=record.split(",", 1)[0] or None,
        raw=record,
        reason=f"{column}{problem.message}",
        where=f"{path.name}:{problem.line}",
    )


def _read_csv(path: Path) -> FileContent:
    readings, problems = parse_readings_csv(path)
    content = FileContent(readings=readings)
    content.rejected = [_rejected_row(path, p, record) for p, record in problems]
    content.account.use("import_kwh (import register)", len(readings))
    content.account.use("export_kwh (export register)", len(readings))
    return content


def _read_mscons(path: Path) -> FileContent:
    from vbatt.ingest import mscons

    # zone-less DTM formats (102, 203, 204, 610) are the sender's wall clock: Swiss 2.2e and
    # D:99A files write local time; 2.4c allows zone-less dates only for days (readings)
    interchange = mscons.read_mscons(path, naive_tz=LOCAL_TIME)
    readings, rejected = mscons.to_readings(interchange)
    ignored, unusable = mscons.ignored_and_unusable(interchange)
    content = FileContent(
        readings=readings, warnings=list(interchange.warnings), notes=list(interchange.notes)
    )
    content.account.ignored.update(ignored)
    content.account.use("import register (1.8.x readings)", len(readings))
    content.account.use("export register (2.8.x readings)", len(readings))
    content.rejected = rejected + unusable
    content.energies = quarter_hours(
        mscons.to_interval_energies(interchange), content.rejected, content.account
    )
    return content


def _read_sdat(path: Path) -> FileContent:
    from vbatt.ingest import sdat

    document = sdat.read_sdat(path)
    points = sdat.load_metering_points(get_settings().metering_points_file)
    energies, rejected, ignored = sdat.to_interval_energies(document, points)
    content = FileContent(
        rejected=rejected, warnings=list(document.warnings), notes=list(document.notes)
    )
    content.account.ignored.update(ignored)
    content.energies = quarter_hours(energies, content.rejected, content.account)
    return content


def quarter_hours(energies: list, rejected: list[Rejected], account: ValueAccount) -> list:
    """The interval energies the warehouse takes: UTC quarter hours.

    Finer values that tile a quarter hour exactly (5-minute, 1-minute profiles) are summed
    into it (a sum of substitutes is a substitute); a quarter hour with a part missing or
    overlapping, and coarser or misaligned intervals, are quarantined with the reason.
    Used values are counted per register in ``account``; rejections are appended to
    ``rejected`` (and counted by the caller).
    """
    from vbatt.ingest.mscons import IntervalEnergy, energy_record

    kept: list = []
    parts: dict[tuple, list] = defaultdict(list)
    for energy in energies:
        start, end = energy.interval_start, energy.interval_end
        if end - start == QUARTER_HOUR and not start.timestamp() % 900:
            kept.append(energy)
            account.use(_profile_label(energy))
        elif end - start < QUARTER_HOUR and _floor(start) == _floor(
            end - timedelta(microseconds=1)
        ):
            parts[(energy.meter_id, energy.register, _floor(start))].append(energy)
        else:
            rejected.append(_not_a_quarter_hour(energy))
    for (meter_id, register, begin), group in sorted(parts.items()):
        group.sort(key=lambda e: e.interval_start)
        edges = [begin] + [e.interval_end for e in group]
        tiled = [e.interval_start for e in group] == edges[:-1] and edges[
            -1
        ] == begin + QUARTER_HOUR
        if not tiled:
            for energy in group:
                reason = (
                    f"the values of the quarter hour {begin.isoformat()} do not cover it"
                    " exactly (a part missing or overlapping); a quarter hour needs them all"
                )
                rejected.append(Rejected(meter_id, energy_record(energy), reason, energy.where))
            continue
        kept.append(
            IntervalEnergy(
                meter_id=meter_id,
                interval_start=begin,
                interval_end=begin + QUARTER_HOUR,
                register=register,
                kwh=sum(e.kwh for e in group),
                substitute=any(e.substitute for e in group),
                where=group[0].where,
                obis=group[0].obis,
            )
        )
        account.use(_profile_label(group[0]), len(group))
    return kept


def _floor(ts: datetime) -> datetime:
    return datetime.fromtimestamp(ts.timestamp() // 900 * 900, UTC)


def _profile_label(energy) -> str:
    return f"{energy.obis or energy.register} ({energy.register} load profile)"


def _not_a_quarter_hour(energy) -> Rejected:
    from vbatt.ingest.mscons import energy_record

    start, end = energy.interval_start, energy.interval_end
    return Rejected(
        meter_id=energy.meter_id,
        raw=energy_record(energy),
        reason=f"interval {start.isoformat()}..{end.isoformat()} is not a UTC quarter hour",
        where=energy.where,
    )


def _check_meter_ids(content: FileContent) -> None:
    """Refuse an MSCONS or SDAT file with a meter id that cannot be stored
    (``meter_id_problem``: too long for the readings' index, a control character): a
    ValueError naming where, instead of the database's error halfway through the load.
    Refused whole rather than quarantined: such an id means the file was not read as
    its sender meant, and its account (counted by the reader) stays true."""
    for item in (*content.readings, *content.energies):
        why = meter_id_problem(item.meter_id)
        if why is not None:
            where = getattr(item, "where", "") or ""
            raise ValueError(f"{where + ': ' if where else ''}meter id {why}")


def _refusal(path: Path, exc: Exception) -> str:
    """A refused file's reason as the report prints it after the file's name: a problem of
    the whole file without the path again, a decoding error with the line and byte."""
    if isinstance(exc, UnicodeDecodeError):
        return encoding_problem(path).message
    if isinstance(exc, InputFileError) and len(exc.problems) == 1 and not exc.problems[0].line:
        return exc.problems[0].message
    return str(exc).removeprefix(f"{path.name}: ")  # the report names the file already


READERS = {"readings_csv": _read_csv, "mscons": _read_mscons, "sdat": _read_sdat}
SOURCES = {"readings_csv": "csv", "mscons": "mscons", "sdat": "sdat"}


def ingest_file(
    engine: Engine, path: Path, *, raw_schema: str = "raw", refuse_empty: bool = False
) -> FileOutcome:
    """Load one file completely or not at all, and record it in raw.files either way
    (but a path that is no readable file: nothing to identify it by; it is refused).

    A file without a single usable value loads (its quarantined values and its account are
    kept, nothing is lost) and says why in its report; with ``refuse_empty`` it is refused
    instead, with the same reasons.
    """
    raw = check_schema_name(raw_schema)
    outcome = FileOutcome(path)
    found = file_problem(path)  # missing, a folder, empty, UTF-16: say so, read nothing
    if found is not None:
        outcome.status, outcome.reason = "refused", found.message
        if path.is_file() and os.access(path, os.R_OK):
            _record_file(engine, raw, FileDigest(path), path, outcome)
        return outcome
    digest = FileDigest(path)
    with engine.connect() as conn:
        # only a file as big as one loaded before can be that file: the digest of any
        # other is not waited for here, it is computed beside the load
        known_size = conn.execute(
            text(
                f"select exists (select from {raw}.files where status = 'loaded'"
                " and coalesce(bytes, :n) = :n)"
            ),
            {"n": digest.size},
        ).scalar_one()
        seen = (
            known_size
            and conn.execute(
                text(f"select status, load_id from {raw}.files where sha256 = :h"),
                {"h": digest.value()},
            ).first()
        )
    if seen and seen.status == "loaded":
        outcome.status, outcome.load_id = "skipped", seen.load_id
        outcome.reason = f"already loaded (load {seen.load_id})"
        return outcome

    outcome.kind = detect_kind(path)
    if outcome.kind == "readings_csv":
        return _ingest_readings_csv(engine, raw, digest, path, outcome)
    reader = READERS.get(outcome.kind)
    try:
        if reader is None:
            raise ValueError(
                "neither a readings CSV (header meter_id,timestamp,...), MSCONS (UNA/UNB)"
                " nor SDAT-CH ValidatedMeteredData"
            )
        content = reader(path)
        _check_meter_ids(content)
    except (InputFileError, ValueError, UnicodeDecodeError) as exc:
        outcome.status, outcome.reason = "refused", _refusal(path, exc)
        _record_file(engine, raw, digest, path, outcome)
        return outcome
    outcome.warnings, outcome.notes = content.warnings, content.notes
    outcome.account = content.account
    content.account.quarantine(content.rejected)
    if refuse_empty and not content.account.values_used:
        outcome.status, outcome.reason = "refused", content.account.nothing_usable()
        _record_file(engine, raw, digest, path, outcome)
        return outcome

    source = SOURCES[outcome.kind]
    with engine.begin() as conn:
        load_id = begin_load(conn, raw, source, path.name)
        received, loaded = append_readings(conn, raw, load_id, source, content.readings)
        if content.energies:
            more_received, more_loaded = append_energies(
                conn, raw, load_id, source, content.energies
            )
            received, loaded = received + more_received, loaded + more_loaded
        _quarantine(conn, raw, content.rejected, source, load_id, outcome)
        finish_load(conn, raw, load_id, received, loaded, len(content.rejected))
        record_account(conn, raw, load_id, content.account.as_dict())
        outcome.status, outcome.load_id = "loaded", load_id
        outcome.received, outcome.loaded = received, loaded
        outcome.rejected = len(content.rejected)
        _record_file(conn, raw, digest, path, outcome)
    return outcome


def _ingest_readings_csv(
    engine: Engine, raw: str, digest: FileDigest, path: Path, outcome: FileOutcome
) -> FileOutcome:
    """A readings CSV checked on its way into the warehouse (``csv_stage``) and loaded in
    one transaction, bad rows quarantined with their reason. A file bigger than what is
    stored goes by COPY straight into the raw table (``copy_readings_into_raw``); else,
    or when that cannot be (the table busy, a row not new), through a staging table."""
    source = "csv"
    try:
        with engine.begin() as conn:
            load_id = begin_load(conn, raw, source, path.name)
            staged = None
            if is_big_load(conn, raw, estimate_rows(path)):
                staged = copy_readings_into_raw(
                    conn, raw, load_id, source, lambda table: copy_readings_csv(conn, path, table)
                )
            if staged is not None:
                loaded, outcome.way = staged.received, f"{staged.way}, copied into raw"
            else:
                staged = stage_readings_csv(conn, path)
                loaded = append_staged_readings(conn, raw, load_id, source, STAGED, staged.received)
                outcome.way = f"{staged.way}, staged"
            rejected = [_rejected_row(path, p, record) for p, record in staged.problems]
            outcome.account.use("import_kwh (import register)", staged.received)
            outcome.account.use("export_kwh (export register)", staged.received)
            outcome.account.quarantine(rejected)
            _quarantine(conn, raw, rejected, source, load_id, outcome)
            finish_load(conn, raw, load_id, staged.received, loaded, len(rejected))
            record_account(conn, raw, load_id, outcome.account.as_dict())
            outcome.status, outcome.load_id = "loaded", load_id
            outcome.received, outcome.loaded = staged.received, loaded
            outcome.rejected = len(rejected)
            _record_file(conn, raw, digest, path, outcome)
    except (InputFileError, ValueError, UnicodeDecodeError) as exc:
        outcome.status, outcome.reason = "refused", _refusal(path, exc)
        outcome.received = outcome.loaded = outcome.rejected = 0
        outcome.load_id, outcome.way, outcome.quarantined_before = None, "", ()
        outcome.account = ValueAccount()
        _record_file(engine, raw, digest, path, outcome)
    return outcome


def _quarantine(
    conn, raw: str, rejected: list[Rejected], source: str, load_id: int, outcome: FileOutcome
) -> None:
    """Quarantine a file's refused values once: those an earlier load of the source holds
    already (the file re-sent with other bytes) are counted in the account, not stored."""
    if not rejected:
        return
    held = quarantine_once(conn, rejected, source=source, load_id=load_id, raw_schema=raw)
    outcome.account.already_quarantined = held.already
    outcome.quarantined_before = held.earlier_loads


class FileDigest:
    """A file's size at once, and its sha256 computed in a thread of its own: hashlib
    releases the GIL, so a big file's hash (0.3 s for 340 MB) runs beside its COPY on the
    other core instead of before it."""

    def __init__(self, path: Path):
        self.size = path.stat().st_size
        self._digest: str | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._hash, args=(path,), daemon=True)
        self._thread.start()

    def _hash(self, path: Path) -> None:
        try:
            with path.open("rb") as handle:
                self._digest = hashlib.file_digest(handle, "sha256").hexdigest()
        except BaseException as exc:  # noqa: BLE001 - raised where the value is asked for
            self._error = exc

    def value(self) -> str:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._digest


def _record_file(target, raw: str, digest: FileDigest, path: Path, outcome: FileOutcome) -> None:
    statement = text(
        f"insert into {raw}.files (sha256, bytes, file_name, kind, status, reason, warnings,"
        " load_id, values_used, values_ignored, values_quarantined, account)"
        " values (:h, :b, :n, :k, :s, :r, :w, :l, :used, :ignored, :quarantined,"
        " cast(:account as jsonb)) on conflict (sha256) do update set"
        " bytes = excluded.bytes,"
        " status = excluded.status, reason = excluded.reason, warnings = excluded.warnings,"
        " load_id = excluded.load_id, values_used = excluded.values_used,"
        " values_ignored = excluded.values_ignored,"
        " values_quarantined = excluded.values_quarantined, account = excluded.account,"
        " received_at = now()"
    )
    account = outcome.account
    params = {
        "h": digest.value(),
        "b": digest.size,
        "n": path.name,
        "k": outcome.kind or "unknown",
        "s": outcome.status,
        "r": outcome.reason,
        "w": "\n".join([*outcome.warnings, *outcome.notes]),
        "l": outcome.load_id,
        "used": account.values_used,
        "ignored": account.values_ignored,
        "quarantined": account.values_quarantined,
        "account": json.dumps(account.as_dict(), sort_keys=True),
    }
    if isinstance(target, Engine):
        with target.begin() as conn:
            conn.execute(statement, params)
    else:
        target.execute(statement, params)


def process_drop_folder(
    engine: Engine, drop_dir: Path, *, raw_schema: str = "raw", refuse_empty: bool = False
) -> list[FileOutcome]:
    """Ingest every file in the drop folder; move it to loaded/ or refused/ (with a reason).

    ``refuse_empty`` (the setting ``VBATT_DROP_REFUSE_EMPTY``) refuses files without a single
    usable value instead of loading them with their account.
    """
    outcomes = []
    for path in sorted(p for p in drop_dir.iterdir() if p.is_file() and not p.name.startswith(".")):
        outcome = ingest_file(engine, path, raw_schema=raw_schema, refuse_empty=refuse_empty)
        destination = drop_dir / ("refused" if outcome.status == "refused" else "loaded")
        destination.mkdir(exist_ok=True)
        moved = destination / path.name
        shutil.move(str(path), moved)
        if outcome.status == "refused":
            moved.with_name(moved.name + ".reason.txt").write_text(outcome.reason + "\n")
        outcome.path = moved
        outcomes.append(outcome)
    return outcomes
