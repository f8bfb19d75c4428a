"""Read SDAT-CH ``ValidatedMeteredData`` (ebIX E66) documents into interval energies.

Swiss metering data reaches a utility as E66 documents: per metering point, one
``MeteringData`` block per product with an interval, a resolution and numbered
``Observation``s (``Position/Sequence``, ``Volume``, optional ``Condition``). There is no
official XSD here; the reader assumes the structure of the SDAT-CH 1.2 documents of Swiss
DSOs that the project's own writer (``vbatt.exports.formats.sdat``) produces, and says
where it is lenient (docs/inputs.md):

- the root is ``ValidatedMeteredData_12``, ``_13`` or ``_14``, in any namespace (elements
  are matched by local name, so a later version's namespace does not stop the reader);
- times are ISO 8601 with ``Z`` or an offset; without one they are read as UTC (SDAT-CH
  is UTC throughout) and the file carries a warning;
- ``Resolution/Unit`` is ``MIN``, ``HOUR`` (``HUR``), ``DAY`` or ``MONTH`` (``MON``, calendar
  months of Europe/Zurich); position n covers ``start + (n-1) x resolution``; a missing
  position is a missing value, never a zero; a DST day is simply 92 or 100 positions;
- ``Condition`` ``56`` is an estimated value; ``21`` (seen in real documents beside 56)
  is taken as measured; any other code is taken as estimated and named in a warning;
- the product is an OBIS code (``schemeID="OBIS"``) or the ebIX/GS1 code of active energy
  (8716867000030); reactive energy (OBIS C 3..8, GS1 8716867000047, unit KVR/KVARH), other
  media and other product codes are ignored and named in the load report.

Which meter a metering point belongs to is configuration (:func:`load_metering_points`):
a consumption point's volumes are the meter's import, a production point's its export.
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from vbatt.ingest.mscons import IntervalEnergy, Register, energy_record
from vbatt.readings import Rejected

__all__ = [
    "Block",
    "MeteringPoints",
    "Observation",
    "SdatDocument",
    "SdatError",
    "load_metering_points",
    "read_sdat",
    "to_interval_energies",
]

ROOTS = ("ValidatedMeteredData_12", "ValidatedMeteredData_13", "ValidatedMeteredData_14")
KINDS = {"ConsumptionMeteringPoint": "import", "ProductionMeteringPoint": "export"}
GS1_ACTIVE_ENERGY = "8716867000030"
GS1_REACTIVE_ENERGY = "8716867000047"
CONDITION_ESTIMATED = "56"
CONDITION_MEASURED = ("", "21")
_UNITS = {"KWH": 1.0, "WH": 0.001, "WHR": 0.001, "MWH": 1000.0}
_REACTIVE_UNITS = {"KVR", "KVARH", "KVAR", "K3", "KVH", "MVR"}
_GAS_UNITS = {"MTQ", "M3", "NM3"}
_STEPS = {
    "SEC": timedelta(seconds=1),
    "MIN": timedelta(minutes=1),
    "HOUR": timedelta(hours=1),
    "HUR": timedelta(hours=1),
    "DAY": timedelta(days=1),
}
_MONTHS = ("MONTH", "MON")
_OBIS = re.compile(r"^(\d+)-(\d+):(\d+)\.(\d+)\.(\d+)(?:\*(\d+))?$")
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
_LOCAL = ZoneInfo("Europe/Zurich")  # calendar months of a monthly resolution


class SdatError(ValueError):
    """Not a usable SDAT-CH E66 document; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Observation:
    sequence: int
    volume: str  # as written, so a bad number is quarantined verbatim
    condition: str
    start: datetime  # UTC
    end: datetime  # UTC
    line: int

    @property
    def estimated(self) -> bool:
        return self.condition not in CONDITION_MEASURED


@dataclass(frozen=True, slots=True)
class Block:
    """One ``MeteringData``: one product of one metering point over an interval."""

    document_id: str
    kind: str  # ConsumptionMeteringPoint | ProductionMeteringPoint
    metering_point: str
    product_id: str
    product_scheme: str  # OBIS, or the schemeAgencyID (9 = GS1)
    unit: str
    start: datetime
    end: datetime
    resolution: str  # e.g. '15 MIN'
    observations: tuple[Observation, ...]
    line: int


