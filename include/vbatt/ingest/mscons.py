"""Read MSCONS interchanges (metered services consumption reports) into typed values.

Metering operators in Germany (BDEW MSCONS 2.4c) and Switzerland (MSCONS 2.2e and the older
D:99A 1.6) deliver load profiles and meter readings as UN/EDIFACT. pydifact does the lexical
work (UNA, release character ``?``); this module adds what the MSCONS guides say about
meaning: locations (LOC+172), OBIS codes (PIA+5), quantities (QTY) with their quality and the
timestamps that go with them (DTM), converted to UTC.

Real files are not always valid: the Swiss 2.2e files declare a wrong UNT segment count.
Such things that do not change the meaning of the data become warnings on the result;
anything that makes the content ambiguous (truncation, unparsable number, unknown date
format, missing UNT) raises :class:`MsconsError` - never a half-read interchange.

The conversions at the end adapt the structure to the counter-based pipeline:
``to_readings`` for register readings, ``to_interval_energies`` and ``to_counter_readings``
for load profiles.
"""

from __future__ import annotations

import codecs
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Literal

from pydifact.control import Characters
from pydifact.exceptions import EDISyntaxError
from pydifact.parser import Parser
from pydifact.tokenizer import Tokenizer

from vbatt.readings import Reading, Rejected

__all__ = [
    "IntervalEnergy",
    "MeterValue",
    "Message",
    "MsconsError",
    "MsconsInterchange",
    "Series",
    "Status",
    "normalise_obis",
    "read_mscons",
    "to_counter_readings",
    "to_interval_energies",
    "to_readings",
    "series_use",
    "value_use",
    "ignored_and_unusable",
]

Register = Literal["import", "export"]

QTY_TRUE_VALUE = "220"
QTY_SUBSTITUTE = "67"

# QTY 6063 qualifiers (MIG 2.2g/2.4c, AHB FV2410/FV2504): what a value of a used register is.
# Used: true values (220; 46 in D:99A 1.6), substitutes (67, estimated), preliminary (Z18,
# the best value at the time). The sender marks 20 and Z30 values as unusable/missing:
# quarantined, the interval is a gap. Others are not metered energy of the interval.
_QTY_USED = {"220", "46", QTY_SUBSTITUTE, "Z18"}
_QTY_UNUSABLE = {"20": "a value the sender marks not usable", "Z30": "a missing value"}
_QTY_NOT_USED = {
    "201": "proposed value",
    "187": "forecast value",
    "79": "summed energy quantity (balancing)",
    "Z31": "delivery-note quantity",
    "Z47": "basis of a POG determination",
}
# Units (QTY 6411, MEA) that are not active energy or power.
_REACTIVE_UNITS = {"KVR", "K3", "KVH", "KVRH", "KVARH", "K2", "MVR", "MVH"}
_GAS_UNITS = {"MTQ", "M3", "MQH", "NM3"}
# OBIS code types (PIA 7143): SRW is an OBIS code; 'SWR' is a typo seen in a Swiss 1.6 file.
_OBIS_CODE_TYPES = {"", "SRW", "SWR"}
_MEDIA = {6: "heat", 7: "gas", 8: "water", 9: "hot water", 5: "cooling"}

# UN/ECE Recommendation 20 codes (and the short forms some senders use) -> factor to kWh
# (energy) or to kW (power, to be multiplied by the interval length in hours).
_ENERGY_UNITS = {"KWH": 1.0, "WHR": 0.001, "WH": 0.001, "MWH": 1000.0, "GWH": 1_000_000.0}
_POWER_UNITS = {"KWT": 1.0, "WTT": 0.001, "W": 0.001, "MAW": 1000.0, "MW": 1000.0}

# DTM 2379 format codes for durations (DTM+672 resolution of positional values).
_DURATION_UNITS = {
    "804": timedelta(days=1),
    "805": timedelta(hours=1),
    "806": timedelta(minutes=1),
    "807": timedelta(seconds=1),
}
# DTM qualifiers whose value the reader uses; a DTM with another qualifier only warns when
# its format is unknown (e.g. DTM+492 balancing month, DTM+293 version, DTM+157 validity).
_USED_DTM = {"137", "163", "164", "7", "9", "60", "306", "672"}

_OBIS = re.compile(r"^(\d+)-(\d+):(\d+)\.(\d+)\.(\d+)(?:\*(\d+))?$")
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)$")
_DTM_303 = re.compile(r"^(\d{12})([+-]\d{2})(\d{2})?$")
_DTM_304 = re.compile(r"^(\d{14})([+-]\d{2})(\d{2})?$")
_ZONELESS = {"102": r"\d{8}", "203": r"\d{12}", "204": r"\d{14}", "610": r"\d{6}"}


class MsconsError(ValueError):
    """The input is not a usable MSCONS interchange; the message says where and why."""


# --------------------------------------------------------------------------- result model


@dataclass(frozen=True, slots=True)
class Status:
    """One STS segment: why a value is what it is (e.g. Z32/ZJ2 = substitute by statistics)."""

    category: str  # C601, e.g. Z32 Ersatzwertbildungsverfahren, Z34 Korrekturgrund
    status: str = ""  # C555
    reason: str = ""  # C556, e.g. ZJ2, ZB0, ZA4


@dataclass(frozen=True, slots=True)
class MeterValue:
    """One QTY with its timestamps; either an interval value or a register reading."""

    quantity: float
    qualifier: str  # QTY 6063 as sent: 220 true, 67 substitute, Z18 preliminary, 46, 79...
    unit: str | None  # as sent in QTY/MEA; None if the sender relies on the OBIS code
    start: datetime | None = None  # DTM+163, UTC
    end: datetime | None = None  # DTM+164, UTC
    read_at: datetime | None = None  # DTM+7 (else +9, +60), UTC
    statuses: tuple[Status, ...] = ()
    segment: int = 0  # position of the QTY segment in the file (1-based, UNA counts)
    raw: str = ""  # the QTY segment as received, for Rejected rows

    @property
    def quality(self) -> str:
        """'true', 'substitute', or the raw qualifier for anything else."""
        return {QTY_TRUE_VALUE: "true", QTY_SUBSTITUTE: "substitute"}.get(
            self.qualifier, self.qualifier
        )

    @property
    def is_substitute(self) -> bool:
        return self.qualifier == QTY_SUBSTITUTE

    @property
    def is_interval(self) -> bool:
        return self.start is not None and self.end is not None


