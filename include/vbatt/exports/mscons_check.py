"""Check MSCONS interchanges against the BDEW application rules (AHB FV2410, MSCONS 2.4c).

The rules are not written down here a second time: they are read at run time from the
machine-readable AHB tables in ``<reference>/mscons/ahb-fv2410/<Prüfidentifikator>.csv``
(one row per segment group, segment, data element and code, each with its condition).
From those rows the checker takes

* which segments a message of that Prüfidentifikator may contain, in which order and
  segment group, and which are mandatory ("Muss", including "Muss [92]": the substitute
  value STS segments when QTY+67);
* which codes a data element may carry (qualifiers, BGM/QTY/STS codes, versions);
* the format conditions it can evaluate: [931] UTC (ZZZ = +00), [902] values >= 0,
  [906] at most 3 decimals, [908] line numbers 1..n, [918] interchange reference in
  capitals, [495] no value after the document date.

What the tables cannot say is added from the EDIFACT syntax (ISO 9735) and the MSCONS
D.04B structure: UNT counts UNH..UNT inclusive and repeats the UNH reference, UNZ counts
the messages and repeats the UNB reference, and the nesting of the segment groups
(SG10 in SG9 in SG6 in SG5; SG4 in SG2). Conditions the checker cannot evaluate (market
roles, earlier master data) are not enforced.

A 2.2e interchange (Swiss receivers) is checked against the same tables with the
differences of its guide: UNH version 2.2e, Prüfidentifikator 13008 read as 13018 and
13002 as 13017, OBIS codes with ``*255``, EIC party codes (3055 = 305).

``check_mscons`` returns findings, never raises for a bad file; an empty list means the
file passed.
"""

from __future__ import annotations

import csv
import os
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path

from pydifact.parser import Parser
from pydifact.segments import Segment

__all__ = ["AhbTable", "Finding", "ahb_dir", "check_mscons", "load_tables"]


@dataclass(frozen=True)
class Finding:
    """One rule a file breaks: where (segment number in the file, UNA counting), which rule."""

    position: int  # 1-based; 0 = the file as a whole
    segment: str  # the segment as it reads, shortened, e.g. "UNT+109+slevu14572840D"
    rule: str  # "[931]", "[902]", "[906]", "UNT", "UNZ", "order", "missing", "code", ...
    message: str

    def __str__(self) -> str:
        return f"#{self.position} {self.segment}: {self.rule}: {self.message}"


# --------------------------------------------------------------------------- rule tables

# Where each data element sits in its segment: (element index, component index).
# UNB 0007 occurs twice (sender, receiver): told apart by the element before it.
_POSITIONS: dict[tuple[str, str], tuple[int, int]] = {
    ("UNB", "0001"): (0, 0),
    ("UNB", "0002"): (0, 1),
    ("UNB", "0004"): (1, 0),
    ("UNB", "0007/0004"): (1, 1),
    ("UNB", "0010"): (2, 0),
    ("UNB", "0007/0010"): (2, 1),
    ("UNB", "0017"): (3, 0),
    ("UNB", "0019"): (3, 1),
    ("UNB", "0020"): (4, 0),
    ("UNB", "0026"): (6, 0),
    ("UNH", "0062"): (0, 0),
    ("UNH", "0065"): (1, 0),
    ("UNH", "0052"): (1, 1),
    ("UNH", "0054"): (1, 2),
    ("UNH", "0051"): (1, 3),
    ("UNH", "0057"): (1, 4),
    ("BGM", "1001"): (0, 0),
    ("BGM", "1004"): (1, 0),
    ("BGM", "1225"): (2, 0),
    ("DTM", "2005"): (0, 0),
    ("DTM", "2380"): (0, 1),
    ("DTM", "2379"): (0, 2),
    ("RFF", "1153"): (0, 0),
    ("RFF", "1154"): (0, 1),
    ("NAD", "3035"): (0, 0),
    ("NAD", "3039"): (1, 0),
    ("NAD", "3055"): (1, 2),
    ("CTA", "3139"): (0, 0),
    ("CTA", "3412"): (1, 1),
    ("COM", "3148"): (0, 0),
    ("COM", "3155"): (0, 1),
    ("UNS", "0081"): (0, 0),
    ("LOC", "3227"): (0, 0),
    ("LOC", "3225"): (1, 0),
    ("LIN", "1082"): (0, 0),
    ("PIA", "4347"): (0, 0),
    ("PIA", "7140"): (1, 0),
    ("PIA", "7143"): (1, 1),
    ("QTY", "6063"): (0, 0),
    ("QTY", "6060"): (0, 1),
    ("STS", "9015"): (0, 0),
    ("STS", "9013"): (2, 0),
    ("UNT", "0074"): (0, 0),
    ("UNT", "0062"): (1, 0),
    ("UNZ", "0036"): (0, 0),
    ("UNZ", "0020"): (1, 0),
}