@dataclass(frozen=True)
class SdatDocument:
    source: str
    root: str
    document_id: str
    blocks: tuple[Block, ...]
    warnings: list[str] = field(default_factory=list)  # for the sender: once each, what to do
    notes: list[str] = field(default_factory=list)  # how it was read, summed up for the report


# --------------------------------------------------------------------------- reading


def read_sdat(source: str | os.PathLike | bytes) -> SdatDocument:
    """One E66 document from a path or bytes; :class:`SdatError` if it is not one."""
    from lxml import etree

    if isinstance(source, bytes):
        data, name = source, "<bytes>"
    else:
        path = Path(source)
        data, name = path.read_bytes(), path.name
    try:
        root = etree.fromstring(
            data, parser=etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
        )
    except etree.XMLSyntaxError as exc:
        raise SdatError(f"{name}: not well-formed XML: {exc}") from exc
    tag = etree.QName(root).localname
    if tag not in ROOTS:
        raise SdatError(
            f"{name}: root element {tag!r} is not an SDAT-CH E66 document ({', '.join(ROOTS)})"
        )
    warnings: list[str] = []
    header = _child(root, "ValidatedMeteredData_HeaderInformation")
    document_id = (
        _text(_find(header, "InstanceDocument", "DocumentID")) if header is not None else ""
    )
    doc_type = _text(_find(header, "InstanceDocument", "DocumentType", "ebIXCode"))
    if doc_type and doc_type != "E66":
        raise SdatError(f"{name}: DocumentType {doc_type!r} is not E66 (validated metered data)")
    blocks = tuple(
        _block(element, name, warnings) for element in root if _local(element) == "MeteringData"
    )
    if not blocks:
        raise SdatError(f"{name}: no MeteringData block: the document carries no values")
    return SdatDocument(name, tag, document_id, blocks, warnings, _condition_notes(blocks))


def _condition_notes(blocks: tuple[Block, ...]) -> list[str]:
    """One line per Condition code that is neither measured (21, none) nor estimated (56),
    with how many volumes carry it: they are taken as estimated, which is how they are
    read, not something to act on volume by volume."""
    codes = Counter(
        obs.condition
        for block in blocks
        if block_use(block) is None  # the values used: the others are ignored anyway
        for obs in block.observations
        if obs.condition not in CONDITION_MEASURED and obs.condition != CONDITION_ESTIMATED
    )
    return [
        f"{count} volume{'s' if count > 1 else ''} with Condition {code!r} (neither 21"
        " measured nor 56 estimated): taken as estimated"
        for code, count in sorted(codes.items())
    ]


def _block(element, name: str, warnings: list[str]) -> Block:
    where = f"{name}: line {element.sourceline} (MeteringData)"
    kinds = [c for c in element if _local(c) in KINDS]
    if len(kinds) != 1:
        raise SdatError(f"{where}: needs one ConsumptionMeteringPoint or ProductionMeteringPoint")
    point = " ".join(kinds[0].itertext()).strip()
    if not point:
        raise SdatError(f"{where}: the metering point has no id")
    start = _instant(_find(element, "Interval", "StartDateTime"), where, "StartDateTime", warnings)
    end = _instant(_find(element, "Interval", "EndDateTime"), where, "EndDateTime", warnings)
    if end <= start:
        raise SdatError(f"{where}: Interval end {end.isoformat()} is not after its start")
    amount = _text(_find(element, "Resolution", "Resolution"))
    unit = _text(_find(element, "Resolution", "Unit")).upper()
    if not amount.isdigit() or int(amount) < 1 or unit not in (*_STEPS, *_MONTHS):
        raise SdatError(
            f"{where}: Resolution {amount!r} {unit!r} is not a whole number of"
            " MIN, HOUR, DAY or MONTH"
        )
    product = _find(element, "Product", "ID")
    observations = []
    for obs in (c for c in element if _local(c) == "Observation"):
        sequence = _text(_find(obs, "Position", "Sequence"))
        if not sequence.isdigit() or int(sequence) < 1:
            raise SdatError(
                f"{name}: line {obs.sourceline}: Observation Position/Sequence {sequence!r}"
                " is not a position 1, 2, ..."
            )
        begin, finish = _position(start, int(sequence), int(amount), unit)
        if finish > end:
            raise SdatError(
                f"{name}: line {obs.sourceline}: position {sequence} ends {finish.isoformat()},"
                f" after the block's interval ({end.isoformat()})"
            )
        condition = _text(_child(obs, "Condition"))
        volume = _text(_child(obs, "Volume"))
        observations.append(
            Observation(int(sequence), volume, condition, begin, finish, obs.sourceline)
        )
    return Block(
        document_id=_text(_child(element, "DocumentID")),
        kind=_local(kinds[0]),
        metering_point=point,
        product_id=_text(product),
        product_scheme=(
            (product.get("schemeID") or product.get("schemeAgencyID") or "")
            if product is not None
            else ""
        ),
        unit=_text(_find(element, "Product", "MeasureUnit")).upper(),
        start=start,
        end=end,
        resolution=f"{amount} {unit}",
        observations=tuple(observations),
        line=element.sourceline,
    )