@dataclass(frozen=True, slots=True)
class Series:
    """All values of one OBIS code (LIN/PIA) at one location (LOC+172)."""

    location_id: str | None  # Zählpunkt / Messlokation / Marktlokation; None if LOC is empty
    obis: str | None  # normalised, e.g. '1-1:1.29.0'
    obis_raw: str | None  # as sent, e.g. '1-1:1.29.0*255'
    unit: str | None  # MEA unit or the unit of the first QTY that has one
    values: tuple[MeterValue, ...]
    period_start: datetime | None = None  # LOC-level DTM+163
    period_end: datetime | None = None  # LOC-level DTM+164
    resolution: timedelta | None = None  # DTM+672 (positional values)
    location_references: tuple[tuple[str, str], ...] = ()  # RFF after LOC, e.g. ('AGK', ..)
    code_type: str = ""  # PIA 7143: SRW = OBIS; Z02 OBIS-like, Z08 medium: product codes

    @property
    def kind(self) -> Literal["interval", "register", "empty", "mixed"]:
        if not self.values:
            return "empty"
        if all(v.is_interval for v in self.values):
            return "interval"
        if all(v.read_at is not None and not v.is_interval for v in self.values):
            return "register"
        return "mixed"


@dataclass(frozen=True, slots=True)
class Message:
    """One UNH..UNT message."""

    reference: str
    message_type: str  # e.g. 'MSCONS:D:04B:UN:2.4c'
    document_code: str  # BGM 1001: 7, Z48, ...
    document_number: str
    document_date: datetime | None
    pruefidentifikator: str | None  # RFF+Z13
    sender: str | None  # NAD+MS
    recipient: str | None  # NAD+MR
    series: tuple[Series, ...]
    segment_count: int  # counted UNH..UNT inclusive
    declared_segment_count: int  # as in UNT

    @property
    def version(self) -> str:
        """The association assigned code, e.g. '2.4c', '2.2e', '1.6'."""
        parts = self.message_type.split(":")
        return parts[4] if len(parts) > 4 else ""


@dataclass(frozen=True)
class MsconsInterchange:
    """One UNB..UNZ interchange; warnings name deviations that did not block reading."""

    source: str
    syntax: str  # e.g. 'UNOC:3'
    sender: str
    receiver: str
    prepared: str  # UNB date:time as sent (YYMMDD:HHMM)
    reference: str
    application_reference: str  # e.g. TL, VL, EM, LG
    messages: tuple[Message, ...]
    warnings: list[str] = field(default_factory=list)  # for the sender: once each, what to do
    notes: list[str] = field(default_factory=list)  # how it was read, summed up for the report

    def series(self) -> Iterator[tuple[Message, Series]]:
        for message in self.messages:
            for series in message.series:
                yield message, series


@dataclass(frozen=True, slots=True)
class IntervalEnergy:
    """Energy of one register over one interval, in kWh - the load-profile shape."""

    meter_id: str
    interval_start: datetime  # UTC
    interval_end: datetime  # UTC
    register: Register
    kwh: float
    substitute: bool
    where: str = field(default="", compare=False)  # file#segment, for Rejected rows
    obis: str = field(default="", compare=False)  # the series' code, for the load report


# --------------------------------------------------------------------------- lexical layer


@dataclass(frozen=True, slots=True)
class _Segment:
    pos: int
    tag: str
    elements: list
    raw: str

    def el(self, i: int, j: int = 0) -> str:
        """Component j of element i, '' when absent - MSCONS omits trailing empties."""
        if i >= len(self.elements):
            return ""
        element = self.elements[i]
        if isinstance(element, list):
            return element[j] if j < len(element) else ""
        return element if j == 0 else ""

    def composite(self, i: int) -> list[str]:
        if i >= len(self.elements):
            return []
        element = self.elements[i]
        return list(element) if isinstance(element, list) else [element]


def _load(source: str | os.PathLike | bytes) -> tuple[str, str, str]:
    """Return (text, name, note): bytes decoded as the UNB syntax identifier declares
    (``_decode``), the note saying when they were read otherwise ('' if not)."""
    if isinstance(source, bytes):
        text, note = _decode(source, "<bytes>")
        return text, "<bytes>", note
    if isinstance(source, os.PathLike) or _is_existing_file(source):
        path = Path(source)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise MsconsError(f"{path}: cannot read file: {exc}") from exc
        text, note = _decode(data, path.name)
        return text, path.name, note
    return source, "<text>", ""


def _is_existing_file(text: str) -> bool:
    if "\n" in text or "'" in text or len(text) > 1024:
        return False
    try:
        return Path(text).is_file()
    except OSError:
        return False


# UNB syntax identifier (ISO 9735) -> (codec, name) of the character set it declares
CHARSETS = {
    # levels A and B are ISO 646 subsets of ASCII: read as latin-1, which keeps any byte
    "UNOA": ("latin-1", "ISO 646 level A"),
    "UNOB": ("latin-1", "ISO 646 level B"),
    "UNOC": ("latin-1", "ISO 8859-1"),
    "UNOD": ("iso8859-2", "ISO 8859-2"),
    "UNOE": ("iso8859-5", "ISO 8859-5"),
    "UNOF": ("iso8859-7", "ISO 8859-7"),
    "UNOW": ("utf-8", "UTF-8"),
    "UNOY": ("utf-8", "ISO 10646-1, UTF-8"),
}
_SYNTAX = re.compile(rb"UNB.(UNO[A-Z])")


def _decode(data: bytes, name: str) -> tuple[str, str]:
    """The text of an interchange and a note for the load report ('' if none).

    Decoded as the UNB syntax identifier declares (an unknown one as UNOC, ISO 8859-1).
    Bytes that are valid UTF-8 with characters beyond ASCII are read as UTF-8 even where
    a single-byte set is declared: senders often write UTF-8 under UNOC, and read as
    ISO 8859-1 every such character would become two ('Zähler' as 'ZÃ¤hler', in meter ids
    too), while text really in ISO 8859-1 is practically never valid UTF-8. The note says
    so once, with where, so the sender can be asked to declare UNOW. A file declaring UTF-8
    whose bytes are not is refused: which single-byte set it is in cannot be known.
    """
    found = _SYNTAX.search(data[:400])
    syntax = found[1].decode() if found else "UNOC"
    syntax = syntax if syntax in CHARSETS else "UNOC"
    charset, label = CHARSETS[syntax]
    if charset == "utf-8":
        return _declared(data, name, syntax), ""
    body = data.removeprefix(codecs.BOM_UTF8)  # a byte-order mark alone changes no text
    if body.isascii():
        return body.decode("ascii"), ""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return _declared(body, name, syntax), ""
    return text, _utf8_note(text, syntax, label)


