"""The write API's request bodies, handed to ``vbatt.warehouse.versions`` as sent.

``versions`` reads the values (text, numbers as numbers, ISO dates, unknown fields) and
applies the rule book (a negative capacity, an unknown timezone, a battery id that is no
URL segment, a ``valid_from`` before the start, a fixed field in a version, ...), naming
every bad field in its ``BatteryInvalid``. Here only what is the API's own: the body is
JSON (:func:`parse_json`) and an object, the partner is the key's, the options
``replace``/``backdate`` are booleans and ``reason`` is text. The pydantic models describe
the bodies in the OpenAPI schema.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, Field

from vbatt.battery_config import BATTERY_ID_PATTERN, MAX_LENGTHS, shown, shown_name

OPTIONS = ("replace", "backdate", "reason")
# a body of the write API is a flat object: deeper nesting is no battery, and JSON nested
# close to Python's recursion limit would fail later (hashing, the audit row) instead
MAX_DEPTH = 32

Problems = dict[str, str]
NOT_OBJECT = "the body must be a JSON object"


@dataclass(frozen=True)
class NotJson:
    """A body that could not be read as JSON, and why (refused as ``body`` with 422, as
    any body that is not a JSON object)."""

    why: str


class _NotFinite(ValueError):
    pass


def _constant(name: str) -> float:
    raise _NotFinite(name)


def _finite(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):  # 1e400: valid JSON grammar, but no number a float holds
        raise _NotFinite(literal)
    return value


def _depth(value: Any) -> int:
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            todo.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def parse_json(raw: bytes) -> Any:
    """The body's JSON; None when empty; :class:`NotJson` when it is none.

    Python's json accepts NaN, Infinity and 1e400 (as inf), which no JSON parser elsewhere
    (PostgreSQL's jsonb for the audit row among them) does; and very deep nesting raises
    RecursionError, not ValueError."""
    if not raw:
        return None
    try:
        value = json.loads(raw, parse_constant=_constant, parse_float=_finite)
    except _NotFinite:
        return NotJson("NaN and Infinity are not JSON numbers, nor is one beyond 1.8e308")
    except RecursionError:
        return NotJson(f"nested deeper than {MAX_DEPTH} levels")
    except ValueError:
        return NotJson("malformed")
    if _depth(value) > MAX_DEPTH:
        return NotJson(f"nested deeper than {MAX_DEPTH} levels")
    return value


def _object(body: Any, problems: Problems) -> dict:
    if isinstance(body, NotJson):
        problems["body"] = f"{NOT_OBJECT}; this one is not JSON ({body.why})"
        return {}
    if not isinstance(body, dict):
        problems["body"] = NOT_OBJECT
        return {}
    return body


def _options(body: dict, names: tuple[str, ...], problems: Problems) -> dict:
    out: dict = {}
    for name in names:
        value = body.get(name)
        if name == "reason":
            if value is not None and not isinstance(value, str):
                problems[name] = f"{shown(value)} is not text"
            out[name] = value if isinstance(value, str) and value.strip() else None
        else:
            if value is not None and not isinstance(value, bool):
                problems[name] = f"{shown(value)} is not true or false"
            out[name] = value is True
    return out


def battery_body(body: Any, partner_id: str) -> tuple[dict, dict, Problems]:
    """(the battery's fields, options backdate/reason, problems) for
    versions.create_battery; ``backdate`` lets a start_date reach into periods already
    issued to the partner."""
    problems: Problems = {}
    body = _object(body, problems)
    options = _options(body, ("backdate", "reason"), problems)
    battery = {k: v for k, v in body.items() if k not in options}
    sent = battery.get("partner_id")
    if sent is not None and sent != partner_id:
        problems["partner_id"] = (
            f"{shown(sent)} is not this key's partner {partner_id!r}"
            " (leave it out: a battery belongs to the key's partner)"
        )
    battery["partner_id"] = partner_id
    return battery, options, problems


def version_body(body: Any) -> tuple[Any, dict, dict, Problems]:
    """(valid_from, the changed fields, options replace/backdate/reason, problems) for
    versions.add_version; fields left out carry over."""
    problems: Problems = {}
    body = _object(body, problems)
    options = _options(body, OPTIONS, problems)
    changes = {k: v for k, v in body.items() if k not in OPTIONS and k != "valid_from"}
    if not changes and "body" not in problems:
        problems["body"] = (
            "names no field to change (name, meter_id, capacity_kwh, reset_date, reset_repeat)"
        )
    return body.get("valid_from"), changes, options, problems


def end_date_body(body: Any) -> tuple[Any, dict, Problems]:
    """(end_date, None to clear it; options backdate/reason; problems) for
    versions.set_end_date."""
    problems: Problems = {}
    body = _object(body, problems)
    for name in body.keys() - {"end_date", "backdate", "reason"}:
        problems[shown_name(name)] = (
            "cannot be changed here: only end_date (versioned fields:"
            " POST /v1/batteries/{id}/versions; fixed fields never)"
        )
    if "end_date" not in body and "body" not in problems:
        problems["end_date"] = "is required (null clears it)"
    return body.get("end_date"), _options(body, ("backdate", "reason"), problems), problems


# -- the bodies in the OpenAPI schema ---------------------------------------------------


class BatteryIn(BaseModel):
    """A new battery: the batteries CSV's fields (numbers as numbers, dates YYYY-MM-DD)."""

    battery_id: str = Field(
        description='unique; letters, digits and . _ : - (not "new")',
        pattern=f"^{BATTERY_ID_PATTERN}$",
        max_length=MAX_LENGTHS["battery_id"],
    )
    name: str = Field(max_length=MAX_LENGTHS["name"])
    partner_id: str | None = Field(None, description="the key's partner (may be left out)")
    customer_id: str = Field(max_length=MAX_LENGTHS["customer_id"])
    meter_id: str = Field(
        description="the house meter; must measure both directions and be no other"
        " partner's in the battery's period",
        max_length=MAX_LENGTHS["meter_id"],
    )
    capacity_kwh: float = Field(description="0 = unlimited")
    start_date: date
    reset_date: date | None = None
    reset_repeat: Literal["yearly", "none"] = "yearly"
    end_date: date | None = None
    timezone: str = "Europe/Zurich"
    initial_level_kwh: float = 0.0
    backdate: bool = Field(
        False, description="start_date lies in a period already issued to the partner"
    )
    reason: str | None = Field(
        None, description="kept in the audit log and the version", max_length=MAX_LENGTHS["reason"]
    )


class VersionIn(BaseModel):
    """New terms from ``valid_from`` on; fields left out carry over."""

    valid_from: date
    name: str | None = None
    meter_id: str | None = None
    capacity_kwh: float | None = None
    reset_date: date | None = None
    reset_repeat: Literal["yearly", "none"] | None = None
    replace: bool = Field(False, description="supersede the version with this valid_from")
    backdate: bool = Field(False, description="valid_from lies in a period already issued")
    reason: str | None = None


class EndDateIn(BaseModel):
    """Set, move or clear (null) the battery's end_date."""

    end_date: date | None
    backdate: bool = False
    reason: str | None = None