def _position(start: datetime, sequence: int, amount: int, unit: str) -> tuple[datetime, datetime]:
    if unit in _MONTHS:
        local = start.astimezone(_LOCAL)

        def month(n: int) -> datetime:
            index = local.month - 1 + n
            wall = local.replace(tzinfo=None, year=local.year + index // 12, month=index % 12 + 1)
            return wall.replace(tzinfo=_LOCAL).astimezone(UTC)

        return month((sequence - 1) * amount), month(sequence * amount)
    step = amount * _STEPS[unit]
    return start + (sequence - 1) * step, start + sequence * step


_ZONELESS = "times without Z or an offset"


def _instant(element, where: str, what: str, warnings: list[str]) -> datetime:
    value = _text(element)
    if not value:
        raise SdatError(f"{where}: Interval/{what} is missing")
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SdatError(f"{where}: {what} {value!r} is not an ISO 8601 time") from exc
    if stamp.tzinfo is None:
        if not any(w.startswith(_ZONELESS) for w in warnings):  # once per document
            warnings.append(
                f"{_ZONELESS} (the first: {value!r}, line {element.sourceline}) are read as UTC,"
                " as SDAT-CH defines them: if the sender meant local time, ask for times with"
                " Z or an offset"
            )
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.astimezone(UTC)


def _local(element) -> str:
    tag = element.tag
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _child(element, name: str):
    if element is None:
        return None
    return next((c for c in element if _local(c) == name), None)


def _find(element, *names: str):
    for name in names:
        element = _child(element, name)
    return element


def _text(element) -> str:
    return (element.text or "").strip() if element is not None else ""


# --------------------------------------------------------------------------- meters


@dataclass(frozen=True)
class MeteringPoints:
    """Metering point -> meter, per kind; a point not listed is the meter of the same id."""

    meters: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, point) -> meter

    def meter(self, kind: str, point: str) -> str:
        return self.meters.get((kind, point), point)


def load_metering_points(path: Path) -> MeteringPoints:
    """Read ``meter_id,consumption_point,production_point`` (either point may be empty);
    a missing file means every point id is its meter id."""
    if not path.is_file():
        return MeteringPoints()
    meters: dict[tuple[str, str], str] = {}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = {"meter_id", "consumption_point", "production_point"}
        if not columns <= set(reader.fieldnames or ()):
            raise SdatError(
                f"{path}: the metering point file needs the columns"
                " meter_id,consumption_point,production_point"
            )
        for row in reader:
            meter = (row["meter_id"] or "").strip()
            for kind, column in (
                ("ConsumptionMeteringPoint", "consumption_point"),
                ("ProductionMeteringPoint", "production_point"),
            ):
                point = (row[column] or "").strip()
                if not point:
                    continue
                if not meter:
                    raise SdatError(f"{path}:{reader.line_num}: {column} {point} has no meter_id")
                if meters.get((kind, point), meter) != meter:
                    raise SdatError(
                        f"{path}:{reader.line_num}: {column} {point} is already the point of"
                        f" meter {meters[(kind, point)]}"
                    )
                meters[(kind, point)] = meter
    return MeteringPoints(meters)