def _declared(data: bytes, name: str, syntax: str) -> str:
    """``data`` in the character set its UNB declares; a byte that set has no character for
    (not UTF-8 under UNOW; 0xae, 0xd2 or 0xff under UNOF's ISO 8859-7) refuses the file,
    naming the byte and its line: which set the file is really in cannot be known."""
    charset, label = CHARSETS[syntax]
    try:
        return data.decode(charset)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise MsconsError(
            f"{name}: declares {syntax} ({label}), but byte 0x{data[exc.start]:02x} at line"
            f" {line} is not {label}: ask the sender to declare the character set the file is"
            " in (UNOW for UTF-8, UNOC for ISO 8859-1)"
        ) from None


def _utf8_note(text: str, syntax: str, label: str) -> str:
    """The load report's one line on a file read as UTF-8 against its declaration."""
    first = next(i for i, c in enumerate(text) if not c.isascii())
    terminator = text[8] if text.startswith("UNA") and len(text) > 8 else "'"
    start = text.rfind(terminator, 0, first) + 1
    end = text.find(terminator, first)
    segment = text[start : end if end >= 0 else len(text)].strip()
    shown = segment if len(segment) <= 60 else segment[:57] + "..."
    count = sum(not c.isascii() for c in text)
    return (
        f"declares {syntax} ({label}) but is written in UTF-8 ({count} characters"
        f" beyond ASCII, the first in {shown!r}): read as UTF-8; ask the sender to declare"
        " UNOW, or to send the declared character set"
    )


def _split_una(text: str, name: str) -> tuple[Characters, str, bool]:
    """Control characters from UNA, else the ISO 9735 defaults (decimal point '.')."""
    if text.startswith("UNA"):
        if len(text) < 9:
            raise MsconsError(f"{name}: segment 1 (UNA): truncated service string advice")
        return Characters.from_str(text[:9]), text[9:].lstrip("\r\n"), True
    return Characters(decimal_point="."), text, False


def _segments(text: str, name: str) -> tuple[list[_Segment], Characters]:
    """Tokenise with pydifact and number the segments as a person counting ' would."""
    text = text.lstrip("\ufeff \t\r\n")
    if not (text.startswith("UNA") or text.startswith("UNB")):
        raise MsconsError(
            f"{name}: not an EDIFACT interchange: expected UNA or UNB at segment 1, "
            f"found {text[:20]!r}"
        )
    chars, body, has_una = _split_una(text, name)
    _require_terminated(body, chars, name)
    first = 2 if has_una else 1
    segments: list[_Segment] = []
    raw_segments = Parser().convert_tokens_to_raw_segments(Tokenizer().get_tokens(body, chars))
    try:
        for pos, raw in enumerate(raw_segments, start=first):
            segments.append(_make_segment(pos, raw, chars, name))
    except EDISyntaxError as exc:
        pos = first + len(segments)
        raise MsconsError(f"{name}: segment {pos}: EDIFACT syntax error: {exc}") from exc
    return segments, chars


def _require_terminated(body: str, chars: Characters, name: str) -> None:
    """pydifact silently drops a last segment cut after a separator; refuse it instead."""
    stripped = body.rstrip(" \r\n\t")
    if not stripped:
        raise MsconsError(f"{name}: no segments after the UNA service string advice")
    releases = len(stripped[:-1]) - len(stripped[:-1].rstrip(chars.escape_character))
    if stripped[-1] != chars.segment_terminator or releases % 2 == 1:
        tail = stripped[-40:]
        raise MsconsError(
            f"{name}: truncated: the last segment is not terminated by "
            f"{chars.segment_terminator!r} (file ends with {tail!r})"
        )


def _make_segment(pos: int, raw: list, chars: Characters, name: str) -> _Segment:
    tag = raw[0] if raw else ""
    if not isinstance(tag, str) or not re.fullmatch(r"[A-Z][A-Z0-9]{2}", tag):
        raise MsconsError(f"{name}: segment {pos}: invalid segment tag {tag!r}")
    elements = list(raw[1:])
    return _Segment(pos, tag, elements, _render(tag, elements, chars))


def _render(tag: str, elements: list, chars: Characters) -> str:
    """Re-serialise a segment (with release characters) for Rejected.raw."""

    def esc(value: str) -> str:
        return "".join(
            chars.escape_character + c if c in chars.escaped_syntax_dic else c for c in value
        )

    parts = [tag]
    for element in elements:
        if isinstance(element, list):
            parts.append(chars.component_separator.join(esc(c) for c in element))
        else:
            parts.append(esc(element))
    return chars.data_separator.join(parts)


# --------------------------------------------------------------------------- value parsing


def _number(text: str, seg: _Segment, name: str) -> float:
    """EDIFACT numbers: either decimal mark is accepted (ISO 9735), no thousands separators."""
    if not _NUMBER.match(text):
        raise MsconsError(f"{name}: segment {seg.pos} ({seg.raw}): unparsable number {text!r}")
    return float(text.replace(",", "."))


def _datetime(value: str, fmt: str, seg: _Segment, name: str, naive_tz: tzinfo) -> datetime:
    """Convert a DTM value to UTC; zone-less formats (102, 203) are read in ``naive_tz``."""
    try:
        if fmt in ("303", "304"):
            match = (_DTM_303 if fmt == "303" else _DTM_304).match(value)
            if not match:
                raise ValueError("does not match CCYYMMDDHHMM[SS]ZZZ")
            stamp, hours, minutes = match.groups()
            sign = -1 if hours.startswith("-") else 1
            offset = timedelta(hours=abs(int(hours)), minutes=int(minutes or 0)) * sign
            return _wall_clock(stamp, timezone(offset)).astimezone(UTC)
        if fmt in _ZONELESS and re.fullmatch(_ZONELESS[fmt], value):
            # 102 CCYYMMDD, 203 CCYYMMDDHHMM, 204 CCYYMMDDHHMMSS, 610 CCYYMM: local wall clock
            padded = (value + "01" if fmt == "610" else value).ljust(12, "0")
            return _wall_clock(padded, naive_tz).astimezone(UTC)
    except ValueError as exc:
        raise MsconsError(
            f"{name}: segment {seg.pos} ({seg.raw}): invalid date/time {value!r}: {exc}"
        ) from exc
    if fmt in _ZONELESS:
        raise MsconsError(
            f"{name}: segment {seg.pos} ({seg.raw}): {value!r} does not match format {fmt}"
        )
    raise MsconsError(
        f"{name}: segment {seg.pos} ({seg.raw}): unknown DTM format code {fmt!r} "
        "(supported: 102, 203, 204, 303, 304, 610)"
    )


