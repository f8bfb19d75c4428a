"""What the issued files contain, read back the way a partner's parser reads them.

The export gate compares these figures with the warehouse before anything is delivered
(``expectations/exports.json``): per battery and profile channel, how many quarter-hour
values a file carries and their sum. Reading the bytes back, not the batch they were
rendered from, is the point: a renderer that drops a battery, shifts a channel or
rounds wrongly is caught here. Registers and day files carry no quarter hours and are
left to the format tests.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterable

from vbatt.exports.model import ExportBatch, ExportFile
from vbatt.exports.partners import FormatConfig

PROFILE_COLUMNS = {
    "charge": "charge_kwh",
    "discharge": "discharge_kwh",
    "overflow": "overflow_kwh",
    "shortfall": "shortfall_kwh",
}
SDAT_NS = {"rsm": "http://www.strom.ch"}


class _Tally:
    def __init__(self, batch: ExportBatch):
        self.counts: dict[tuple[str, str], int] = defaultdict(int)
        self.sums: dict[tuple[str, str], float] = defaultdict(float)
        self.by_point = {b.metering_point: b.battery_id for b in batch.batteries}
        self.by_obis = {_bare(c.obis): c.name for c in batch.channels if c.name in PROFILE_COLUMNS}

    def add(self, battery_id: str, channel: str, value: float) -> None:
        self.counts[battery_id, channel] += 1
        self.sums[battery_id, channel] += value

    def battery(self, metering_point: str) -> str:
        # an unknown id is reported as itself: the gate then fails on a series nobody expects
        return self.by_point.get(metering_point, metering_point)

    def rows(self) -> list[dict]:
        return [
            {"battery_id": b, "channel": c, "value_count": n, "sum_kwh": self.sums[b, c]}
            for (b, c), n in sorted(self.counts.items())
        ]


def _bare(obis: str) -> str:
    return obis.split("*", 1)[0]


_SEGMENT = re.compile(r"((?:[^?']|\?.)*)'", re.S)  # up to an unreleased terminator
_UNRELEASE = re.compile(r"\?(.)", re.S)


def _elements(segment: str, separator: str) -> list[str]:
    return re.split(rf"(?<!\?){re.escape(separator)}", segment)


def _mscons(tally: _Tally, files: Iterable[ExportFile]) -> None:
    """A streaming tally of LOC / PIA / QTY, because a day of 10,000 batteries is a
    quarter of a gigabyte of EDIFACT and the full reader (vbatt.ingest.mscons, used by
    the round-trip tests) builds an object per value. Our writer's UNA is fixed
    (``:+.? '``); a file with another one is read with the full reader."""
    for file in files:
        text = file.content.decode("latin-1")
        if not text.startswith("UNA:+.? '"):
            _mscons_full(tally, file)
            continue
        location, channel = "", None
        for match in _SEGMENT.finditer(text, 9):
            segment = match.group(1).lstrip("\r\n")
            tag = segment[:3]
            if tag == "LOC":
                location = _UNRELEASE.sub(r"\1", _elements(segment, "+")[2].split(":")[0])
            elif tag == "PIA":
                code = _elements(_elements(segment, "+")[2], ":")[0]
                channel = tally.by_obis.get(_bare(_UNRELEASE.sub(r"\1", code)))
            elif tag == "QTY" and channel is not None:
                qualifier, value = _elements(segment, "+")[1].split(":")[:2]
                if qualifier in ("220", "67"):
                    tally.add(tally.battery(location), channel, float(value))
            elif tag == "LIN":
                channel = None


def _mscons_full(tally: _Tally, file: ExportFile) -> None:
    from vbatt.ingest.mscons import normalise_obis, read_mscons

    for _message, series in read_mscons(file.content).series():
        channel = tally.by_obis.get(normalise_obis(series.obis or ""))
        if channel is None:  # a register series (level, totals)
            continue
        for value in series.values:
            if value.is_interval:
                tally.add(tally.battery(series.location_id or ""), channel, value.quantity)


def _csv(tally: _Tally, files: Iterable[ExportFile], dialect: str) -> None:
    separator, comma = (";", True) if dialect == "dach" else (",", False)
    for file in files:
        if not file.name.endswith("_intervals.csv"):
            continue
        text = file.content.decode("utf-8-sig")
        for row in csv.DictReader(io.StringIO(text), delimiter=separator):
            for channel, column in PROFILE_COLUMNS.items():
                value = row[column].replace(",", ".") if comma else row[column]
                tally.add(row["battery_id"], channel, float(value))


def _sdat(tally: _Tally, files: Iterable[ExportFile]) -> None:
    from lxml import etree

    for file in files:
        doc = etree.fromstring(file.content)
        for block in doc.iterfind(".//rsm:MeteringData", SDAT_NS):
            point = block.findtext(".//rsm:VSENationalID", namespaces=SDAT_NS) or ""
            product = block.find("rsm:Product/rsm:ID", SDAT_NS)
            if product is None or product.get("schemeID") != "OBIS":
                continue  # a GS1 product code does not say which channel: not comparable
            channel = tally.by_obis.get(_bare(product.text or ""))
            if channel is None:
                continue
            for volume in block.iterfind(".//rsm:Volume", SDAT_NS):
                tally.add(tally.battery(point), channel, float(volume.text))


def _ise(tally: _Tally, files: Iterable[ExportFile], options: dict) -> None:
    from vbatt.exports.formats import ise, ise_template

    refs = options.get("templates") or (
        [options["template"]] if "template" in options else ise.DEFAULT_TEMPLATES
    )
    templates = {ise_template.load(r, options.get("base_dir")) for r in refs}
    for template in (t for t in templates if t.variant == "timeseries"):
        fields = [c.field for c in template.columns]
        if not {"metering_point", "obis", "value"} <= set(fields):
            continue  # a partner's own layout without these cannot be read back
        for file in files:
            text = file.content.decode(template.encoding).removeprefix("\ufeff")
            reader = csv.reader(io.StringIO(text), delimiter=template.separator)
            if template.header:
                if next(reader, None) != [c.header for c in template.columns]:
                    continue  # another variant's file
            for cells in reader:
                record = dict(zip(fields, cells, strict=False))
                channel = tally.by_obis.get(_bare(record["obis"]))
                if channel is not None:
                    value = float(record["value"].replace(template.decimal_point, "."))
                    tally.add(tally.battery(record["metering_point"]), channel, value)


def contents(batch: ExportBatch, fmt: FormatConfig, files: list[ExportFile]) -> list[dict]:
    """Rows ``battery_id, channel, value_count, sum_kwh`` of what the files carry."""
    tally = _Tally(batch)
    if fmt.format == "mscons":
        _mscons(tally, files)
    elif fmt.format == "csv":
        _csv(tally, files, fmt.options.get("dialect", "default"))
    elif fmt.format == "sdat":
        _sdat(tally, files)
    elif fmt.format == "ise":
        _ise(tally, files, fmt.options)
    return tally.rows()
