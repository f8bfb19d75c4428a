"""The rule book's constraints on a battery configuration, checked before it is stored.

One place for them: the batteries CSV (``vbatt batteries``, ``vbatt simulate``) and
every other path into ``raw.batteries`` (``upsert_batteries``: the demo, partners'
integrations) ask here, so a bad configuration is refused with the battery and the field
named instead of failing the next ledger run for everyone. The database constraints of
migration 0001 stay as the last guard.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from zoneinfo import available_timezones

REPEATS = ("yearly", "none")
# rule book, "Configuration over time": fixed for the battery's life, or versioned with a
# valid_from; end_date is neither (set, moved or cleared on the battery itself)
FIXED_FIELDS = (
    "battery_id",
    "partner_id",
    "customer_id",
    "start_date",
    "timezone",
    "initial_level_kwh",
)
VERSIONED_FIELDS = ("name", "meter_id", "capacity_kwh", "reset_date", "reset_repeat")
# the columns of raw.batteries (migration 0001) and of the batteries CSV, in this order
BATTERY_FIELDS = (
    "battery_id",
    "name",
    "partner_id",
    "customer_id",
    "meter_id",
    "capacity_kwh",
    "start_date",
    "reset_date",
    "reset_repeat",
    "end_date",
    "timezone",
    "initial_level_kwh",
)
# raw.batteries.timezone's default (migration 0001), for rows that leave it out
DEFAULT_TIMEZONE = "Europe/Zurich"

# A battery id is a path segment of /v1/batteries/{id} and /dashboard/batteries/{id} and
# part of export file names: an id with a slash or a space could be stored but never
# addressed. Anchored by fullmatch (a "$" would let a trailing newline through).
BATTERY_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._:-]*"
BATTERY_ID = re.compile(BATTERY_ID_PATTERN)
# /dashboard/batteries/new is the portal's "Add battery" form: a battery "new" could never
# be opened there
RESERVED_BATTERY_IDS = frozenset({"new"})
# Text is served in every listing and echoed in refusals and the audit log: a bound keeps a
# 10 MB name out. Ids fit in URLs and file names; names and customer ids come from
# partners' systems and get more room; a reason is a sentence or two. (timezone and
# reset_repeat need no bound: only the names of their lists pass.)
MAX_LENGTHS = {
    "battery_id": 100,
    "partner_id": 100,
    "meter_id": 100,
    "name": 200,
    "customer_id": 200,
    "reason": 1000,
}
TEXT_FIELDS = tuple(MAX_LENGTHS)
# Dates far from now overflow the ledger's and the live view's datetime arithmetic (a
# local midnight of 0001-01-01 minus an offset is no datetime) and are typing errors in any
# case: no battery ran before smart meters did.
DATE_FIELDS = ("start_date", "reset_date", "end_date", "valid_from")
EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE = date(2199, 12, 31)
# how much of a bad value a message repeats
SHOWN_CHARACTERS = 80


@dataclass(frozen=True)
class ConfigProblem:
    battery_id: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"battery {shown(self.battery_id)}, {self.field}: {self.message}"


class BatteryConfigError(ValueError):
    def __init__(self, problems: list[ConfigProblem]):
        self.problems = problems
        super().__init__(
            "battery configuration refused, nothing stored:\n" + "\n".join(str(p) for p in problems)
        )


def shown(value) -> str:
    """A bad value as a message repeats it: its repr, cut after SHOWN_CHARACTERS (a refusal
    of a 10 MB name need not send it back, nor store it twice in the audit log)."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARACTERS else text[:SHOWN_CHARACTERS] + "…"


def shown_name(name: str) -> str:
    """A field name sent by someone else, as a key of a refusal's ``errors``: itself when
    it is short printable text, else :func:`shown` (a NUL or a lone surrogate in a key
    would break the JSON answer or the audit row)."""
    ok = isinstance(name, str) and len(name) <= SHOWN_CHARACTERS and name.isprintable()
    return name if ok else shown(name)