def _wall_clock(stamp: str, tz: tzinfo) -> datetime:
    """CCYYMMDDHHMM[SS]; hour 24:00 (allowed by EDIFACT as end of day) rolls over."""
    day = datetime.strptime(stamp[:8], "%Y%m%d")
    hour, minute = int(stamp[8:10]), int(stamp[10:12])
    second = int(stamp[12:14]) if len(stamp) >= 14 else 0
    if hour == 24 and minute == 0 and second == 0:
        return (day + timedelta(days=1)).replace(tzinfo=tz)
    return day.replace(hour=hour, minute=minute, second=second, tzinfo=tz)


def _duration(value: str, fmt: str, seg: _Segment, name: str) -> timedelta:
    if fmt not in _DURATION_UNITS or not value.isdigit():
        raise MsconsError(
            f"{name}: segment {seg.pos} ({seg.raw}): unsupported duration {value!r} "
            f"in format {fmt!r} (supported: 804-807)"
        )
    return int(value) * _DURATION_UNITS[fmt]


def normalise_obis(code: str) -> str:
    """Strip the '*255' (current value) suffix so 2.2e and 2.4c codes compare equal."""
    code = code.strip()
    match = _OBIS.match(code)
    if not match:
        return code
    a, b, c, d, e, f = match.groups()
    base = f"{int(a)}-{int(b)}:{int(c)}.{int(d)}.{int(e)}"
    return base if f in (None, "255") else f"{base}*{int(f)}"


def _obis_parts(obis: str | None) -> tuple[int, int, int, int, int] | None:
    match = _OBIS.match(obis or "")
    if not match or match.group(6) not in (None, "255"):
        return None
    a, b, c, d, e = (int(g) for g in match.groups()[:5])
    return a, b, c, d, e


# --------------------------------------------------------------------------- what is used


def series_use(series: Series) -> tuple[Literal["profile", "reading"], Register] | str:
    """What this project does with a series: ('profile'|'reading', register), or the
    reason it is ignored (naming the code, so the load report reads per register).

    Used: active energy of electricity (OBIS A=1), import C=1 / export C=2, as a load
    profile (D=29, E=0) or as register readings (D=8, any tariff E). Everything else the
    MSCONS guides allow is recognised and named: gas and other media (A, or a volume
    unit), reactive (C=3..8) and apparent (C=9, 10) energy, product codes that are not
    OBIS codes (PIA 7143 Z02/Z08, an article number), energy quantities over a period
    (D=9), maximum demand (D=6) and other registers.
    """
    code = series.obis_raw or ""
    unit = (series.unit or "").upper()
    if not code:
        return "a series without a product code (no PIA+5): no register to assign"
    parts = _obis_parts(series.obis)
    if series.code_type not in _OBIS_CODE_TYPES or _OBIS.match(series.obis or "") is None:
        return f"a product code without an import/export OBIS ({code}:{series.code_type})"
    if unit in _GAS_UNITS:
        return f"not electricity: gas volume ({series.obis}, {unit})"
    if parts is None:  # an OBIS code with a history suffix *F (F != 255)
        return f"a register this project does not use ({series.obis}: a stored past value)"
    a, _b, c, d, e = parts
    if a != 1:
        return f"not electricity: {_MEDIA.get(a, f'medium {a}')} ({series.obis})"
    if unit in _REACTIVE_UNITS or c in range(3, 9):
        return f"reactive energy ({series.obis})"
    if c in (9, 10):
        return f"apparent energy ({series.obis})"
    if c not in (1, 2):
        return f"a register this project does not use ({series.obis})"
    register: Register = "import" if c == 1 else "export"
    if d == 29 and e == 0:
        return "profile", register
    if d == 8:
        return "reading", register
    what = {9: "an energy quantity over a period", 6: "maximum demand", 29: "a tariff profile"}
    detail = what.get(d, "not a load profile (x.29.0) nor a meter reading (x.8.x)")
    return f"a register this project does not use ({series.obis}: {detail})"


def value_use(
    kind: Literal["profile", "reading"], value: MeterValue, version: str = ""
) -> tuple[str, str] | None:
    """None when the value of a used series is used, else ('ignored'|'quarantined', why).

    ``version`` is the message's (``Message.version``): in the Swiss D:99A 1.6 files the
    values of a series are QTY 46 and 79 (UNCL 6063 delivered / other quantity), both used;
    from MSCONS 2.x on, 79 is a summed (balancing) quantity and not a metered value.
    """
    qualifier = value.qualifier
    if qualifier == "79" and version.startswith("1."):
        qualifier = "46"
    if qualifier in _QTY_UNUSABLE:
        return "quarantined", f"{_QTY_UNUSABLE[qualifier]} (QTY+{qualifier})"
    if qualifier not in _QTY_USED:
        name = _QTY_NOT_USED.get(qualifier, "a quantity type this project does not use")
        return "ignored", f"{name} (QTY+{qualifier})"
    unit = (value.unit or "").upper()
    if unit in _REACTIVE_UNITS:
        return "ignored", f"reactive energy (unit {unit})"
    if unit in _GAS_UNITS:
        return "ignored", f"not electricity: gas volume (unit {unit})"
    if unit and unit not in _ENERGY_UNITS and unit not in _POWER_UNITS:
        return "ignored", f"not energy (unit {unit})"
    if kind == "reading" and value.read_at is None:
        return "ignored", "a register value over a period, not a reading at an instant"
    return None


def ignored_and_unusable(
    interchange: MsconsInterchange,
) -> tuple[Counter[str], list[Rejected]]:
    """Values the conversions leave out: counted by reason, or Rejected (QTY+20, Z30)."""
    ignored: Counter[str] = Counter()
    rejected: list[Rejected] = []
    for message, series in interchange.series():
        use = series_use(series)
        if isinstance(use, str):
            ignored[use] += len(series.values)
            continue
        for value in series.values:
            verdict = value_use(use[0], value, message.version)
            if verdict is None:
                continue
            what, why = verdict
            if what == "ignored":
                ignored[f"{why} of {series.obis}"] += 1
            else:
                rejected.append(_reject(series.location_id, value, why, interchange))
    return ignored, rejected


# --------------------------------------------------------------------------- reader


@dataclass
class _ValueDraft:
    seg: _Segment
    quantity: float
    qualifier: str
    unit: str | None
    dates: dict[str, datetime] = field(default_factory=dict)
    statuses: list[Status] = field(default_factory=list)


@dataclass
class _LocationDraft:
    location_id: str | None
    references: list[tuple[str, str]] = field(default_factory=list)
    period_start: datetime | None = None
    period_end: datetime | None = None
    resolution: timedelta | None = None


@dataclass
class _SeriesDraft:
    location: _LocationDraft
    obis_raw: str | None = None
    code_type: str = ""
    unit: str | None = None
    values: list[_ValueDraft] = field(default_factory=list)