# MSCONS D.04B: the group each segment group is nested in (the CSV lists groups flat).
_PARENT_GROUP = {"SG3": "SG2", "SG4": "SG2", "SG6": "SG5", "SG7": "SG6", "SG8": "SG6"}
_PARENT_GROUP |= {"SG9": "SG6", "SG10": "SG9"}

# Conditions the checker evaluates; numbers from 500 on are notes ("Hinweis") or
# repetition rules, which do not make a mandatory segment optional.
_FORMAT_RULES = {"931", "902", "906", "908", "918", "495"}
_STATUS_WORDS = {"X", "M", "Muss", "Soll", "Kann"}
_CODE_ERRATA = {"MSCON": "MSCONS"}  # the CSV extraction cut UNH 0065 at 5 characters
_CONDITION = re.compile(r"\[(\d+)\]")
_CODE = re.compile(r"^[0-9A-Za-z.]{1,6}$")


@dataclass
class Block:
    """A segment group as the AHB heads it (SG2 "MP-ID Absender", SG10 "Mengenangaben")."""

    index: int
    group: str
    name: str
    status: str
    entries: list[Entry] = field(default_factory=list)


@dataclass
class Entry:
    """One segment of the AHB (a Segment ID such as 00018 "Beginn Messperiode")."""

    index: int
    segment_id: str
    tag: str
    group: str  # "" = top level
    name: str
    status: str
    block: Block | None
    slot: int = 0  # order: entries of the same tag in a row of one group share a slot
    codes: dict[str, set[str]] = field(default_factory=dict)  # data element -> codes
    rules: dict[str, set[str]] = field(default_factory=dict)  # data element -> [nnn]
    key: str | None = None  # the first data element with codes: tells entries apart
    allowed: dict[tuple[str, str], set[str]] = field(default_factory=dict, repr=False)

    @property
    def trigger(self) -> bool:
        return self.block is not None and self.block.entries[0] is self


@dataclass
class AhbTable:
    pruefidentifikator: str
    source: str
    entries: list[Entry]
    blocks: list[Block]

    def by_tag(self, tag: str) -> list[Entry]:
        return [e for e in self.entries if e.tag == tag]


def ahb_dir() -> Path:
    """The AHB tables shipped with the package (BDEW FV2410 via Hochfrequenz, see its README)."""
    return Path(__file__).resolve().parent / "schemas" / "mscons-ahb-fv2410"


def load_tables(directory: Path | None = None) -> dict[str, AhbTable]:
    """All ``<Prüfidentifikator>.csv`` tables of a folder; a missing folder is an error."""
    return dict(_load_tables(str(directory or ahb_dir())))


@cache
def _load_tables(directory: str) -> tuple[tuple[str, AhbTable], ...]:
    folder = Path(directory)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"MSCONS rule tables not found in {folder}: the checker needs the AHB CSVs "
            "(<Prüfidentifikator>.csv) shipped in vbatt/exports/schemas/mscons-ahb-fv2410"
        )
    tables = [_read_table(path) for path in sorted(folder.glob("*.csv"))]
    return tuple((t.pruefidentifikator, t) for t in tables)


