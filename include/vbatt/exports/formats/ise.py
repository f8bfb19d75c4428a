"""IS-E (innosolv energie): meter readings, "Vorschub" and 15-minute time series.

Each file is laid out by a template (``ise_template``): built-in defaults whose layout
is our assumption, or a partner's own YAML file. ``options``:

- ``templates``: list of template names or paths (default: readings, vorschub,
  timeseries), or ``template``: a single one;
- ``base_dir``: folder that relative template paths are taken from (the partner
  configuration's folder).

Only the channels the partner receives (``batch.channels``) are written; a template row
for another channel is left out. Values per variant:

- readings: the register at ``registers_end.at`` (the end of the battery's last
  quarter hour in the period);
- vorschub: ``registers_end - registers_start``, with the register's code turned from
  D = 8 to D = 9 unless the template names the code;
- timeseries: each quarter hour's energy (or the level at its end).

A reading or advance is marked estimated when any quarter hour behind it in the period
is a substitute value.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from vbatt.exports import delimited
from vbatt.exports.formats import ise_template
from vbatt.exports.formats.ise_template import Column, Template
from vbatt.exports.localtime import offset_text, zone
from vbatt.exports.model import BatteryExport, Channel, ExportBatch, ExportFile, RenderContext
from vbatt.exports.naming import safe_part
from vbatt.exports.numbers import fixed

DEFAULT_TEMPLATES = ("readings", "vorschub", "timeseries")
_REGISTER_CODE = re.compile(r"^(\d+-\d+:\d+)\.8\.(\d+)(\*\d+)?$")


def render(batch: ExportBatch, options: dict[str, Any], ctx: RenderContext) -> list[ExportFile]:
    del ctx  # the layouts carry no document reference
    if "template" in options and "templates" in options:
        raise ValueError("IS-E options: give either 'template' or 'templates', not both")
    if "templates" in options:
        refs = options["templates"]
    elif "template" in options:
        refs = [options["template"]]
    else:
        refs = list(DEFAULT_TEMPLATES)
    if not isinstance(refs, list | tuple) or not refs:
        raise ValueError(
            f"IS-E options: templates must be a non-empty list of names or paths, not {refs!r}"
        )
    templates = [ise_template.load(ref, options.get("base_dir")) for ref in refs]
    files = [render_template(batch, template) for template in templates]
    names = [f.name for f in files]
    if len(set(names)) != len(names):
        raise ValueError(
            f"IS-E templates give the same file name twice: {names}; set file_name in the templates"
        )
    return files


def advance_code(obis: str) -> str:
    """The Vorschub code of a register: ``1-5:1.8.0`` -> ``1-5:1.9.0`` (D = 9: advance)."""
    match = _REGISTER_CODE.match(obis)
    if not match:
        raise ValueError(
            f"cannot derive a Vorschub code from {obis!r} (expected A-B:C.8.E); "
            "give the code as obis in the template's row"
        )
    return f"{match[1]}.9.{match[2]}{match[3] or ''}"


def render_template(batch: ExportBatch, template: Template) -> ExportFile:
    received = {c.name: c for c in batch.channels}
    rows = [(row, received[row.channel]) for row in template.rows if row.channel in received]
    if not rows:
        raise ValueError(
            f"IS-E template {template.source}: none of its channels "
            f"({', '.join(r.channel for r in template.rows)}) is among partner {batch.partner_id}'s channels"
        )
    codes = {}
    for row, channel in rows:
        if row.obis:
            codes[row.channel] = row.obis
        elif template.variant == "vorschub":
            codes[row.channel] = advance_code(channel.obis)
        else:
            codes[row.channel] = channel.obis
    lines: list[list[str]] = []
    written: dict[str, list[float]] = {row.channel: [] for row, _ in rows}
    value_at = next(i for i, c in enumerate(template.columns) if c.field == "value")
    for battery in batch.batteries:
        if template.variant == "timeseries":
            interval_cells = _interval_cells(battery, template)
            for row, channel in rows:
                base = {**_base(batch, battery), "channel": row.channel, "obis": codes[row.channel]}
                base["unit"] = channel.unit
                before = len(lines)
                lines.extend(_series_lines(battery, template, base, interval_cells))
                written[row.channel].extend(_number(line[value_at]) for line in lines[before:])
            continue
        for record in _readings(batch, battery, template, rows, codes):
            line = [_cell(c, record, template, battery.timezone) for c in template.columns]
            written[record["channel"]].append(_number(line[value_at]))
            lines.append(line)
    name = template.file_name.format(
        partner=safe_part(batch.partner_id, "partner id"),
        period=safe_part(batch.period.label, "period"),
        variant=template.variant,
        template=template.name,
    )
    return ExportFile(
        name=safe_part(name, "IS-E file name"),
        content=_encode(template, lines),
        rows=len(lines),
        values={channel: math.fsum(values) for channel, values in written.items()},
        media_type="text/csv",
    )


def _base(batch: ExportBatch, battery: BatteryExport) -> dict[str, Any]:
    return {
        "metering_point": battery.metering_point,
        "battery_id": battery.battery_id,
        "battery_name": battery.name,
        "customer_id": battery.customer_id,
        "meter_id": battery.meter_id,
        "partner_id": batch.partner_id,
        "period_from": batch.period.first_day,
        "period_to": batch.period.last_day,
    }


def _readings(
    batch: ExportBatch,
    battery: BatteryExport,
    template: Template,
    rows: list[tuple[ise_template.Row, Channel]],
    codes: dict[str, str],
) -> Iterator[dict[str, Any]]:
    """Readings and Vorschub: one record per register row."""
    estimated = any(i.estimated for i in battery.intervals)
    for row, channel in rows:
        end = getattr(battery.registers_end, row.channel)
        start = getattr(battery.registers_start, row.channel)
        yield {
            **_base(batch, battery),
            "channel": row.channel,
            "obis": codes[row.channel],
            "unit": channel.unit,
            "value": end if template.variant == "readings" else end - start,
            "estimated": estimated,
            "reading_from": battery.registers_start.at,
            "reading_at": battery.registers_end.at,
        }


PER_INTERVAL = {"value", "status", "interval_start", "interval_end", "utc_offset"}


def _interval_cells(battery: BatteryExport, template: Template) -> list[list[tuple[int, str]]]:
    """Per quarter hour, the cells that change with it but not with the channel (times, status)."""
    zone_name = "UTC" if template.timezone == "utc" else battery.timezone
    columns = [
        (i, c)
        for i, c in enumerate(template.columns)
        if c.field in PER_INTERVAL and c.field != "value"
    ]
    cells = []
    for interval in battery.intervals:
        mine = []
        for i, column in columns:
            field = column.field
            if field == "status":
                text = template.status_estimated if interval.estimated else template.status_measured
            elif field == "utc_offset":
                text = _offset(getattr(interval, column.of.removeprefix("interval_")), zone_name)
            else:
                instant = interval.start if field == "interval_start" else interval.end
                text = _instant(instant, zone_name, column.format or template.datetime_format)
            mine.append((i, text))
        cells.append(mine)
    return cells


def _series_lines(
    battery: BatteryExport,
    template: Template,
    base: dict[str, Any],
    interval_cells: list[list[tuple[int, str]]],
) -> Iterator[list[str]]:
    """A channel's quarter hours: the cells that do not change are formatted once."""
    static = [
        "" if c.field in PER_INTERVAL else _cell(c, base, template, battery.timezone)
        for c in template.columns
    ]
    channel = base["channel"]
    values = [(i, c) for i, c in enumerate(template.columns) if c.field == "value"]
    point = template.decimal_point
    for interval, cells in zip(battery.intervals, interval_cells, strict=True):
        line = static.copy()
        for i, text in cells:
            line[i] = text
        value = getattr(interval, channel)
        for i, column in values:
            decimals = template.decimals if column.decimals is None else column.decimals
            line[i] = fixed(value, decimals, decimal_point=point)
        yield line