@dataclass
class _MessageDraft:
    unh: _Segment
    reference: str
    message_type: str
    document_code: str = ""
    document_number: str = ""
    document_date: datetime | None = None
    pruefidentifikator: str | None = None
    sender: str | None = None
    recipient: str | None = None
    series: list[Series] = field(default_factory=list)
    location: _LocationDraft | None = None
    current: _SeriesDraft | None = None


class _Reader:
    """A state machine over the segments; one instance reads one interchange."""

    def __init__(self, name: str, naive_tz: tzinfo) -> None:
        self.name = name
        self.naive_tz = naive_tz
        self.unb: _Segment | None = None
        self.unz: _Segment | None = None
        self.messages: list[Message] = []
        self.groups = 0
        self.warnings: list[str] = []
        self.wrong_counts: list[tuple[str, str, int]] = []  # UNT: reference, declared, actual
        self.unread_dates: dict[str, list] = {}  # unused DTM qualifier -> [count, first, why]
        self.msg: _MessageDraft | None = None

    def fail(self, seg: _Segment, what: str) -> MsconsError:
        return MsconsError(f"{self.name}: segment {seg.pos} ({seg.raw[:60]}): {what}")

    def read(self, segments: list[_Segment]) -> MsconsInterchange:
        for seg in segments:
            self.feed(seg)
        return self.finish(segments)

    def feed(self, seg: _Segment) -> None:
        if self.unz is not None:
            raise self.fail(seg, "segment after UNZ (end of interchange)")
        if self.unb is None:
            if seg.tag != "UNB":
                raise self.fail(seg, "not an EDIFACT interchange: the first segment must be UNB")
            self.unb = seg
            return
        handler = _ENVELOPE_HANDLERS.get(seg.tag)
        if handler is not None:
            handler(self, seg)
        elif self.msg is None:
            raise self.fail(seg, f"{seg.tag} outside a message (missing UNH?)")
        else:
            _MESSAGE_HANDLERS.get(seg.tag, _ignore)(self, self.msg, seg)

    def finish(self, segments: list[_Segment]) -> MsconsInterchange:
        last = segments[-1]
        if self.msg is not None:
            raise self.fail(last, f"truncated: message {self.msg.reference!r} has no UNT")
        if self.unz is None or self.unb is None:
            raise self.fail(last, "truncated: the interchange has no UNZ")
        if not self.messages:
            raise self.fail(last, "the interchange contains no message (no UNH..UNT)")
        unb = self.unb
        return MsconsInterchange(
            source=self.name,
            syntax=":".join(unb.composite(0)),
            sender=unb.el(1),
            receiver=unb.el(2),
            prepared=":".join(unb.composite(3)),
            reference=unb.el(4),
            application_reference=unb.el(6),
            messages=tuple(self.messages),
            warnings=self.warnings + _count_warning(self.wrong_counts, len(self.messages)),
            notes=_unread_date_notes(self.unread_dates),
        )


def _count_warning(wrong: list[tuple[str, str, int]], messages: int) -> list[str]:
    """One line for the messages whose UNT segment count is wrong (real senders get it
    wrong: the Swiss 2.2e files count 109 of 302). Every segment up to UNT was read, so
    nothing is missing; the line is for the sender, who should correct the count."""
    if not wrong:
        return []
    shown = "; ".join(
        f"message {ref}: UNT declares {d} segments, has {a}" for ref, d, a in wrong[:3]
    )
    more = f"; {len(wrong) - 3} more" if len(wrong) > 3 else ""
    which = f"{len(wrong)} of {messages} messages: " if messages > 1 else ""
    return [
        f"{which}{shown}{more} (UNH..UNT inclusive): every segment was read, nothing is"
        " missing; the sender's segment count is wrong: tell them"
    ]


def _unread_date_notes(unread: dict[str, list]) -> list[str]:
    """One line per DTM qualifier this project does not use that came in a form it cannot
    read: nothing depends on those dates, so they are summed up, not warned about one by
    one."""
    return [
        f"ignored {count} DTM+{qualifier} date{'s' if count > 1 else ''} (not used) in a form"
        f" this reader does not know, the first: {first}: {why}"
        for qualifier, (count, first, why) in sorted(unread.items())
    ]


# --- envelope


def _on_unh(r: _Reader, seg: _Segment) -> None:
    if r.msg is not None:
        raise r.fail(seg, f"UNH while message {r.msg.reference!r} is still open (missing UNT)")
    message_type = ":".join(seg.composite(1))
    if seg.el(1) != "MSCONS":
        raise r.fail(seg, f"message type {message_type!r} is not MSCONS")
    r.msg = _MessageDraft(unh=seg, reference=seg.el(0), message_type=message_type)


def _on_unt(r: _Reader, seg: _Segment) -> None:
    msg = r.msg
    if msg is None:
        raise r.fail(seg, "UNT without UNH")
    _close_series(r, msg)
    if seg.el(1) != msg.reference:
        raise r.fail(seg, f"UNT reference {seg.el(1)!r} differs from UNH {msg.reference!r}")
    declared = seg.el(0)
    if not declared.isdigit():
        raise r.fail(seg, f"UNT segment count {declared!r} is not a number")
    actual = seg.pos - msg.unh.pos + 1
    if int(declared) != actual:
        r.wrong_counts.append((msg.reference, declared, actual))
    r.messages.append(_freeze_message(msg, actual, int(declared)))
    r.msg = None


def _on_unz(r: _Reader, seg: _Segment) -> None:
    assert r.unb is not None
    if r.msg is not None:
        raise r.fail(seg, f"UNZ while message {r.msg.reference!r} is still open (missing UNT)")
    if seg.el(1) != r.unb.el(4):
        raise r.fail(seg, f"UNZ reference {seg.el(1)!r} differs from UNB {r.unb.el(4)!r}")
    expected = r.groups if r.groups else len(r.messages)
    if not seg.el(0).isdigit() or int(seg.el(0)) != expected:
        raise r.fail(seg, f"UNZ count {seg.el(0)!r} but the interchange has {expected}")
    r.unz = seg


def _on_ung(r: _Reader, seg: _Segment) -> None:
    r.groups += 1


def _on_stray_unb(r: _Reader, seg: _Segment) -> None:
    raise r.fail(seg, "second UNB: concatenated interchanges must be split first")


_ENVELOPE_HANDLERS = {
    "UNH": _on_unh,
    "UNT": _on_unt,
    "UNZ": _on_unz,
    "UNG": _on_ung,
    "UNE": lambda r, s: None,
    "UNB": _on_stray_unb,
}


# --- message body


def _ignore(r: _Reader, msg: _MessageDraft, seg: _Segment) -> None:
    """Segments without meaning for consumption values (UNS, CCI, CTA, ...)."""