# --------------------------------------------------------------------------- conversion


def block_use(block: Block) -> str | None:
    """None when the block is active energy in a known unit, else why it is ignored."""
    product, scheme = block.product_id, block.product_scheme.upper()
    if block.unit in _REACTIVE_UNITS:
        return f"reactive energy ({product or 'no product'}, unit {block.unit})"
    if block.unit in _GAS_UNITS:
        return f"not electricity: gas volume ({product or 'no product'}, unit {block.unit})"
    if block.unit and block.unit not in _UNITS:
        return f"not energy (unit {block.unit}, product {product or 'none'})"
    if not product or product == GS1_ACTIVE_ENERGY:
        return None
    if product == GS1_REACTIVE_ENERGY:
        return f"reactive energy (product {product})"
    match = _OBIS.match(product)
    if scheme != "OBIS" and match is None:
        return f"a product code without an import/export OBIS ({product})"
    if match is None:
        return f"a product code without an import/export OBIS ({product})"
    a, c = int(match[1]), int(match[3])
    if a != 1:
        return f"not electricity (OBIS medium {a}, {product})"
    if 3 <= c <= 8:
        return f"reactive energy ({product})"
    if c not in (1, 2):
        return f"a register this project does not use ({product})"
    return None


def to_interval_energies(
    document: SdatDocument, points: MeteringPoints | None = None
) -> tuple[list[IntervalEnergy], list[Rejected], Counter[str]]:
    """Volumes as interval energies of meters (import for consumption points, export for
    production points), the volumes quarantined (not a number, negative, two different
    values for the same interval in one file) and the ignored ones counted by reason."""
    points = points or MeteringPoints()
    ignored: Counter[str] = Counter()
    rejected: list[Rejected] = []
    by_slot: dict[tuple[str, str, datetime], list[IntervalEnergy]] = defaultdict(list)
    for block in document.blocks:
        why = block_use(block)
        if why is not None:
            ignored[why] += len(block.observations)
            continue
        register: Register = KINDS[block.kind]  # type: ignore[assignment]
        meter = points.meter(block.kind, block.metering_point)
        factor = _UNITS.get(block.unit or "KWH", 1.0)
        label = block.product_id if _OBIS.match(block.product_id) else ""
        for obs in block.observations:
            where = f"{document.source}:{obs.line}"
            raw = (
                f"{block.kind} {block.metering_point} {block.product_id} position {obs.sequence}"
                f" {obs.start.isoformat()}/{obs.end.isoformat()} volume {obs.volume!r}"
                f"{' condition ' + obs.condition if obs.condition else ''}"
            )
            problem = _volume_problem(obs.volume)
            if problem:
                rejected.append(Rejected(meter, raw, problem, where))
                continue
            energy = IntervalEnergy(
                meter_id=meter,
                interval_start=obs.start,
                interval_end=obs.end,
                register=register,
                kwh=float(obs.volume) * factor,
                substitute=obs.estimated,
                where=where,
                obis=label or f"{block.kind} volume",
            )
            by_slot[(meter, register, obs.start)].append(energy)
    energies: list[IntervalEnergy] = []
    for (_meter, register, start), slot in by_slot.items():
        if len({(round(e.kwh, 9), e.interval_end, e.substitute) for e in slot}) > 1:
            reason = (
                f"{len(slot)} different {register} volumes for {start.isoformat()} in one"
                " document (two blocks for the same meter and direction)"
            )
            rejected.extend(Rejected(e.meter_id, energy_record(e), reason, e.where) for e in slot)
            continue
        energies.append(slot[0])
        if len(slot) > 1:
            ignored[f"the same {register} volume sent twice in one document"] += len(slot) - 1
    return energies, rejected, ignored


def _volume_problem(volume: str) -> str:
    if not _NUMBER.match(volume):
        return f"Volume {volume!r} is not a number"
    if float(volume) < 0:
        return f"Volume {volume} is negative; SDAT volumes are >= 0"
    return ""