def _number(text: str) -> float:
    return float(text.replace(",", "."))


def _cell(column: Column, record: dict[str, Any], template: Template, timezone: str) -> str:
    field = column.field
    if field == "value":
        decimals = template.decimals if column.decimals is None else column.decimals
        return fixed(record["value"], decimals, decimal_point=template.decimal_point)
    if field == "status":
        return template.status_estimated if record["estimated"] else template.status_measured
    if field == "literal":
        return column.value
    if field == "empty":
        return ""
    if field in ("period_from", "period_to"):
        day: date = record[field]
        return day.strftime(column.format or template.date_format)
    zone_name = "UTC" if template.timezone == "utc" else timezone
    if field == "utc_offset":
        return _offset(record[column.of], zone_name)
    if field in ise_template.VARIANT_FIELDS[template.variant]:
        return _instant(record[field], zone_name, column.format or template.datetime_format)
    return str(record[field])


@lru_cache(maxsize=4096)
def _instant(instant: datetime, zone_name: str, fmt: str) -> str:
    """Cached: every battery of a period shares the same 96 quarter hours."""
    return instant.astimezone(UTC if zone_name == "UTC" else zone(zone_name)).strftime(fmt)


@lru_cache(maxsize=4096)
def _offset(instant: datetime, zone_name: str) -> str:
    return offset_text(instant.astimezone(UTC if zone_name == "UTC" else zone(zone_name)))


def _encode(template: Template, lines: list[list[str]]) -> bytes:
    rows = [[c.header for c in template.columns], *lines] if template.header else lines
    try:
        text = delimited.write(
            rows,
            separator=template.separator,
            line_ending=template.line_ending,
            quoting=template.quoting,
        )
    except csv.Error as exc:
        raise ValueError(
            f"IS-E template {template.source}: quoting 'none' but a value contains the separator "
            f"{template.separator!r} or a quote ({exc}); use quoting: minimal"
        ) from exc
    try:
        content = text.encode(template.encoding)
    except UnicodeEncodeError as exc:
        bad = exc.object[max(0, exc.start - 20) : exc.end + 20]
        raise ValueError(
            f"IS-E template {template.source}: {exc.object[exc.start : exc.end]!r} cannot be written "
            f"in {template.encoding} (near {bad!r}); choose an encoding like utf-8 or drop that column"
        ) from exc
    return (b"\xef\xbb\xbf" if template.bom else b"") + content