def _on_bgm(r: _Reader, msg: _MessageDraft, seg: _Segment) -> None:
    msg.document_code = seg.el(0)
    msg.document_number = seg.el(1)


def _on_rff(r: _Reader, msg: _MessageDraft, seg: _Segment) -> None:
    qualifier, value = seg.el(0, 0), seg.el(0, 1)
    if msg.location is not None:
        msg.location.references.append((qualifier, value))
    elif qualifier == "Z13":
        msg.pruefidentifikator = value


def _on_nad(r: _Reader, msg: _MessageDraft, seg: _Segment) -> None:
    if seg.el(0) == "MS":
        msg.sender = seg.el(1) or None
    elif seg.el(0) == "MR":
        msg.recipient = seg.el(1) or None


def _on_loc(r: _Reader, msg: _MessageDraft, seg: _Segment) -> None:
    _close_series(r, msg)
    if seg.el(0) != "172":
        msg.location = _LocationDraft(location_id=None)
        return
    # The id is normally C517/3225; the Swiss 1.6 file puts it in 3224 (LOC+172+::87:CH..).
    parts = seg.composite(1)
    location_id = next((p for p in (parts[:1] + parts[3:4]) if p), None)
    msg.location = _LocationDraft(location_id=location_id)


def _on_lin(r: _Reader, msg: _MessageDraft, seg: _Segment) -> None:
    _close_series(r, msg)
    if msg.location is None:
        raise r.fail(seg, "LIN before any LOC: the values would have no location")
    msg.current = _SeriesDraft(location=msg.location)


def _on_pia(r: _Reader, msg: _MessageDraft, seg: _Segment) -> None:
    if msg.current is None:
        raise r.fail(seg, "PIA outside a LIN group")
    if seg.el(0) == "5":
        msg.current.obis_raw = seg.el(1, 0)
        msg.current.code_type = seg.el(1, 1)


def _on_mea(r: _Reader, msg: _MessageDraft, seg: _Segment) -> None:
    unit = seg.el(2, 0)
    if unit and msg.current is not None:
        msg.current.unit = unit


def _on_qty(r: _Reader, msg: _MessageDraft, seg: _Segment) -> None:
    if msg.current is None:
        raise r.fail(seg, "QTY outside a LIN group: no OBIS code for this value")
    quantity = _number(seg.el(0, 1), seg, r.name)
    unit = seg.el(0, 2) or None
    msg.current.values.append(_ValueDraft(seg, quantity, seg.el(0, 0), unit))


def _on_dtm(r: _Reader, msg: _MessageDraft, seg: _Segment) -> None:
    qualifier, value, fmt = seg.el(0, 0), seg.el(0, 1), seg.el(0, 2)
    if qualifier == "672":
        _set_resolution(r, msg, seg, _duration(value, fmt, seg, r.name))
        return
    if qualifier not in _USED_DTM:
        try:
            _datetime(value, fmt, seg, r.name, r.naive_tz)
        except MsconsError as exc:
            unread = r.unread_dates.setdefault(qualifier, [0, f"segment {seg.pos} ({seg.raw})"])
            unread[0] += 1
            if len(unread) == 2:  # the first one's problem, without where again
                unread.append(str(exc).split(f"({seg.raw}): ", 1)[-1])
        return
    when = _datetime(value, fmt, seg, r.name, r.naive_tz)
    if qualifier == "306":  # Leistungsperiode: a month (610) or a day (102) as start and end
        current = msg.current
        if current is not None and current.values:
            end = _period_end(when, fmt, r.naive_tz)
            current.values[-1].dates.setdefault("163", when)
            current.values[-1].dates.setdefault("164", end)
        return
    current = msg.current
    if current is not None and current.values:
        current.values[-1].dates[qualifier] = when
    elif msg.location is not None:
        if qualifier == "163":
            msg.location.period_start = when
        elif qualifier == "164":
            msg.location.period_end = when
    elif qualifier == "137":
        msg.document_date = when


def _period_end(start: datetime, fmt: str, tz: tzinfo) -> datetime:
    """The end of the month (610) or day (102) a DTM+306 names, in the same wall clock."""
    local = start.astimezone(tz)
    if fmt == "610":
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        end = local.replace(year=year, month=month, day=1)
    else:
        end = (local.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=tz)
    return end.astimezone(UTC)


def _set_resolution(r: _Reader, msg: _MessageDraft, seg: _Segment, step: timedelta) -> None:
    if msg.location is None:
        raise r.fail(seg, "DTM+672 (resolution) outside a location group")
    msg.location.resolution = step


def _on_sts(r: _Reader, msg: _MessageDraft, seg: _Segment) -> None:
    if msg.current is not None and msg.current.values:
        status = Status(seg.el(0, 0), seg.el(1, 0), seg.el(2, 0))
        msg.current.values[-1].statuses.append(status)


_MESSAGE_HANDLERS = {
    "BGM": _on_bgm,
    "DTM": _on_dtm,
    "RFF": _on_rff,
    "NAD": _on_nad,
    "LOC": _on_loc,
    "LIN": _on_lin,
    "PIA": _on_pia,
    "MEA": _on_mea,
    "QTY": _on_qty,
    "STS": _on_sts,
}


# --- freezing drafts


def _close_series(r: _Reader, msg: _MessageDraft) -> None:
    draft = msg.current
    msg.current = None
    if draft is None:
        return
    location = draft.location
    values = _timed_values(r, draft)
    unit = draft.unit or next((v.unit for v in values if v.unit), None)
    msg.series.append(
        Series(
            location_id=location.location_id,
            obis=normalise_obis(draft.obis_raw) if draft.obis_raw else None,
            obis_raw=draft.obis_raw,
            unit=unit,
            values=values,
            period_start=location.period_start,
            period_end=location.period_end,
            resolution=location.resolution,
            location_references=tuple(location.references),
            code_type=draft.code_type,
        )
    )


def _timed_values(r: _Reader, draft: _SeriesDraft) -> tuple[MeterValue, ...]:
    """Give every value its time: from its own DTMs, or by position (D:99A 1.6)."""
    if draft.values and all(not v.dates for v in draft.values):
        return _positional_values(r, draft)
    return tuple(_dated_value(r, draft, v) for v in draft.values)


def _dated_value(r: _Reader, draft: _SeriesDraft, v: _ValueDraft) -> MeterValue:
    start, end = v.dates.get("163"), v.dates.get("164")
    read_at = v.dates.get("7") or v.dates.get("9") or v.dates.get("60")
    step = draft.location.resolution
    if start is not None and end is None and step is not None:
        end = start + step
    if (start is None) != (end is None) and read_at is None:
        raise r.fail(v.seg, "interval value needs both DTM+163 (start) and DTM+164 (end)")
    if start is None and read_at is None:
        raise r.fail(v.seg, "value has no usable DTM (163/164 or 7/9/60)")
    if start is not None and end is not None and end <= start:
        raise r.fail(v.seg, f"interval end {end.isoformat()} is not after {start.isoformat()}")
    return _freeze_value(v, draft, start, end, read_at)