def _read_table(path: Path) -> AhbTable:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    entries: list[Entry] = []
    blocks: list[Block] = []
    open_blocks: dict[str, Block] = {}
    entry: Entry | None = None
    last_element = ""
    for row in rows:
        group, tag, element = row["Segmentgruppe"], row["Segment"], row["Datenelement"]
        status = (row["Bedingungsausdruck"] or "").strip()
        if not tag and group:
            block = Block(len(blocks), group, row["Segmentname"], status)
            blocks.append(block)
            open_blocks[group] = block
            entry = None
        elif tag and not element:
            block = open_blocks.get(group) if group else None
            entry = Entry(
                len(entries), row["Segment ID"], tag, group, row["Segmentname"], status, block
            )
            entries.append(entry)
            if block is not None:
                block.entries.append(entry)
            last_element = ""
        elif entry is not None and element:
            _add_element(entry, element, row, last_element)
            if element != "0007":
                last_element = element
    _assign_slots(entries)
    return AhbTable(path.stem, path.name, entries, blocks)


def _add_element(entry: Entry, element: str, row: dict, last_element: str) -> None:
    key = f"0007/{last_element}" if (entry.tag, element) == ("UNB", "0007") else element
    code = (row["Code"] or "").strip()
    expression = (row["Bedingungsausdruck"] or "").strip()
    # Some rows of the CSV carry the code in the condition column (13017: BGM 1225 "9").
    if (not code or not _CODE.match(code)) and _CODE.match(expression):
        if expression not in _STATUS_WORDS:
            code = expression
    code = _CODE_ERRATA.get(code, code)
    if code and _CODE.match(code):
        entry.codes.setdefault(key, set()).add(code)
        if entry.key is None:
            entry.key = key
    rules = set(_CONDITION.findall(expression)) & _FORMAT_RULES
    if rules:
        entry.rules.setdefault(key, set()).update(rules)


def _assign_slots(entries: list[Entry]) -> None:
    slot, previous = 0, None
    for entry in entries:
        here = (entry.tag, entry.group)
        if here != previous:
            slot += 1
            previous = here
        entry.slot = slot


def _mandatory(status: str, instance: _Instance | None = None) -> bool:
    """'Muss' with no condition, or conditions that hold ([92]/[93]) or are notes (>= 500)."""
    if not status.startswith("Muss"):
        return False
    for number in _CONDITION.findall(status):
        if int(number) >= 500:
            continue
        if number == "92":  # wenn SG10 QTY DE6063 mit Wert 67 vorhanden
            if instance is None or "67" not in instance.quantities:
                return False
        elif number == "93":  # wenn SG10 QTY DE6063 mit Wert 220 vorhanden
            if instance is None or "220" not in instance.quantities:
                return False
        else:
            return False  # a condition we cannot evaluate (market role, master data)
    return True


# --------------------------------------------------------------------------- file level


@dataclass(frozen=True)
class _Seg:
    pos: int
    segment: Segment

    @property
    def tag(self) -> str:
        return self.segment.tag

    def value(self, element: int, component: int = 0) -> str:
        elements = self.segment.elements
        if element >= len(elements):
            return ""
        item = elements[element]
        if isinstance(item, list):
            return item[component] if component < len(item) else ""
        return item if component == 0 else ""

    def text(self) -> str:
        parts = [self.tag]
        for item in self.segment.elements:
            parts.append(":".join(item) if isinstance(item, list) else item)
        out = "+".join(parts)
        return out if len(out) <= 60 else out[:57] + "..."


def _load(source: str | os.PathLike | bytes) -> str:
    if isinstance(source, bytes):
        return source.decode("latin-1")
    if isinstance(source, os.PathLike):
        return Path(source).read_bytes().decode("latin-1")
    return source