def is_number(value) -> bool:
    """A finite int or float (not a bool); an int too large for a float is none."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def value_problem(field: str, value) -> str | None:
    """The rule a single text or date value breaks, if any (None: not given, or fine).

    Also for values outside a battery row: a version's ``valid_from``, a new ``end_date``,
    the ``reason`` of a change."""
    if value is None:
        return None
    if field in TEXT_FIELDS and isinstance(value, str):
        if "\x00" in value:  # PostgreSQL's text cannot hold it
            return "contains a NUL character (\\u0000): send the text without it"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "is not valid Unicode text (an unpaired surrogate): send UTF-8 text"
        if len(value) > MAX_LENGTHS[field]:
            return f"is {len(value)} characters long: use at most {MAX_LENGTHS[field]}"
        if field == "battery_id":
            if not BATTERY_ID.fullmatch(value):
                return (
                    f"{shown(value)}: use letters, digits and . _ : - only, starting with a"
                    " letter or digit (no spaces or slashes: the id is part of URLs)"
                )
            if value in RESERVED_BATTERY_IDS:
                return f"{value!r} is reserved (the dashboard's page for a new battery)"
    if field in DATE_FIELDS and isinstance(value, date):
        if not EARLIEST_DATE <= value <= LATEST_DATE:
            return f"{value} is outside {EARLIEST_DATE} to {LATEST_DATE}: check the year"
    return None


def field_problems(row: dict) -> list[tuple[str, str]]:
    """(field, message) for each rule the configuration breaks; parsed values expected."""
    found: list[tuple[str, str]] = []
    for field in ("battery_id", "meter_id", "start_date"):
        if not row.get(field):
            found.append((field, "is required"))
    for field in (*TEXT_FIELDS, *DATE_FIELDS):
        problem = value_problem(field, row.get(field))
        if problem:
            found.append((field, problem))
    if row.get("capacity_kwh") is None:  # 0 would mean unlimited: never a silent default
        found.append(("capacity_kwh", "is required (0 = unlimited)"))
    capacity, initial = row.get("capacity_kwh") or 0.0, row.get("initial_level_kwh") or 0.0
    for field, value in (("capacity_kwh", capacity), ("initial_level_kwh", initial)):
        if not is_number(value):
            found.append((field, f"{shown(value)} is not a finite number"))
        elif value < 0:
            found.append((field, f"{value:g} is negative"))
    # the initial level is the first version's: a later version may clip it (a forfeit)
    first = row.get("valid_from") in (None, row.get("start_date"))
    if first and is_number(capacity) and is_number(initial) and 0 < capacity < initial:
        found.append(("initial_level_kwh", f"{initial} exceeds the capacity {capacity}"))
    for field in ("start_date", "reset_date", "end_date"):
        value = row.get(field)
        if value is not None and not isinstance(value, date):
            found.append((field, f"{shown(value)} is not a date"))
    start, end = row.get("start_date"), row.get("end_date")
    if isinstance(start, date) and isinstance(end, date) and end <= start:
        found.append(("end_date", f"{end} is not after start_date {start}"))
    repeat = row.get("reset_repeat") or "yearly"
    if repeat not in REPEATS:
        found.append(("reset_repeat", f"{shown(repeat)}: use yearly or none"))
    timezone = row.get("timezone")  # None: check_batteries fills in the default
    # the list, not ZoneInfo(): "Europe" (a directory) or a 300-character name make
    # ZoneInfo raise OSErrors, and a name it loads from a stray file is no IANA zone
    if timezone is not None and (not isinstance(timezone, str) or timezone not in _timezones()):
        found.append(("timezone", f"{shown(timezone)} is not an IANA time zone"))
    one: dict[str, str] = {}  # one message per field: the first rule it breaks
    for field, message in found:
        one.setdefault(field, message)
    return list(one.items())


def check_batteries(rows: Iterable[dict], known_meters: set[str] | None = None) -> list[dict]:
    """The rows, or BatteryConfigError naming every problem of every battery."""
    # the defaults of raw.batteries, filled in here: the loader binds every column, and an
    # explicit NULL would reach the database as a constraint error naming no battery
    rows = [
        {
            **row,
            "reset_repeat": row.get("reset_repeat") or "yearly",
            "timezone": row.get("timezone") or DEFAULT_TIMEZONE,
            "initial_level_kwh": row.get("initial_level_kwh") or 0.0,
        }
        for row in rows
    ]
    problems: list[ConfigProblem] = []
    seen: set[tuple] = set()
    for row in rows:
        battery = str(row.get("battery_id") or "?")
        problems += [ConfigProblem(battery, f, m) for f, m in field_problems(row)]
        # several rows of a battery are its versions, one per valid_from
        version = (battery, row.get("valid_from") or row.get("start_date"))
        if version in seen:
            field = "valid_from" if row.get("valid_from") else "battery_id"
            problems.append(ConfigProblem(battery, field, "appears twice"))
        seen.add(version)
        meter = row.get("meter_id")
        if known_meters is not None and meter and meter not in known_meters:
            problems.append(ConfigProblem(battery, "meter_id", f"{shown(meter)} has no readings"))
    if problems:
        raise BatteryConfigError(problems)
    return rows
