"""IS-E import layouts as data: a declared, validated template per variant.

innosolv does not publish the import layouts of innosolv energie, and each utility
configures its own; so the layout is not code but a YAML template (columns, order,
separator, number and date formats, header, encoding). The defaults in
``vbatt/exports/templates/ise/`` are our documented assumptions (docs/formats/ise.md); a
partner whose IS-E expects something else gives the path of its own template, and no
code changes. Every template is checked here first, so a typo is an error that names
the key and the choices, not a file that the billing system silently misreads.
"""

from __future__ import annotations

import codecs
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from vbatt.exports.channels import PROFILE_CHANNELS, REGISTER_CHANNELS

VARIANTS = ("readings", "vorschub", "timeseries")
BUILT_IN_DIR = "templates/ise"

# Fields a column can show, per variant. "datetime" fields take a strftime format.
COMMON_FIELDS = {
    "metering_point": "text",
    "battery_id": "text",
    "battery_name": "text",
    "customer_id": "text",
    "meter_id": "text",
    "partner_id": "text",
    "channel": "text",
    "obis": "text",
    "unit": "text",
    "value": "number",
    "status": "text",
    "period_from": "date",
    "period_to": "date",
    "utc_offset": "offset",
    "literal": "literal",
    "empty": "literal",
}
VARIANT_FIELDS = {
    "readings": {"reading_at": "datetime"},
    "vorschub": {"reading_from": "datetime", "reading_at": "datetime"},
    "timeseries": {"interval_start": "datetime", "interval_end": "datetime"},
}
ROW_CHANNELS = {
    "readings": tuple(c.name for c in REGISTER_CHANNELS),
    "vorschub": tuple(c.name for c in REGISTER_CHANNELS),
    "timeseries": (*(c.name for c in PROFILE_CHANNELS), "level"),
}
TOP_KEYS = {
    "name",
    "variant",
    "description",
    "encoding",
    "bom",
    "separator",
    "quoting",
    "header",
    "line_ending",
    "decimal_point",
    "decimals",
    "datetime_format",
    "date_format",
    "timezone",
    "status_codes",
    "file_name",
    "rows",
    "columns",
}
COLUMN_KEYS = {"field", "header", "format", "decimals", "value", "of"}
ROW_KEYS = {"channel", "obis"}
QUOTING = ("minimal", "all", "none")
LINE_ENDINGS = {"crlf": "\r\n", "lf": "\n"}
FILE_NAME_KEYS = {"partner", "period", "variant", "template"}
SAMPLE_INSTANT = datetime(2025, 10, 26, 1, 15, tzinfo=UTC)


class TemplateError(ValueError):
    """A template that cannot be used; the message names the template and the key."""


@dataclass(frozen=True)
class Column:
    field: str
    header: str
    format: str | None = None  # strftime for date/datetime fields
    decimals: int | None = None  # for "value"; else the template's
    value: str = ""  # for "literal"
    of: str | None = None  # for "utc_offset": the datetime field whose offset is shown


@dataclass(frozen=True)
class Row:
    channel: str
    obis: str | None = None  # None: the partner's code for the channel (vorschub: D 8 -> 9)


@dataclass(frozen=True)
class Template:
    name: str
    source: str  # "built-in readings" or the file path, for messages
    variant: str
    description: str
    encoding: str
    bom: bool
    separator: str
    quoting: str
    header: bool
    line_ending: str  # the characters
    decimal_point: str
    decimals: int
    datetime_format: str
    date_format: str
    timezone: str  # "local" (the battery's) or "utc"
    status_measured: str
    status_estimated: str
    file_name: str
    rows: tuple[Row, ...]
    columns: tuple[Column, ...]