def check_mscons(
    source: str | os.PathLike | bytes, tables: dict[str, AhbTable] | None = None
) -> list[Finding]:
    """Every AHB rule the interchange breaks; [] when it passes."""
    tables = tables if tables is not None else load_tables()
    text = _load(source).lstrip("\ufeff \r\n")
    try:
        with warnings.catch_warnings():  # pydifact has no D.04B directory to validate with
            warnings.simplefilter("ignore")
            parsed = list(Parser().parse(text))
    except Exception as exc:  # pydifact raises several types for broken syntax
        return [Finding(0, "", "syntax", f"not parseable as EDIFACT: {exc}")]
    segments = [_Seg(pos, seg) for pos, seg in enumerate(parsed, start=1)]
    body = [s for s in segments if s.tag != "UNA"]
    if not body or body[0].tag != "UNB":
        return [Finding(1, "", "syntax", "an interchange starts with UNB (after UNA)")]
    findings: list[Finding] = []
    messages = _split_messages(body, findings)
    unb, unz = body[0], body[-1]
    if unz.tag != "UNZ":
        findings.append(Finding(unz.pos, unz.text(), "UNZ", "the interchange has no UNZ"))
    else:
        _check_unz(unb, unz, len(messages), findings)
    first_table = None
    for message in messages:
        table, version = _table_for(message, tables, findings)
        first_table = first_table or table
        if table is not None:
            _MessageCheck(table, version, message, findings).run()
    if first_table is not None:
        version = messages[0][0].value(1, 4) if messages else "2.4c"
        _check_envelope_segment(unb, first_table, version, findings)
    findings.sort(key=lambda f: f.position)
    return findings


def _split_messages(body: list[_Seg], findings: list[Finding]) -> list[list[_Seg]]:
    messages: list[list[_Seg]] = []
    current: list[_Seg] | None = None
    references: set[str] = set()
    for seg in body[1:]:
        if seg.tag == "UNH":
            if current is not None:
                findings.append(
                    Finding(
                        seg.pos, seg.text(), "UNT", "UNH before the UNT of the previous message"
                    )
                )
            current = [seg]
            if seg.value(0) in references:
                findings.append(
                    Finding(
                        seg.pos, seg.text(), "UNH", f"message reference {seg.value(0)!r} used twice"
                    )
                )
            references.add(seg.value(0))
        elif current is not None:
            current.append(seg)
            if seg.tag == "UNT":
                _check_unt(current, findings)
                messages.append(current)
                current = None
        elif seg.tag not in ("UNZ",):
            findings.append(Finding(seg.pos, seg.text(), "syntax", "segment outside a message"))
    if current is not None:
        findings.append(Finding(current[-1].pos, current[-1].text(), "UNT", "message without UNT"))
    return messages


def _check_unt(message: list[_Seg], findings: list[Finding]) -> None:
    unh, unt = message[0], message[-1]
    declared = unt.value(0)
    if declared != str(len(message)):
        findings.append(
            Finding(unt.pos, unt.text(), "UNT",
                    f"UNT declares {declared} segments, the message has {len(message)} "
                    "(UNH..UNT inclusive)")
        )  # fmt: skip
    if unt.value(1) != unh.value(0):
        findings.append(
            Finding(unt.pos, unt.text(), "UNT",
                    f"UNT reference {unt.value(1)!r} differs from UNH {unh.value(0)!r}")
        )  # fmt: skip


def _check_unz(unb: _Seg, unz: _Seg, count: int, findings: list[Finding]) -> None:
    if unz.value(0) != str(count):
        findings.append(
            Finding(
                unz.pos, unz.text(), "UNZ", f"UNZ counts {unz.value(0)} messages, there are {count}"
            )
        )
    if unz.value(1) != unb.value(4):
        findings.append(
            Finding(unz.pos, unz.text(), "UNZ",
                    f"UNZ reference {unz.value(1)!r} differs from UNB {unb.value(4)!r}")
        )  # fmt: skip


