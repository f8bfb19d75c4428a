"""Battery terms over time (rule book, "Configuration over time"), written and read.

Every path that changes a battery goes through here: the batteries CSV (``vbatt
batteries``, ``vbatt simulate``, :func:`import_batteries`), the write API and the portal.
So the rules hold whoever writes: fixed fields never change, a version is never edited
(a correction is a newer record with the same ``valid_from``), and nothing a partner was
already sent moves unless the caller says ``backdate``.

``raw.battery_versions`` is append-only; per (battery, valid_from) the newest record is in
force. ``raw.batteries`` holds the fixed fields, the end_date and a copy of the newest
version's fields (see migration 0007). Every function takes a SQLAlchemy ``Connection``
inside the caller's transaction and changes nothing when it raises: the caller rolls back.

"Already issued" is judged from ``raw.export_files``: a change is backdated when its first
affected instant (00:00 of ``valid_from`` in the battery's timezone; for a new battery, of
its start_date) lies before the end of the latest period issued to the battery's partner.
A new battery counts too: the partner's files of those periods went out without its
energy, and nothing would ever send it. Period labels (``2026-11-30``, ``2026-11``) are
read as local dates of the battery's timezone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import Connection, text

from vbatt.battery_config import (
    BATTERY_FIELDS,
    DEFAULT_TIMEZONE,
    FIXED_FIELDS,
    VERSIONED_FIELDS,
    field_problems,
    is_number,
    shown,
    shown_name,
    value_problem,
)
from vbatt.warehouse.migrate import check_schema_name

_DATE_FIELDS = ("start_date", "reset_date", "end_date", "valid_from")
_NUMBER_FIELDS = ("capacity_kwh", "initial_level_kwh")
_TEXT_FIELDS = (
    "battery_id",
    "name",
    "partner_id",
    "customer_id",
    "meter_id",
    "reset_repeat",
    "timezone",
)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FIXED_MESSAGE = "is fixed for the battery's life (a new owner or utility means a new battery)"


class VersionError(ValueError):
    """A change refused; ``str()`` is a message for people. Nothing was written."""


class BatteryExists(VersionError):
    pass


class BatteryNotFound(VersionError):
    pass


class BatteryInvalid(VersionError):
    """``problems``: field -> message, every bad field at once."""

    def __init__(self, problems: dict[str, str], battery_id: str | None = None):
        self.problems = dict(problems)
        who = f"battery {shown(battery_id)}: " if battery_id else ""
        super().__init__(who + "; ".join(f"{f}: {m}" for f, m in self.problems.items()))


class VersionExists(VersionError):
    """``detail`` says what clashes; ``str()`` adds how a Python caller goes on. Callers
    with their own way to say replace (the API's ``"replace": true``) add their own hint
    to ``detail`` instead, so a message never carries two."""

    def __init__(self, detail: str):
        self.detail = detail
        super().__init__(f"{detail}; replace=True records a new one that supersedes it")


class BackdatedChange(VersionError):
    """The change reaches into periods already issued; ``issued_until`` is the local date
    up to which (exclusive) the partner was sent files, ``affected_from`` the change's
    first day. ``detail`` says what; ``str()`` adds the hint for ``vbatt batteries`` (the
    CLI prints it as it is); the API adds its own to ``detail``."""

    def __init__(self, detail: str, issued_until: date, affected_from: date):
        self.detail = detail
        self.issued_until = issued_until
        self.affected_from = affected_from
        super().__init__(
            f"{detail}; re-run with --backdate (backdate=True in Python) to record it:"
            f" the ledger computes it from {affected_from}, and the partner's issued periods"
            " from then on are issued again (those whose values change as corrections)"
        )


# -- values -------------------------------------------------------------------------------


def parse_fields(values: dict, problems: dict[str, str]) -> dict:
    """Typed values of a battery or version body (JSON or parsed CSV): dates as ``date`` or
    ISO strings, numbers as numbers. Bad ones land in ``problems`` (field -> message)."""
    out: dict = {}
    for name, value in values.items():
        if name in _DATE_FIELDS:
            if value is None or value == "":
                out[name] = None
            elif isinstance(value, date) and not isinstance(value, datetime):
                out[name] = value
            elif isinstance(value, str) and _ISO_DATE.match(value.strip()):
                try:
                    out[name] = date.fromisoformat(value.strip())
                except ValueError:
                    problems[name] = f"{shown(value)} is not a date (YYYY-MM-DD)"
            else:
                problems[name] = f"{shown(value)} is not a date (YYYY-MM-DD)"
        elif name in _NUMBER_FIELDS:
            if value is None:
                out[name] = None
            elif is_number(value):
                out[name] = float(value)
            else:
                problems[name] = f"{shown(value)} is not a finite number"
        elif name in _TEXT_FIELDS:
            if value is None or (isinstance(value, str) and not value.strip()):
                out[name] = None
            elif isinstance(value, str):
                out[name] = value.strip()
            else:
                problems[name] = f"{shown(value)} is not text"
        else:
            problems[shown_name(name)] = "unknown field"
    return out


def _rule_problems(row: dict, problems: dict[str, str], only: Iterable[str] | None = None) -> None:
    only = set(only) if only is not None else None
    for name, message in field_problems(row):
        if name not in problems and (only is None or name in only):
            problems[name] = message


def _value_problems(values: dict, problems: dict[str, str]) -> None:
    """The shared rules for values outside a battery row (valid_from, end_date, reason)."""
    for name, value in values.items():
        problem = value_problem(name, value)
        if problem and name not in problems:
            problems[name] = problem


# -- reading ------------------------------------------------------------------------------


def _battery(conn: Connection, raw: str, battery_id: str, lock: bool = False) -> dict | None:
    row = conn.execute(
        text(
            f"select {', '.join(BATTERY_FIELDS)} from {raw}.batteries where battery_id = :b"
            + (" for update" if lock else "")
        ),
        {"b": battery_id},
    ).first()
    return dict(row._mapping) if row else None


def _require(conn: Connection, raw: str, battery_id: str, lock: bool = False) -> dict:
    battery = _battery(conn, raw, battery_id, lock)
    if battery is None:
        raise BatteryNotFound(f"no battery {battery_id!r}")
    return battery


_VERSION_COLUMNS = (
    "record_id, valid_from, name, meter_id, capacity_kwh, reset_date, reset_repeat,"
    " recorded_at, recorded_by, reason"
)


def _records(conn: Connection, raw: str, battery: dict) -> list[dict]:
    """Every record of the battery, by valid_from and recording order. A battery written
    straight into raw.batteries (SQL, no record) reads as one version from its start."""
    rows = [
        dict(r._mapping)
        for r in conn.execute(
            text(
                f"select {_VERSION_COLUMNS} from {raw}.battery_versions where battery_id = :b"
                " order by valid_from, record_id"
            ),
            {"b": battery["battery_id"]},
        )
    ]
    return rows or _unrecorded(battery)


def _unrecorded(battery: dict) -> list[dict]:
    return [
        {
            "record_id": None,
            "valid_from": battery["start_date"],
            **{f: battery[f] for f in VERSIONED_FIELDS},
            "recorded_at": None,
            "recorded_by": "raw.batteries",
            "reason": None,
        }
    ]


def _in_force(records: list[dict], end_date: date | None) -> list[dict]:
    newest: dict[date, dict] = {}
    counts: dict[date, int] = {}
    for record in records:  # in recording order per valid_from: the last one wins
        newest[record["valid_from"]] = record
        counts[record["valid_from"]] = counts.get(record["valid_from"], 0) + 1
    out = []
    starts = sorted(newest)
    for i, valid_from in enumerate(starts):
        following = starts[i + 1] if i + 1 < len(starts) else end_date
        out.append(
            {
                **newest[valid_from],
                "valid_until": following,
                "supersedes": counts[valid_from] - 1,
            }
        )
    return out


def list_versions(conn: Connection, battery_id: str, *, raw_schema: str = "raw") -> list[dict]:
    """The versions in force, by valid_from: the versioned fields, valid_from, valid_until
    (the next version's valid_from, else the end_date, else None), recorded_at/_by, reason
    and ``supersedes`` (how many earlier records of the same valid_from it replaced)."""
    raw = check_schema_name(raw_schema)
    battery = _require(conn, raw, battery_id)
    return _in_force(_records(conn, raw, battery), battery["end_date"])


def list_versions_many(
    conn: Connection, battery_ids: Iterable[str], *, raw_schema: str = "raw"
) -> dict[str, list[dict]]:
    """:func:`list_versions` of many batteries in two queries (the live view of a long
    list); ids of no battery are left out."""
    raw = check_schema_name(raw_schema)
    ids = {"ids": sorted(set(battery_ids))}
    batteries = {
        r.battery_id: dict(r._mapping)
        for r in conn.execute(
            text(
                f"select {', '.join(BATTERY_FIELDS)} from {raw}.batteries"
                " where battery_id = any(cast(:ids as text[]))"
            ),
            ids,
        )
    }
    records: dict[str, list[dict]] = {}
    for r in conn.execute(
        text(
            f"select battery_id, {_VERSION_COLUMNS} from {raw}.battery_versions"
            " where battery_id = any(cast(:ids as text[])) order by valid_from, record_id"
        ),
        ids,
    ):
        row = dict(r._mapping)
        records.setdefault(row.pop("battery_id"), []).append(row)
    return {
        b: _in_force(records.get(b) or _unrecorded(battery), battery["end_date"])
        for b, battery in batteries.items()
    }


def version_history(conn: Connection, battery_id: str, *, raw_schema: str = "raw") -> list[dict]:
    """Every record ever made (superseded ones too), by valid_from and recording order, each
    with ``in_force``; then the end_date changes are in :func:`end_date_history`."""
    raw = check_schema_name(raw_schema)
    battery = _require(conn, raw, battery_id)
    records = _records(conn, raw, battery)
    in_force = {v["record_id"] for v in _in_force(records, battery["end_date"])}
    return [{**r, "in_force": r["record_id"] in in_force} for r in records]


def end_date_history(conn: Connection, battery_id: str, *, raw_schema: str = "raw") -> list[dict]:
    raw = check_schema_name(raw_schema)
    _require(conn, raw, battery_id)
    return [
        dict(r._mapping)
        for r in conn.execute(
            text(
                f"select end_date, recorded_at, recorded_by, reason from {raw}.battery_end_dates"
                " where battery_id = :b order by record_id"
            ),
            {"b": battery_id},
        )
    ]


def get_battery(conn: Connection, battery_id: str, *, raw_schema: str = "raw") -> dict:
    """The battery's fields (the versioned ones of its newest version) and its versions."""
    raw = check_schema_name(raw_schema)
    battery = _require(conn, raw, battery_id)
    return {**battery, "versions": _in_force(_records(conn, raw, battery), battery["end_date"])}


# -- what a partner was already sent -------------------------------------------------------


def issued_until(conn: Connection, partner_id: str, *, raw_schema: str = "raw") -> date | None:
    """The local date after the latest period issued to the partner (None: nothing issued).

    Two index probes on (partner_id, period_label): the largest label, and the month of it
    (a month label sorts before its days and may end later than the largest day)."""
    raw = check_schema_name(raw_schema)
    top = conn.execute(
        text(
            f"select period_label from {raw}.export_files where partner_id = :p"
            " order by period_label desc limit 1"
        ),
        {"p": partner_id},
    ).scalar()
    if top is None:
        return None
    ends = [_label_end(top)]
    month = conn.execute(
        text(
            f"select period_label from {raw}.export_files"
            " where partner_id = :p and period_label = :m limit 1"
        ),
        {"p": partner_id, "m": top[:7]},
    ).scalar()
    if month is not None:
        ends.append(_label_end(month))
    return max(ends)


def _label_end(label: str) -> date:
    if len(label) == 10:
        return date.fromordinal(date.fromisoformat(label).toordinal() + 1)
    year, month = int(label[:4]), int(label[5:7])
    return date(year + month // 12, month % 12 + 1, 1)


def _check_backdated(
    conn: Connection, raw: str, battery: dict, affected_from: date, what: str, backdate: bool
) -> None:
    """Refuse a change that reaches into issued periods, or with ``backdate`` record that
    those periods are to be issued again (raw.reissue_requests; daily_settlement does it)."""
    until = issued_until(conn, battery["partner_id"], raw_schema=raw)
    if until is None or affected_from >= until:
        return
    if backdate:
        conn.execute(
            text(
                f"insert into {raw}.reissue_requests (partner_id, battery_id, from_date, reason)"
                " values (:p, :b, :d, :r)"
            ),
            {"p": battery["partner_id"], "b": battery["battery_id"], "d": affected_from, "r": what},
        )
        return
    raise BackdatedChange(
        f"battery {battery['battery_id']!r}: {what} reaches into periods already issued"
        f" to partner {battery['partner_id']!r} (up to {until}, exclusive)",
        until,
        affected_from,
    )


# -- one partner per meter and period ------------------------------------------------------

# the lock, and the batteries of other partners that ever had the meter (batteries'
# current terms or any version record), in one round trip: nearly always none, and a bulk
# import of thousands of batteries then pays one statement each. The array makes the
# statement one row, so the lock is taken whatever the batteries hold.
_METER_CANDIDATES = """
with lock as materialized (select pg_advisory_xact_lock(hashtext(:k)))
select array(
    select b.battery_id from {raw}.batteries b
    where b.partner_id <> :partner
      and (b.meter_id = :meter or b.battery_id in (
          select battery_id from {raw}.battery_versions where meter_id = :meter
      ))
    order by b.battery_id
) from lock
"""


def _meter_problem(
    conn: Connection, raw: str, partner_id: str, meter_id: str, since: date, until: date | None
) -> str | None:
    """A meter's readings belong to one partner at a time: a battery of another partner
    using the meter in an overlapping period would read that household's imports and
    exports. Batteries of the same partner may share a meter (offers side by side), and a
    meter may move to another partner from the day the first one's battery ends (a
    customer switching supplier). The message names nothing of the other partner.

    An advisory lock per meter (held to the end of the caller's transaction) keeps two
    partners' concurrent writes from both passing."""
    candidates = conn.execute(
        text(_METER_CANDIDATES.format(raw=raw)),
        {"k": f"vbatt-meter:{raw}:{meter_id}", "partner": partner_id, "meter": meter_id},
    ).scalar_one()
    # their versions in force, as list_versions reads them (a battery without records is
    # one version from its start), each valid until the next one or the battery's end
    overlapping = [
        version
        for other in (_require(conn, raw, battery_id) for battery_id in candidates)
        for version in _in_force(_records(conn, raw, other), other["end_date"])
        if version["meter_id"] == meter_id
        and version["valid_from"] < (until or date.max)
        and (version["valid_until"] or date.max) > since
    ]
    if not overlapping:
        return None
    period = f"from {since} until {until}" if until else f"from {since} on"
    return (
        f"{shown(meter_id)} is not available to the batteries of partner {shown(partner_id)}"
        f" {period}; ask the utility"
    )


# -- writing ------------------------------------------------------------------------------


def _insert_version(
    conn: Connection,
    raw: str,
    battery_id: str,
    valid_from: date,
    values: dict,
    recorded_by: str,
    reason: str | None,
) -> None:
    conn.execute(
        text(
            f"insert into {raw}.battery_versions (battery_id, valid_from, name, meter_id,"
            " capacity_kwh, reset_date, reset_repeat, recorded_by, reason) values (:b, :v,"
            " :name, :meter_id, :capacity_kwh, :reset_date, :reset_repeat, :by, :reason)"
        ),
        {
            "b": battery_id,
            "v": valid_from,
            **{f: values[f] for f in VERSIONED_FIELDS},
            "by": recorded_by,
            "reason": reason,
        },
    )
    _copy_newest(conn, raw, battery_id)


def _copy_newest(conn: Connection, raw: str, battery_id: str) -> None:
    """raw.batteries keeps the newest version's fields for the readers of the battery."""
    sets = ", ".join(f"{f} = newest.{f}" for f in VERSIONED_FIELDS)
    conn.execute(
        text(
            f"update {raw}.batteries as b set {sets}, updated_at = now() from ("
            f"  select {', '.join(VERSIONED_FIELDS)} from {raw}.battery_versions"
            "  where battery_id = :b order by valid_from desc, record_id desc limit 1"
            ") as newest where b.battery_id = :b"
        ),
        {"b": battery_id},
    )


def _record_end_date(
    conn: Connection, raw: str, battery_id: str, end: date | None, by: str, reason: str | None
) -> None:
    conn.execute(
        text(
            f"insert into {raw}.battery_end_dates (battery_id, end_date, recorded_by, reason)"
            " values (:b, :e, :by, :reason)"
        ),
        {"b": battery_id, "e": end, "by": by, "reason": reason},
    )


def _with_defaults(row: dict) -> dict:
    battery_id = row.get("battery_id")
    return {
        **row,
        "name": row.get("name") or battery_id,
        "customer_id": row.get("customer_id") or battery_id,
        "reset_repeat": row.get("reset_repeat") or "yearly",
        "timezone": row.get("timezone") or DEFAULT_TIMEZONE,
        "initial_level_kwh": row.get("initial_level_kwh") or 0.0,
    }


def create_battery(
    conn: Connection,
    battery: dict,
    *,
    recorded_by: str,
    reason: str | None = None,
    backdate: bool = False,
    raw_schema: str = "raw",
) -> dict:
    """Record a new battery and its first version (valid_from = start_date).

    ``battery``: the batteries CSV's fields (dates as dates or ISO strings, numbers as
    numbers); an optional ``valid_from`` must equal the start_date. Empty name/customer
    default to the battery id, reset_repeat to yearly, timezone to Europe/Zurich, the
    initial level to 0; capacity_kwh is required (0 = unlimited). A start_date inside
    periods already issued to the partner is a :class:`BackdatedChange` unless
    ``backdate`` (checked last: a bad field or a taken id is the refusal to report)."""
    raw = check_schema_name(raw_schema)
    problems: dict[str, str] = {}
    row = _with_defaults(parse_fields(dict(battery), problems))
    valid_from = row.pop("valid_from", None)
    if not row.get("partner_id"):
        problems.setdefault("partner_id", "is required")
    _rule_problems(row, problems)
    _value_problems({"reason": reason}, problems)
    start = row.get("start_date")
    if valid_from is not None and isinstance(start, date) and valid_from != start:
        problems["valid_from"] = f"{valid_from}: the first version starts on the start_date {start}"
    battery_id = row.get("battery_id")
    if not problems and _battery(conn, raw, battery_id) is not None:
        # before the meter: a taken id is the clash to report (and the insert below
        # still catches a concurrent one)
        raise BatteryExists(f"battery {battery_id!r} exists already")
    if not problems:
        taken = _meter_problem(
            conn, raw, row["partner_id"], row["meter_id"], start, row.get("end_date")
        )
        if taken:
            problems["meter_id"] = taken
    if problems:
        raise BatteryInvalid(problems, battery_id)
    row = {f: row.get(f) for f in BATTERY_FIELDS}
    _check_backdated(conn, raw, row, start, f"a new battery starting on {start}", backdate)
    created = conn.execute(
        text(
            f"insert into {raw}.batteries ({', '.join(BATTERY_FIELDS)}) values"
            f" ({', '.join(':' + f for f in BATTERY_FIELDS)})"
            " on conflict (battery_id) do nothing returning battery_id"
        ),
        row,
    ).first()
    if created is None:
        raise BatteryExists(f"battery {battery_id!r} exists already")
    _insert_version(conn, raw, battery_id, row["start_date"], row, recorded_by, reason)
    if row["end_date"] is not None:
        _record_end_date(conn, raw, battery_id, row["end_date"], recorded_by, reason)
    return get_battery(conn, battery_id, raw_schema=raw)


def add_version(
    conn: Connection,
    battery_id: str,
    valid_from: date,
    changes: dict,
    *,
    recorded_by: str,
    reason: str | None = None,
    replace: bool = False,
    backdate: bool = False,
    raw_schema: str = "raw",
) -> dict:
    """Record a version from ``valid_from`` (a local date; a date or an ISO string).

    Fields left out of ``changes`` carry over from the version in force before
    ``valid_from`` (with ``replace``: from the record it supersedes). Returns the version
    as :func:`list_versions` shows it."""
    raw = check_schema_name(raw_schema)
    battery = _require(conn, raw, battery_id, lock=True)
    problems: dict[str, str] = {}
    valid_from = parse_fields({"valid_from": valid_from}, problems).get("valid_from")
    if valid_from is None and "valid_from" not in problems:
        problems["valid_from"] = "is required"
    _value_problems({"valid_from": valid_from, "reason": reason}, problems)
    changes = dict(changes)
    if "valid_from" in changes:
        again = parse_fields({"valid_from": changes.pop("valid_from")}, {}).get("valid_from")
        if again != valid_from:
            problems["valid_from"] = "given twice with different dates"
    for name in list(changes):
        if name in FIXED_FIELDS:
            problems[name] = _FIXED_MESSAGE
            del changes[name]
        elif name == "end_date":
            problems[name] = "is not versioned: set, move or clear it on the battery"
            del changes[name]
    parsed = parse_fields(changes, problems)
    start, end = battery["start_date"], battery["end_date"]
    if valid_from is not None:
        if valid_from < start:
            problems["valid_from"] = f"{valid_from} is before the start_date {start}"
        elif end is not None and valid_from >= end:
            problems["valid_from"] = f"{valid_from} is on or after the end_date {end}"
    if problems:
        raise BatteryInvalid(problems, battery_id)
    versions = _in_force(_records(conn, raw, battery), end)
    existing = next((v for v in versions if v["valid_from"] == valid_from), None)
    if existing is not None and not replace:
        if existing["recorded_at"] is None:  # a battery written straight into raw.batteries
            recorded = "its terms from the start, stored without a version record"
        else:
            recorded = (
                f"recorded {existing['recorded_at']:%Y-%m-%d %H:%M} by {existing['recorded_by']}"
            )
        raise VersionExists(
            f"battery {battery_id!r} has a version from {valid_from} already ({recorded})"
        )
    base = existing or [v for v in versions if v["valid_from"] < valid_from][-1]
    values = {f: base[f] for f in VERSIONED_FIELDS}
    values.update(parsed)
    values["reset_repeat"] = values["reset_repeat"] or "yearly"
    if values["name"] is None:
        values["name"] = battery_id
    first = valid_from == start
    row = {
        **battery,
        **values,
        "valid_from": valid_from,
        "initial_level_kwh": battery["initial_level_kwh"] if first else 0.0,
    }
    _rule_problems(row, problems, only=(*VERSIONED_FIELDS, "initial_level_kwh"))
    if "initial_level_kwh" in problems:  # the first version's capacity is below the level
        problems["capacity_kwh"] = (
            f"{values['capacity_kwh']:g} is below the initial level"
            f" {battery['initial_level_kwh']:g} of the start"
        )
        del problems["initial_level_kwh"]
    if not problems and values["meter_id"] != base["meter_id"]:
        # the version runs until the next one in force, else to the battery's end; the
        # same meter as the version it follows (or replaces) covers no new period
        later = [v["valid_from"] for v in versions if v["valid_from"] > valid_from]
        until = later[0] if later else end
        taken = _meter_problem(
            conn, raw, battery["partner_id"], values["meter_id"], valid_from, until
        )
        if taken:
            problems["meter_id"] = taken
    if problems:
        raise BatteryInvalid(problems, battery_id)
    _check_backdated(conn, raw, battery, valid_from, f"a version from {valid_from}", backdate)
    if versions[0]["record_id"] is None:
        # a battery written straight into raw.batteries reads as one version from its
        # start only while it has no record: keep that version as a record first, or the
        # new one would be its only version and the start's terms would be lost
        _insert_version(
            conn,
            raw,
            battery_id,
            start,
            versions[0],
            "raw.batteries",
            "the configuration before its first recorded version",
        )
    _insert_version(conn, raw, battery_id, valid_from, values, recorded_by, reason)
    battery = _battery(conn, raw, battery_id)
    versions = _in_force(_records(conn, raw, battery), end)
    return next(v for v in versions if v["valid_from"] == valid_from)


def set_end_date(
    conn: Connection,
    battery_id: str,
    end_date: date | None,
    *,
    recorded_by: str,
    reason: str | None = None,
    backdate: bool = False,
    raw_schema: str = "raw",
) -> dict:
    """Set, move or clear (None) the end_date: the battery stops at 00:00 local that day.
    It must be after the start and after the newest version's valid_from. Returns the
    battery as :func:`get_battery`; the same end_date again records nothing."""
    raw = check_schema_name(raw_schema)
    battery = _require(conn, raw, battery_id, lock=True)
    problems: dict[str, str] = {}
    end = parse_fields({"end_date": end_date}, problems).get("end_date")
    _value_problems({"end_date": end, "reason": reason}, problems)
    if end is not None and not problems:
        newest = _in_force(_records(conn, raw, battery), None)[-1]["valid_from"]
        if end <= battery["start_date"]:
            problems["end_date"] = f"{end} is not after start_date {battery['start_date']}"
        elif end <= newest:
            problems["end_date"] = (
                f"{end} is not after the version from {newest}: end the battery after it"
            )
    if problems:
        raise BatteryInvalid(problems, battery_id)
    old = battery["end_date"]
    if end == old:
        return get_battery(conn, battery_id, raw_schema=raw)
    if old is not None and (end is None or end > old):
        # a later (or no) end extends the last version on its meter: from the old end on
        last = _in_force(_records(conn, raw, battery), None)[-1]
        taken = _meter_problem(conn, raw, battery["partner_id"], last["meter_id"], old, end)
        if taken:
            raise BatteryInvalid(
                {"end_date": f"{end or 'no end'} keeps the battery on its meter: {taken}"},
                battery_id,
            )
    affected_from = min(d for d in (old, end) if d is not None)
    what = f"moving the end_date from {old or 'none'} to {end or 'none'}"
    _check_backdated(conn, raw, battery, affected_from, what, backdate)
    conn.execute(
        text(f"update {raw}.batteries set end_date = :e, updated_at = now() where battery_id = :b"),
        {"e": end, "b": battery_id},
    )
    _record_end_date(conn, raw, battery_id, end, recorded_by, reason)
    return get_battery(conn, battery_id, raw_schema=raw)


# -- the batteries CSV --------------------------------------------------------------------


@dataclass
class ImportSummary:
    """What an import recorded; an import of the same file again records nothing."""

    created: list[str] = field(default_factory=list)
    versions: list[tuple[str, date]] = field(default_factory=list)
    end_dates: list[str] = field(default_factory=list)
    unchanged: int = 0

    def __str__(self) -> str:
        return (
            f"{len(self.created)} batteries created, {len(self.versions)} versions recorded,"
            f" {len(self.end_dates)} end dates changed, {self.unchanged} rows unchanged"
        )


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and float(a) == float(b)
    return a == b


def import_batteries(
    conn: Connection,
    rows: Iterable[dict],
    *,
    recorded_by: str,
    reason: str | None = None,
    backdate: bool = False,
    raw_schema: str = "raw",
) -> ImportSummary:
    """Rows of the batteries CSV (already checked; several rows of a battery are its
    versions, ``valid_from`` None = the start_date). A new battery is created; for a known
    one the fixed fields must match, a row equal to the version in force at its valid_from
    records nothing, another row records a version (superseding one of the same
    valid_from), and a different end_date is set. Versions are never removed by an import.
    ``backdate`` lets each of these reach into periods already issued, a new battery's
    start_date included.
    """
    summary = ImportSummary()
    by_battery: dict[str, list[dict]] = {}
    for row in rows:
        by_battery.setdefault(row["battery_id"], []).append(row)
    for battery_id, versions in by_battery.items():
        versions = sorted(versions, key=lambda r: r.get("valid_from") or r["start_date"])
        stored = _battery(conn, check_schema_name(raw_schema), battery_id)
        if stored is None:
            first, *later = versions
            create_battery(
                conn,
                {f: first.get(f) for f in BATTERY_FIELDS},
                recorded_by=recorded_by,
                reason=reason,
                backdate=backdate,
                raw_schema=raw_schema,
            )
            summary.created.append(battery_id)
            stored = _battery(conn, raw_schema, battery_id)
        else:
            later = versions
            changed = {
                f: _FIXED_MESSAGE + f" (stored: {stored[f]})"
                for f in FIXED_FIELDS
                if not _same(stored[f], versions[0].get(f))
            }
            if changed:
                raise BatteryInvalid(changed, battery_id)
        end = versions[0].get("end_date")
        extends = stored["end_date"] is not None and (end is None or end > stored["end_date"])
        if extends:  # first, so versions up to the new end fit
            _import_end(conn, battery_id, end, summary, recorded_by, reason, backdate, raw_schema)
        in_force = {
            v["valid_from"]: v for v in list_versions(conn, battery_id, raw_schema=raw_schema)
        }
        for row in later:
            valid_from = row.get("valid_from") or row["start_date"]
            current = in_force.get(valid_from)
            if current is not None and all(_same(current[f], row.get(f)) for f in VERSIONED_FIELDS):
                summary.unchanged += 1
                continue
            add_version(
                conn,
                battery_id,
                valid_from,
                {f: row.get(f) for f in VERSIONED_FIELDS},
                recorded_by=recorded_by,
                reason=reason,
                replace=current is not None,
                backdate=backdate,
                raw_schema=raw_schema,
            )
            summary.versions.append((battery_id, valid_from))
        if not extends:
            _import_end(conn, battery_id, end, summary, recorded_by, reason, backdate, raw_schema)
    return summary


def _import_end(conn, battery_id, end, summary, recorded_by, reason, backdate, raw_schema):
    before = _battery(conn, raw_schema, battery_id)["end_date"]
    if before != end:
        set_end_date(
            conn,
            battery_id,
            end,
            recorded_by=recorded_by,
            reason=reason,
            backdate=backdate,
            raw_schema=raw_schema,
        )
        summary.end_dates.append(battery_id)