def _positional_values(r: _Reader, draft: _SeriesDraft) -> tuple[MeterValue, ...]:
    location = draft.location
    step = location.resolution
    if step is None and location.period_start and location.period_end:
        # a period start and end and n values: the period in n equal steps, if it divides
        seconds = (location.period_end - location.period_start) // timedelta(seconds=1)
        if seconds > 0 and seconds % len(draft.values) == 0:
            step = timedelta(seconds=seconds // len(draft.values))
    if location.period_start is None or step is None:
        raise r.fail(
            draft.values[0].seg,
            "QTY without DTM, and no period start (DTM+163) and resolution (DTM+672) "
            "(or period end DTM+164 dividing into equal steps) to derive the interval from",
        )
    first = location.period_start
    return tuple(
        _freeze_value(v, draft, first + i * step, first + (i + 1) * step, None)
        for i, v in enumerate(draft.values)
    )


def _freeze_value(
    v: _ValueDraft,
    draft: _SeriesDraft,
    start: datetime | None,
    end: datetime | None,
    read_at: datetime | None,
) -> MeterValue:
    return MeterValue(
        quantity=v.quantity,
        qualifier=v.qualifier,
        unit=v.unit or draft.unit,
        start=start,
        end=end,
        read_at=read_at,
        statuses=tuple(v.statuses),
        segment=v.seg.pos,
        raw=v.seg.raw,
    )


def _freeze_message(msg: _MessageDraft, actual: int, declared: int) -> Message:
    return Message(
        reference=msg.reference,
        message_type=msg.message_type,
        document_code=msg.document_code,
        document_number=msg.document_number,
        document_date=msg.document_date,
        pruefidentifikator=msg.pruefidentifikator,
        sender=msg.sender,
        recipient=msg.recipient,
        series=tuple(msg.series),
        segment_count=actual,
        declared_segment_count=declared,
    )


# --------------------------------------------------------------------------- public reader


def read_mscons(source: str | os.PathLike | bytes, *, naive_tz: tzinfo = UTC) -> MsconsInterchange:
    """Read one interchange from a path, EDIFACT text or bytes.

    ``naive_tz`` applies only to zone-less DTM formats (102, 203); MSCONS 2.4c puts every
    timestamp in UTC, but the Swiss 2.2e document date (DTM+137, format 203) is local time.
    """
    text, name, note = _load(source)
    segments, _chars = _segments(text, name)
    interchange = _Reader(name, naive_tz).read(segments)
    if note:
        interchange.warnings.insert(0, note)
    return interchange


# --------------------------------------------------------------------------- conversions


def _energy_kwh(value: MeterValue, unit: str | None) -> float:
    """kWh of an energy value or of a mean power over the value's interval."""
    code = (unit or "KWH").upper()  # no unit: the OBIS code (x.8 / x.29) means energy in kWh
    if code in _ENERGY_UNITS:
        return value.quantity * _ENERGY_UNITS[code]
    if code in _POWER_UNITS and value.start is not None and value.end is not None:
        hours = (value.end - value.start).total_seconds() / 3600
        return value.quantity * _POWER_UNITS[code] * hours
    raise MsconsError(f"segment {value.segment} ({value.raw}): unit {unit!r} is not energy")


def _where(source: str, value: MeterValue) -> str:
    return f"{source}#segment {value.segment}"


@dataclass
class _RegisterPoint:
    """Import/export candidates of one location at one instant, keyed by tariff E."""

    values: dict[Register, dict[int, list[tuple[float, MeterValue]]]] = field(
        default_factory=lambda: {"import": {}, "export": {}}
    )


def to_readings(interchange: MsconsInterchange) -> tuple[list[Reading], list[Rejected]]:
    """Pair 1.8.x (import) and 2.8.x (export) register readings per location and instant.

    The total register (E=0) wins; without it the tariff registers are summed, because the
    total counter is their sum. A lone register cannot make a Reading and is Rejected.
    """
    points: dict[tuple[str | None, datetime], _RegisterPoint] = defaultdict(_RegisterPoint)
    rejected: list[Rejected] = []
    for message, series in interchange.series():
        use = series_use(series)
        if isinstance(use, str) or use[0] != "reading":
            continue
        register = use[1]
        parts = _obis_parts(series.obis)
        assert parts is not None
        for value in series.values:
            if value_use("reading", value, message.version) is not None:
                continue
            try:
                kwh = _energy_kwh(value, value.unit or series.unit)
            except MsconsError as exc:
                rejected.append(_reject(series.location_id, value, str(exc), interchange))
                continue
            slot = points[(series.location_id, value.read_at)].values[register]
            slot.setdefault(parts[4], []).append((kwh, value))
    readings: list[Reading] = []
    for (location_id, ts), point in sorted(points.items(), key=_point_order):
        outcome = _pair_point(location_id, ts, point, interchange)
        (readings if isinstance(outcome, Reading) else rejected).append(outcome)
    return readings, rejected


def _point_order(item: tuple[tuple[str | None, datetime], _RegisterPoint]) -> tuple:
    (location_id, ts), _ = item
    return (location_id or "", ts)


def _pair_point(
    location_id: str | None, ts: datetime, point: _RegisterPoint, interchange: MsconsInterchange
) -> Reading | Rejected:
    totals: dict[Register, float | None] = {}
    for register in ("import", "export"):
        totals[register] = _register_total(point.values[register])
        if totals[register] is None and point.values[register]:
            first = next(iter(point.values[register].values()))[0][1]
            reason = f"conflicting values for the {register} register at {ts.isoformat()}"
            return _reject(location_id, first, reason, interchange)
    present = [reg for reg in ("import", "export") if point.values[reg]]
    sample = next(iter(point.values[present[0]].values()))[0][1]
    if len(present) == 1:
        reason = f"only the {present[0]} register at {ts.isoformat()}; a Reading needs both"
        return _reject(location_id, sample, reason, interchange)
    if location_id is None:
        reason = f"LOC+172 without a location id; readings at {ts.isoformat()} have no meter"
        return _reject(None, sample, reason, interchange)
    return Reading(location_id, ts, float(totals["import"]), float(totals["export"]))


def _register_total(by_tariff: dict[int, list[tuple[float, MeterValue]]]) -> float | None:
    """Total of one register; None if duplicates disagree."""
    agreed: dict[int, float] = {}
    for tariff, candidates in by_tariff.items():
        kwhs = {round(kwh, 9) for kwh, _ in candidates}
        if len(kwhs) > 1:
            return None
        agreed[tariff] = candidates[0][0]
    if not agreed:
        return None
    return agreed[0] if 0 in agreed else sum(agreed.values())


def _reject(
    meter_id: str | None, value: MeterValue, reason: str, interchange: MsconsInterchange
) -> Rejected:
    return Rejected(meter_id, value_record(value), reason, _where(interchange.source, value))


def value_record(value: MeterValue) -> str:
    """A refused value as the quarantine keeps it: its QTY segment as received and the
    instant (or interval) it has in its series. The segment alone does not say which
    value it is (values of a series have no DTM of their own), and a value refused again
    in a re-sent file is told by its record (``loader.quarantine_once``)."""
    if value.read_at is not None:
        return f"{value.raw} {value.read_at.isoformat()}"
    if value.start is not None and value.end is not None:
        return f"{value.raw} {value.start.isoformat()}/{value.end.isoformat()}"
    return value.raw


def to_interval_energies(interchange: MsconsInterchange) -> list[IntervalEnergy]:
    """Load-profile values (OBIS 1-b:1.29.0 import, 1-b:2.29.0 export) as kWh per interval.

    Other OBIS codes (reactive energy 5..8.29, monthly 1.9.0, registers) are not load
    profiles of active energy and are left out; preliminary (Z18) values are kept as
    non-substitute values because they are the best data available at the time.
    """
    energies: list[IntervalEnergy] = []
    for message, series in interchange.series():
        use = series_use(series)
        if isinstance(use, str) or use[0] != "profile":
            continue
        register = use[1]
        if series.location_id is None:
            raise MsconsError(
                f"{interchange.source}: load profile {series.obis} without a location id"
            )
        for value in series.values:
            if value_use("profile", value, message.version) is None:
                energies.append(_interval_energy(interchange, series, register, value))
    return energies


def _interval_energy(
    interchange: MsconsInterchange, series: Series, register: Register, value: MeterValue
) -> IntervalEnergy:
    if value.start is None or value.end is None:
        raise MsconsError(
            f"{interchange.source}: segment {value.segment} ({value.raw}): "
            "load-profile value without an interval"
        )
    assert series.location_id is not None
    return IntervalEnergy(
        meter_id=series.location_id,
        interval_start=value.start,
        interval_end=value.end,
        register=register,
        kwh=_energy_kwh(value, value.unit or series.unit),
        substitute=value.is_substitute,
        where=_where(interchange.source, value),
        obis=series.obis or "",
    )


def to_counter_readings(
    energies: list[IntervalEnergy],
    start_counters: Mapping[str, tuple[float, float]] | None = None,
) -> tuple[list[Reading], list[Rejected]]:
    """Running sums of import and export energies as cumulative counter Readings.

    A Reading is emitted at the start of each run of intervals and at every interval end,
    with both counters starting at ``start_counters[meter_id]`` (import, export) or 0.
    Only intervals where both registers are present contribute; the others are Rejected,
    so the counters stay comparable. Across such a hole the counters carry over unchanged.
    """
    readings: list[Reading] = []
    rejected: list[Rejected] = []
    by_meter: dict[str, list[IntervalEnergy]] = defaultdict(list)
    for energy in energies:
        by_meter[energy.meter_id].append(energy)
    for meter_id in sorted(by_meter):
        start = (start_counters or {}).get(meter_id, (0.0, 0.0))
        pairs, meter_rejected = _pair_intervals(by_meter[meter_id])
        rejected.extend(meter_rejected)
        readings.extend(_accumulate(meter_id, pairs, start, rejected))
    return readings, rejected


_Interval = tuple[datetime, datetime]


def _pair_intervals(
    energies: list[IntervalEnergy],
) -> tuple[list[tuple[_Interval, IntervalEnergy, IntervalEnergy]], list[Rejected]]:
    """Intervals with exactly one agreed import and export energy; the rest are Rejected."""
    slots: dict[_Interval, dict[Register, list[IntervalEnergy]]] = defaultdict(
        lambda: {"import": [], "export": []}
    )
    for energy in energies:
        slots[(energy.interval_start, energy.interval_end)][energy.register].append(energy)
    pairs: list[tuple[_Interval, IntervalEnergy, IntervalEnergy]] = []
    rejected: list[Rejected] = []
    for interval in sorted(slots):
        problem = _slot_problem(interval, slots[interval])
        if problem is None:
            pairs.append((interval, slots[interval]["import"][0], slots[interval]["export"][0]))
        else:
            for energy in slots[interval]["import"] + slots[interval]["export"]:
                rejected.append(_reject_energy(energy, problem))
    return pairs, rejected


def _slot_problem(interval: _Interval, slot: dict[Register, list[IntervalEnergy]]) -> str | None:
    span = f"{interval[0].isoformat()}/{interval[1].isoformat()}"
    for register in ("import", "export"):
        if len({round(e.kwh, 9) for e in slot[register]}) > 1:
            return f"conflicting {register} energies for {span}"
    for register, other in (("import", "export"), ("export", "import")):
        if slot[register] and not slot[other]:
            return f"only the {register} register at {span}; a counter needs both"
    return None


def _accumulate(
    meter_id: str,
    pairs: list[tuple[_Interval, IntervalEnergy, IntervalEnergy]],
    start: tuple[float, float],
    rejected: list[Rejected],
) -> list[Reading]:
    readings: list[Reading] = []
    imp, exp = float(start[0]), float(start[1])
    last_end: datetime | None = None
    for (begin, end), import_energy, export_energy in pairs:
        if last_end is not None and begin < last_end:
            reason = f"interval {begin.isoformat()} overlaps the previous one (ends {last_end})"
            rejected.append(_reject_energy(import_energy, reason))
            rejected.append(_reject_energy(export_energy, reason))
            continue
        if begin != last_end:
            readings.append(Reading(meter_id, begin, imp, exp))
        imp += import_energy.kwh
        exp += export_energy.kwh
        readings.append(Reading(meter_id, end, imp, exp))
        last_end = end
    return readings


def _reject_energy(energy: IntervalEnergy, reason: str) -> Rejected:
    return Rejected(energy.meter_id, energy_record(energy), reason, energy.where)


def energy_record(energy: IntervalEnergy) -> str:
    """A refused interval energy as the quarantine keeps it: register, value, interval,
    not where it was (a re-sent file's value is the same value wherever it stands)."""
    return (
        f"{energy.register} {energy.kwh} kWh {energy.interval_start.isoformat()}/"
        f"{energy.interval_end.isoformat()}{' substitute' if energy.substitute else ''}"
    )