# The 2.2e guide, checked against the 2.4c tables: what it names differently.
_VERSION_PRUEFI = {"2.2e": {"13008": "13018", "13002": "13017"}}
_VERSION_CODES = {
    "2.2e": {
        ("UNH", "0057"): {"2.2e"},
        ("NAD", "3055"): {"305"},
        ("RFF", "1154"): {"13008", "13002"},
    },
}


def _table_for(
    message: list[_Seg], tables: dict[str, AhbTable], findings: list[Finding]
) -> tuple[AhbTable | None, str]:
    unh = message[0]
    version = unh.value(1, 4)
    pruefi = next((s for s in message if s.tag == "RFF" and s.value(0) == "Z13"), None)
    if pruefi is None:
        findings.append(Finding(unh.pos, unh.text(), "missing", "no RFF+Z13 (Prüfidentifikator)"))
        return None, version
    code = pruefi.value(0, 1)
    table = tables.get(_VERSION_PRUEFI.get(version, {}).get(code, code))
    if table is None:
        findings.append(
            Finding(pruefi.pos, pruefi.text(), "AHB",
                    f"no rule table for Prüfidentifikator {code} (have {', '.join(sorted(tables))}); "
                    "only the envelope was checked")
        )  # fmt: skip
    return table, version


def _check_envelope_segment(
    unb: _Seg, table: AhbTable, version: str, findings: list[Finding]
) -> None:
    entry = next((e for e in table.entries if e.tag == "UNB"), None)
    if entry is not None:
        _check_elements(unb, entry, version, findings, document_date=None)


# --------------------------------------------------------------------------- values


def _allowed(entry: Entry, key: str, version: str) -> set[str]:
    found = entry.allowed.get((key, version))
    if found is None:
        found = entry.allowed[(key, version)] = _allowed_codes(entry, key, version)
    return found


def _allowed_codes(entry: Entry, key: str, version: str) -> set[str]:
    codes = set(entry.codes.get(key, set()))
    extra = _VERSION_CODES.get(version, {})
    element = key.split("/")[0]
    if (entry.tag, element) == ("UNH", "0057") and (entry.tag, element) in extra:
        return extra[(entry.tag, element)]
    return codes | extra.get((entry.tag, element), set())


def _check_elements(
    seg: _Seg, entry: Entry, version: str, findings: list[Finding], document_date: datetime | None
) -> None:
    for key in entry.codes:
        position = _POSITIONS.get((seg.tag, key))
        if position is None:
            continue
        value = seg.value(*position)
        allowed = _allowed(entry, key, version)
        if value and value not in allowed:
            findings.append(
                Finding(seg.pos, seg.text(), "code",
                        f"{seg.tag} {key.split('/')[0]} = {value!r} is not allowed "
                        f"({entry.segment_id} {entry.name.strip()}: {', '.join(sorted(allowed))})")
            )  # fmt: skip
        elif not value and key == entry.key:
            findings.append(Finding(seg.pos, seg.text(), "missing", f"{seg.tag} {key} is empty"))
    for key, rules in entry.rules.items():
        position = _POSITIONS.get((seg.tag, key))
        if position is not None:
            _check_rules(seg, seg.value(*position), rules, findings, document_date)