def built_in_names() -> list[str]:
    folder = resources.files("vbatt.exports").joinpath(BUILT_IN_DIR)
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def load(ref: str | Path, base_dir: str | Path | None = None) -> Template:
    """A built-in template by name (``readings``) or a partner's template by file path.

    A relative path is taken from ``base_dir`` (the partner configuration's folder) when
    given, else from the working directory.
    """
    text_ref = str(ref)
    if "/" in text_ref or "\\" in text_ref or text_ref.endswith((".yaml", ".yml")):
        path = Path(text_ref)
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        if not path.is_file():
            raise TemplateError(f"IS-E template file {path} does not exist")
        return parse(path.read_text(encoding="utf-8"), str(path))
    if text_ref not in built_in_names():
        raise TemplateError(
            f"unknown IS-E template {text_ref!r}: use a built-in name "
            f"({', '.join(built_in_names())}) or the path of a .yaml file"
        )
    resource = resources.files("vbatt.exports").joinpath(BUILT_IN_DIR, f"{text_ref}.yaml")
    return parse(resource.read_text(encoding="utf-8"), f"built-in {text_ref}")


def parse(text: str, source: str) -> Template:
    """Parse and validate template YAML; every problem found is listed in one error."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TemplateError(f"IS-E template {source}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise TemplateError(f"IS-E template {source}: expected a mapping of settings at the top")
    checker = _Checker(source, data)
    template = checker.template()
    if checker.errors:
        raise TemplateError(
            f"IS-E template {source} is not usable:\n"
            + "\n".join(f"  - {e}" for e in checker.errors)
        )
    assert template is not None
    return template


class _Checker:
    def __init__(self, source: str, data: dict[str, Any]):
        self.source = source
        self.data = data
        self.errors: list[str] = []

    def error(self, message: str) -> None:
        self.errors.append(message)

    def get(self, key: str, kind: type, default: Any) -> Any:
        if key not in self.data:
            return default
        value = self.data[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            self.error(f"{key}: expected {_kind_name(kind)}, got {value!r}")
            return default
        return value

    def template(self) -> Template | None:
        unknown = sorted(set(self.data) - TOP_KEYS)
        if unknown:
            self.error(f"unknown setting(s) {unknown}; known: {', '.join(sorted(TOP_KEYS))}")
        name = self.get("name", str, "")
        if not name:
            self.error("name: required (a short name for messages and file names)")
        variant = self.get("variant", str, "")
        if variant not in VARIANTS:
            self.error(f"variant: {variant!r} is not one of {', '.join(VARIANTS)}")
            variant = ""
        encoding = self.get("encoding", str, "utf-8")
        try:
            encoding = codecs.lookup(encoding).name
        except LookupError:
            self.error(
                f"encoding: {encoding!r} is not an encoding Python knows (e.g. utf-8, iso-8859-1, cp1252)"
            )
        separator = self.get("separator", str, ";")
        decimal_point = self.get("decimal_point", str, ".")
        if len(separator) != 1 or separator in '\r\n"' or separator.isalnum():
            self.error(
                f"separator: {separator!r} must be one character, not a letter, digit, quote or line break"
            )
        if decimal_point not in (".", ","):
            self.error(f"decimal_point: {decimal_point!r} must be '.' or ','")
        elif decimal_point == separator:
            self.error(
                f"decimal_point and separator are both {separator!r}: numbers would split into two columns"
            )
        quoting = self.get("quoting", str, "minimal")
        if quoting not in QUOTING:
            self.error(f"quoting: {quoting!r} is not one of {', '.join(QUOTING)}")
        line_ending = self.get("line_ending", str, "crlf")
        if line_ending not in LINE_ENDINGS:
            self.error(f"line_ending: {line_ending!r} is not one of {', '.join(LINE_ENDINGS)}")
        decimals = self.get("decimals", int, 3)
        if not 0 <= decimals <= 9:
            self.error(f"decimals: {decimals} must be 0..9")
        timezone = self.get("timezone", str, "local")
        if timezone not in ("local", "utc"):
            self.error(f"timezone: {timezone!r} must be 'local' (the battery's) or 'utc'")
        datetime_format = self._format(
            "datetime_format", self.get("datetime_format", str, "%d.%m.%Y %H:%M")
        )
        date_format = self._format("date_format", self.get("date_format", str, "%d.%m.%Y"))
        status = self.get("status_codes", dict, {"measured": "W", "estimated": "E"})
        if set(status) != {"measured", "estimated"} or not all(
            isinstance(v, str) for v in status.values()
        ):
            self.error(
                f"status_codes: needs exactly the text keys 'measured' and 'estimated', got {status!r}"
            )
            status = {"measured": "W", "estimated": "E"}
        bom = self.get("bom", bool, False)
        if bom and encoding != "utf-8":
            self.error(f"bom: a byte order mark is written for utf-8 only, not {encoding}")
        file_name = self.get("file_name", str, "{partner}_{period}_ise_{template}.csv")
        self._check_file_name(file_name)
        rows = self._rows(variant)
        columns = self._columns(variant)
        if variant and columns:
            self._check_columns(variant, columns, timezone, datetime_format, len(rows))
        if self.errors:
            return None
        return Template(
            name=name,
            source=self.source,
            variant=variant,
            description=str(self.data.get("description", "")).strip(),
            encoding=encoding,
            bom=bom,
            separator=separator,
            quoting=quoting,
            header=self.get("header", bool, True),
            line_ending=LINE_ENDINGS[line_ending],
            decimal_point=decimal_point,
            decimals=decimals,
            datetime_format=datetime_format,
            date_format=date_format,
            timezone=timezone,
            status_measured=status["measured"],
            status_estimated=status["estimated"],
            file_name=file_name,
            rows=tuple(rows),
            columns=tuple(columns),
        )

    def _format(self, key: str, value: str) -> str:
        try:
            SAMPLE_INSTANT.strftime(value)
        except ValueError as exc:
            self.error(f"{key}: {value!r} is not a strftime format: {exc}")
        if not any(d in value for d in ("%d", "%H", "%Y", "%y", "%m", "%M", "%j", "%b")):
            self.error(f"{key}: {value!r} shows no date or time directive (like %d.%m.%Y %H:%M)")
        return value

    def _check_file_name(self, file_name: str) -> None:
        try:
            keys = {f for _, f, _, _ in string.Formatter().parse(file_name) if f is not None}
        except ValueError as exc:
            self.error(f"file_name: {file_name!r}: {exc}")
            return
        if keys - FILE_NAME_KEYS:
            self.error(
                f"file_name: unknown placeholder(s) {sorted(keys - FILE_NAME_KEYS)}; "
                f"use {', '.join('{' + k + '}' for k in sorted(FILE_NAME_KEYS))}"
            )
        if "/" in file_name or "\\" in file_name or file_name.startswith("."):
            self.error(f"file_name: {file_name!r} must be a plain file name, no folders")

    def _rows(self, variant: str) -> list[Row]:
        raw = self.data.get("rows")
        if not isinstance(raw, list) or not raw:
            self.error(
                "rows: required, a list of {channel: NAME[, obis: CODE]} (what each battery's rows show)"
            )
            return []
        rows = []
        allowed = ROW_CHANNELS.get(variant, ())
        for i, item in enumerate(raw):
            if not isinstance(item, dict) or "channel" not in item:
                self.error(f"rows[{i}]: expected {{channel: NAME[, obis: CODE]}}, got {item!r}")
                continue
            unknown = sorted(set(item) - ROW_KEYS)
            if unknown:
                self.error(f"rows[{i}]: unknown key(s) {unknown}; known: channel, obis")
            channel, obis = item["channel"], item.get("obis")
            if variant and channel not in allowed:
                self.error(
                    f"rows[{i}]: channel {channel!r} has no {variant} value; use one of {', '.join(allowed)}"
                )
            if obis is not None and (not isinstance(obis, str) or not obis.strip()):
                self.error(f"rows[{i}]: obis must be a non-empty text, got {obis!r}")
            rows.append(Row(str(channel), obis))
        if len({r.channel for r in rows}) != len(rows):
            self.error("rows: a channel is listed twice")
        return rows

    def _columns(self, variant: str) -> list[Column]:
        raw = self.data.get("columns")
        if not isinstance(raw, list) or not raw:
            self.error(
                "columns: required, a list of {field: NAME[, header: TEXT, format: ..., decimals: N]}"
            )
            return []
        known = {**COMMON_FIELDS, **VARIANT_FIELDS.get(variant, {})}
        columns = []
        for i, item in enumerate(raw):
            if isinstance(item, str):
                item = {"field": item}
            if not isinstance(item, dict) or "field" not in item:
                self.error(f"columns[{i}]: expected {{field: NAME, ...}}, got {item!r}")
                continue
            unknown = sorted(set(item) - COLUMN_KEYS)
            if unknown:
                self.error(
                    f"columns[{i}]: unknown key(s) {unknown}; known: {', '.join(sorted(COLUMN_KEYS))}"
                )
            field = item["field"]
            if field not in known:
                self.error(
                    f"columns[{i}]: unknown field {field!r} for variant {variant or '?'}; "
                    f"known: {', '.join(sorted(known))}"
                )
                continue
            kind = known[field]
            fmt = item.get("format")
            if fmt is not None:
                if kind not in ("date", "datetime"):
                    self.error(
                        f"columns[{i}]: format applies to date and time fields only, not {field!r}"
                    )
                elif isinstance(fmt, str):
                    self._format(f"columns[{i}].format", fmt)
                else:
                    self.error(f"columns[{i}].format: expected a strftime text, got {fmt!r}")
            decimals = item.get("decimals")
            if decimals is not None and (
                field != "value" or not isinstance(decimals, int) or not 0 <= decimals <= 9
            ):
                self.error(f"columns[{i}]: decimals (0..9) applies to the value column only")
            of = item.get("of")
            if field == "utc_offset":
                datetimes = sorted(f for f, k in known.items() if k == "datetime")
                if of not in datetimes:
                    self.error(f"columns[{i}]: utc_offset needs of: one of {', '.join(datetimes)}")
            elif of is not None:
                self.error(f"columns[{i}]: 'of' applies to utc_offset only")
            literal = item.get("value", "")
            if field == "literal" and not isinstance(literal, str | int | float):
                self.error(f"columns[{i}]: a literal's value must be text or a number")
            elif field != "literal" and "value" in item:
                self.error(f"columns[{i}]: 'value' applies to literal columns only")
            header = item.get("header", field)
            if not isinstance(header, str):
                self.error(f"columns[{i}]: header must be text, got {header!r}")
                header = str(header)
            columns.append(Column(field, header, fmt, decimals, str(literal), of))
        return columns

    def _check_columns(
        self, variant: str, columns: list[Column], timezone: str, datetime_format: str, rows: int
    ):
        fields = [c.field for c in columns]
        if "value" not in fields:
            self.error("columns: no column shows the value (field: value)")
        if rows > 1 and not {"obis", "channel"} & set(fields):
            self.error(
                "columns: several rows per battery but no obis or channel column to tell them apart"
            )
        if variant == "timeseries" and not {"interval_start", "interval_end"} & set(fields):
            self.error("columns: a time series needs interval_start or interval_end")
        if timezone == "local" and variant == "timeseries":
            has_offset = "utc_offset" in fields or all(
                "%z" in (c.format or datetime_format)
                for c in columns
                if c.field in ("interval_start", "interval_end")
            )
            if not has_offset:
                self.error(
                    "local time without a UTC offset is ambiguous in the repeated autumn hour: "
                    "add a column {field: utc_offset, of: interval_end}, put %z in the format, or use timezone: utc"
                )


def _kind_name(kind: type) -> str:
    names = {str: "text", int: "a whole number", bool: "true or false", dict: "a mapping"}
    return names.get(kind, kind.__name__)