def _check_rules(
    seg: _Seg, value: str, rules: set[str], findings: list[Finding], document_date: datetime | None
) -> None:
    def add(rule: str, message: str) -> None:
        findings.append(Finding(seg.pos, seg.text(), rule, message))

    if "931" in rules and seg.value(0, 2) == "303":
        if not re.fullmatch(r"\d{12}\+00", value):
            add("[931]", f"{value!r} is not UTC: format 303 must end in ZZZ = +00")
    if "495" in rules and document_date is not None:
        at = _instant(seg)
        if at is not None and at > document_date:
            add("[495]", f"{value!r} lies after the document date (DTM+137)")
    if rules & {"902", "906"}:
        number = _decimal(value)
        if number is None:
            add("number", f"{value!r} is not a number")
            return
        if "902" in rules and number < 0:
            add("[902]", f"{value} is negative; values must be >= 0")
        if "906" in rules and -number.as_tuple().exponent > 3:
            add("[906]", f"{value} has more than 3 decimals")
    if "908" in rules and not (value.isdigit() and int(value) >= 1):
        add("[908]", f"line number {value!r} must be 1..n")
    if "918" in rules and (re.search(r"[a-z]", value) or len(value) > 14):
        add("[918]", f"interchange reference {value!r}: capitals and digits, at most 14")


def _decimal(value: str) -> Decimal | None:
    if not re.fullmatch(r"-?\d+(?:[.,]\d+)?", value):
        return None
    try:
        return Decimal(value.replace(",", "."))
    except InvalidOperation:
        return None


def _instant(seg: _Seg) -> datetime | None:
    """A DTM value in format 303 as a UTC instant (None for other formats)."""
    if seg.value(0, 2) != "303":
        return None
    return _instant_303(seg.value(0, 1))


@cache
def _instant_303(value: str) -> datetime | None:
    match = re.fullmatch(r"(\d{12})([+-]\d{2})", value)
    if not match:
        return None
    try:
        local = datetime.strptime(match.group(1), "%Y%m%d%H%M")
    except ValueError:
        return None
    offset = timezone(timedelta(hours=int(match.group(2))))
    return local.replace(tzinfo=offset).astimezone(UTC)


# --------------------------------------------------------------------------- messages


@dataclass
class _Instance:
    """One occurrence of a segment group in the message, while it is open."""

    block: Block | None  # None: the message itself
    first: _Seg | None
    seen: set[int] = field(default_factory=set)  # entry indexes
    children: set[int] = field(default_factory=set)  # block indexes opened inside
    quantities: set[str] = field(default_factory=set)  # QTY 6063 values (for [92])
    last_slot: int = 0


class _MessageCheck:
    """Walk one UNH..UNT against a table: groups, order, mandatory segments, codes."""

    def __init__(self, table: AhbTable, version: str, message: list[_Seg], findings: list[Finding]):
        self.table = table
        self.version = version
        self.message = message
        self.findings = findings
        self.root = _Instance(None, message[0])
        self.stack: list[_Instance] = [self.root]
        self.document_date: datetime | None = None

    def add(self, seg: _Seg | None, rule: str, message: str) -> None:
        pos, text = (seg.pos, seg.text()) if seg is not None else (0, "")
        self.findings.append(Finding(pos, text, rule, message))

    def run(self) -> None:
        if self.version not in ("2.4c", *_VERSION_CODES):
            self.add(
                self.message[0],
                "code",
                f"version {self.version!r}: the tables are for 2.4c (and 2.2e)",
            )
        dtm137 = next((s for s in self.message if s.tag == "DTM" and s.value(0) == "137"), None)
        self.document_date = _instant(dtm137) if dtm137 is not None else None
        for seg in self.message:
            entry = self.match(seg)
            if entry is not None:
                self.place(seg, entry)
                _check_elements(seg, entry, self.version, self.findings, self.document_date)
                if seg.tag == "QTY":
                    self.stack[-1].quantities.add(seg.value(0, 0))
        while len(self.stack) > 1:
            self.close(self.stack.pop())
        self.close(self.root)

    def match(self, seg: _Seg) -> Entry | None:
        candidates = self.table.by_tag(seg.tag)
        if not candidates:
            self.add(
                seg,
                "segment",
                f"{seg.tag} is not part of Prüfidentifikator {self.table.pruefidentifikator}",
            )
            return None
        fitting = [e for e in candidates if e.key is None or self.fits(seg, e)]
        if not fitting:
            key = candidates[0].key or ""
            position = _POSITIONS.get((seg.tag, key), (0, 0))
            allowed = sorted(set().union(*(_allowed(e, key, self.version) for e in candidates)))
            self.add(seg, "code",
                     f"{seg.tag} {key} = {seg.value(*position)!r} is not allowed here "
                     f"({', '.join(allowed)})")  # fmt: skip
            return None
        if len(fitting) == 1:
            return fitting[0]
        for instance in reversed(self.stack):  # the innermost open group that takes it
            for entry in fitting:
                if entry.block is instance.block and not entry.trigger:
                    return entry
        return min(fitting, key=lambda e: (not e.trigger, e.index))

    def fits(self, seg: _Seg, entry: Entry) -> bool:
        position = _POSITIONS.get((seg.tag, entry.key or ""))
        return position is None or seg.value(*position) in _allowed(
            entry, entry.key or "", self.version
        )

    def place(self, seg: _Seg, entry: Entry) -> None:
        block = entry.block
        if block is None:
            while len(self.stack) > 1:
                self.close(self.stack.pop())
            self.record(self.root, seg, entry)
        elif entry.trigger:
            ancestors = _ancestors(block.group)
            while len(self.stack) > 1 and self.stack[-1].block.group not in ancestors:
                self.close(self.stack.pop())
            parent = self.stack[-1]
            self.record(parent, seg, entry)
            parent.children.add(block.index)
            instance = _Instance(block, seg, last_slot=entry.slot)
            instance.seen.add(entry.index)
            self.stack.append(instance)
        else:
            depth = next(
                (i for i in range(len(self.stack) - 1, 0, -1) if self.stack[i].block is block),
                None,
            )
            if depth is None:
                self.add(seg, "order", f"{seg.tag} ({entry.segment_id} {entry.name.strip()}) "
                                       f"outside its segment group {block.group}")  # fmt: skip
                return
            while len(self.stack) > depth + 1:
                self.close(self.stack.pop())
            self.record(self.stack[-1], seg, entry)

    def record(self, instance: _Instance, seg: _Seg, entry: Entry) -> None:
        if entry.slot < instance.last_slot:
            self.add(seg, "order", f"{seg.tag} ({entry.segment_id} {entry.name.strip()}) "
                                   "comes too late: the AHB puts it earlier")  # fmt: skip
        instance.last_slot = max(instance.last_slot, entry.slot)
        instance.seen.add(entry.index)

    def close(self, instance: _Instance) -> None:
        """Mandatory segments and groups of a group occurrence that ends."""
        if instance.block is None:
            entries = [
                e for e in self.table.entries if e.block is None and e.tag not in ("UNB", "UNZ")
            ]
            blocks = [b for b in self.table.blocks if b.group not in _PARENT_GROUP]
            where = "the message"
        else:
            entries = instance.block.entries
            blocks = [
                b for b in self.table.blocks if _PARENT_GROUP.get(b.group) == instance.block.group
            ]
            where = f"{instance.block.group} {instance.block.name.strip()}"
        anchor = instance.first
        for entry in entries:
            if entry.index not in instance.seen and _mandatory(entry.status, instance):
                self.add(anchor, "missing",
                         f"{entry.tag} ({entry.segment_id} {entry.name.strip()}) is required in {where}")  # fmt: skip
        for block in blocks:
            if block.index not in instance.children and block.entries and _mandatory(block.status):
                self.add(anchor, "missing",
                         f"segment group {block.group} ({block.name.strip()}) is required in {where}")  # fmt: skip


def _ancestors(group: str) -> set[str]:
    out: set[str] = set()
    while group in _PARENT_GROUP:
        group = _PARENT_GROUP[group]
        out.add(group)
    return out


def summarise(findings: Iterable[Finding]) -> dict[str, int]:
    """Findings per rule, for reports."""
    counts: dict[str, int] = {}
    for finding in findings:
        counts[finding.rule] = counts.get(finding.rule, 0) + 1
    return dict(sorted(counts.items()))
