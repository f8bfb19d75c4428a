"""MSCONS interchanges (UN/EDIFACT D.04B) for partners' billing and settlement systems.

German receivers read MSCONS 2.4c as the BDEW application rules (AHB FV2410) define it;
Swiss receivers still read 2.2e. Both get, per partner and period, two interchanges:

* ``TL`` - the load profiles of the profile channels, one message per battery in the
  style of Prüfidentifikator 13025 (Marktlokation, 11-digit id) or 13018 (any other
  metering-point id, e.g. a 33-character Zählpunktbezeichnung); 2.2e uses 13008.
* ``VL`` - the register readings at the end of the period, one message per battery in
  the style of 13017 (2.2e: 13002).

Everything the AHB makes a format rule is decided here once: UTC timestamps
(``?+00``, format 303), values >= 0 rounded half-even to 3 decimals of kWh, ``QTY+220``
for true and ``QTY+67`` for substitute values with the STS segments the AHB requires.
The AHB allows only BGM 1225 = 9 (original), so a correction is a new original whose
values carry a Korrekturgrund (``STS+Z34``); the receiver replaces the earlier values.
docs/formats/mscons.md describes the files segment by segment.

pydifact builds and serialises the segments (release characters, UNT/UNZ counts); the
renderer is pure: the same batch, options and context give the same bytes.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache

from pydifact.control import Characters
from pydifact.segmentcollection import Interchange, Message
from pydifact.segments import Segment
from pydifact.serializer import Serializer

from vbatt.exports.model import (
    BatteryExport,
    Channel,
    ExportBatch,
    ExportFile,
    FormatOptions,
    Party,
    RenderContext,
)
from vbatt.exports.numbers import rounded
from vbatt.ingest.mscons import normalise_obis

__all__ = [
    "MsconsVariant",
    "VARIANTS",
    "kwh_text",
    "render",
    "round_kwh",
    "to_latin1",
]

ENCODING = "latin-1"  # UNOC = ISO 8859-1

# Estimated intervals are interpolated between readings (rule book, step 1 rule 5):
# Ersatzwertbildungsverfahren Z92 "Interpolation", because readings were missing: Grund
# der Ersatzwertbildung Z75 "Kommunikationsstörung". A correction recomputes the ledger:
# Korrekturgrund ZA5 "Änderung der Berechnung".
SUBSTITUTE_METHOD = "Z92"
SUBSTITUTE_REASON = "Z75"
CORRECTION_REASON = "ZA5"

# Party code list: EDIFACT 3055 (NAD) and the matching ISO 9735 0007 code (UNB). The
# partner may give either. EIC has no 0007 code; Swiss senders put 500 there (real-ch).
_PARTY_CODES = {
    "9": ("14", "9"),  # GS1
    "14": ("14", "9"),
    "293": ("500", "293"),  # BDEW
    "500": ("500", "293"),
    "332": ("502", "332"),  # DVGW
    "502": ("502", "332"),
    "305": ("500", "305"),  # EIC (ENTSO-E, formerly ETSO)
}
_REFERENCE = re.compile(r"^[0-9A-Z]{1,13}$")
_SAFE_NAME = re.compile(r"[^0-9A-Za-z.-]+")


@dataclass(frozen=True)
class MsconsVariant:
    """What differs between the BDEW guide versions we write."""

    version: str  # UNH 0057
    profile_pruefi: dict[str, str]  # "market" (11-digit Marktlokation) | "meter" -> RFF+Z13
    profile_document: dict[str, str]  # same keys -> BGM 1001
    register_pruefi: str
    obis_suffix: str  # appended to the OBIS code: "" (2.4c) or "*255" (2.2e)
    party_codes: frozenset[str]  # Party.qualifier values the guide allows


VARIANTS: dict[str, MsconsVariant] = {
    "2.4c": MsconsVariant(
        version="2.4c",
        profile_pruefi={"market": "13025", "meter": "13018"},
        profile_document={"market": "Z48", "meter": "7"},
        register_pruefi="13017",
        obis_suffix="",
        party_codes=frozenset({"9", "14", "293", "500"}),  # AHB: GS1 or BDEW only
    ),
    "2.2e": MsconsVariant(
        version="2.2e",
        profile_pruefi={"market": "13008", "meter": "13008"},
        profile_document={"market": "7", "meter": "7"},
        register_pruefi="13002",
        obis_suffix="*255",
        party_codes=frozenset({"9", "14", "293", "500", "305"}),  # and EIC
    ),
}


# --------------------------------------------------------------------------- values


def round_kwh(value: float) -> Decimal:
    """kWh rounded to 3 decimals (the AHB allows no more, [906]) by the one rule of all
    formats (``numbers.rounded``: half-even on the shortest decimal form, so 0.0005 is
    0.000 and 0.0015 is 0.002). -0.000 becomes 0.000; anything clearly negative is
    refused, because MSCONS values are >= 0 ([902]). Called for every value written
    (millions a day): zeros, half of all values, take a short cut, and recurring values
    come from a cache.
    """
    if not value:
        return _ZERO_KWH
    return _round_kwh(float(value))


_ZERO_KWH = Decimal("0.000")


@lru_cache(maxsize=1 << 16)
def _round_kwh(value: float) -> Decimal:
    result = rounded(value, 3)
    if result < 0:
        raise ValueError(f"negative energy {value!r} kWh cannot be written to MSCONS (>= 0)")
    return result.copy_abs()


def kwh_text(value: Decimal) -> str:
    """Always 3 decimals with a decimal point, e.g. 1.240 (UNA declares '.')."""
    return f"{value:.3f}"


_TRANSLITERATION = str.maketrans(
    {
        "Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Ħ": "H", "ħ": "h", "ı": "i", "Œ": "OE",
        "œ": "oe", "ſ": "s", "Ŧ": "T", "ŧ": "t", "‐": "-", "‑": "-", "‒": "-", "–": "-",
        "—": "-", "‘": "'", "’": "'", "‚": ",", "“": '"', "”": '"', "„": '"', "…": "...",
        "€": "EUR", "•": "*", "\u00a0": " ",
    }
)  # fmt: skip


def to_latin1(text: str) -> str:
    """Text in ISO 8859-1 (UNOC): keep what fits, transliterate the rest.

    Latin-1 letters (ä, ö, ü, é ...) stay; others lose their accents (Ś -> S, č -> c),
    a few get a table entry (ł -> l, – -> -), and what has no Latin form becomes '_'.
    """
    if _fits_latin1(text):
        return text
    out = []
    for char in text.translate(_TRANSLITERATION):
        if _fits_latin1(char):
            out.append(char)
            continue
        base = "".join(
            c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
        )
        out.append(base if base and _fits_latin1(base) else "_")
    return "".join(out)


def _fits_latin1(text: str) -> bool:
    try:
        text.encode(ENCODING)
    except UnicodeEncodeError:
        return False
    return True


def _stamp(at: datetime) -> list[str]:
    """DTM value in UTC, format 303 (CCYYMMDDHHMMZZZ with ZZZ = +00, [931])."""
    if at.tzinfo is None:
        raise ValueError(f"naive timestamp {at.isoformat()}: MSCONS needs UTC instants")
    return [f"{at.astimezone(UTC):%Y%m%d%H%M}+00", "303"]


# --------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class _Plan:
    variant: MsconsVariant
    profiles: tuple[Channel, ...]
    registers: tuple[Channel, ...]
    batch: ExportBatch
    ctx: RenderContext
    # Segments repeat (the same interval bounds for every channel and battery, the same
    # STS): built once per render and shared, which makes a day of 10,000 batteries cheap.
    cache: dict = field(default_factory=dict, compare=False)

    def dtm(self, qualifier: str, at: datetime) -> Segment:
        key = ("DTM", qualifier, at)
        found = self.cache.get(key)
        if found is None:
            found = self.cache[key] = Segment("DTM", [qualifier, *_stamp(at)])
        return found

    def qty(self, qualifier: str, value: Decimal) -> Segment:
        key = ("QTY", qualifier, value)
        found = self.cache.get(key)
        if found is None:
            found = self.cache[key] = Segment("QTY", [qualifier, kwh_text(value)])
        return found

    def sts(self, category: str, reason: str) -> Segment:
        key = ("STS", category, reason)
        found = self.cache.get(key)
        if found is None:
            found = self.cache[key] = Segment("STS", category, "", reason)
        return found


def render(batch: ExportBatch, options: FormatOptions, ctx: RenderContext) -> list[ExportFile]:
    """The TL (load profiles) and VL (registers) interchanges of one partner and period.

    options: ``version`` "2.4c" (default) or "2.2e"; ``channels`` to restrict the
    partner's channels (profile and register names alike); ``messages`` to restrict to
    "profiles" and/or "registers". No batteries, or no channel of a kind: no file.
    """
    plan = _plan(batch, options or {}, ctx)
    files: list[ExportFile] = []
    if not batch.batteries:
        return files
    if plan.profiles:
        files.append(_profiles_file(plan))
    if plan.registers:
        files.append(_registers_file(plan))
    return files


def _plan(batch: ExportBatch, options: FormatOptions, ctx: RenderContext) -> _Plan:
    version = str(options.get("version", "2.4c"))
    if version not in VARIANTS:
        raise ValueError(f"MSCONS option version {version!r}: use one of {', '.join(VARIANTS)}")
    channels = batch.channels
    if options.get("channels") is not None:
        wanted = list(options["channels"])
        known = {c.name for c in channels}
        missing = [name for name in wanted if name not in known]
        if missing:
            raise ValueError(
                f"MSCONS option channels: {missing} are not channels of partner "
                f"{batch.partner_id} (it has {', '.join(sorted(known))})"
            )
        channels = tuple(c for c in channels if c.name in wanted)
    kinds = set(options.get("messages") or ("profiles", "registers"))
    if kinds - {"profiles", "registers"}:
        raise ValueError(
            f"MSCONS option messages: unknown {sorted(kinds - {'profiles', 'registers'})}; "
            "use profiles and/or registers"
        )
    if not _REFERENCE.match(ctx.reference):
        raise ValueError(
            f"interchange reference {ctx.reference!r}: MSCONS needs 1-13 digits or capital "
            "letters (UNB 0020 is at most 14 characters and the file type adds one, [918])"
        )
    _check_times(batch, ctx)
    variant = VARIANTS[version]
    for role, party in (("sender", batch.sender), ("receiver", batch.receiver)):
        if party.qualifier not in variant.party_codes:
            raise ValueError(
                f"{role} {party.id!r}: code qualifier {party.qualifier!r} is not allowed in "
                f"MSCONS {version} (use {', '.join(sorted(variant.party_codes))})"
            )
    return _Plan(
        variant=variant,
        profiles=tuple(c for c in channels if c.kind == "profile" and "profiles" in kinds),
        registers=tuple(c for c in channels if c.kind == "register" and "registers" in kinds),
        batch=batch,
        ctx=ctx,
    )


def _check_times(batch: ExportBatch, ctx: RenderContext) -> None:
    """The AHB dates the document no earlier than its values ([494], [495])."""
    if ctx.created_at.tzinfo is None:
        raise ValueError("RenderContext.created_at must be tz-aware (UTC)")
    latest = max(
        [batch.period.start_utc]
        + [b.intervals[-1].end for b in batch.batteries if b.intervals]
        + [b.registers_end.at for b in batch.batteries]
    )
    if ctx.created_at < latest:
        raise ValueError(
            f"document date {ctx.created_at.isoformat()} is before the data it carries "
            f"(up to {latest.isoformat()}); export a period only after it has ended"
        )


def _parties(party: Party) -> tuple[list[str], list[str]]:
    """(UNB element, NAD C082) of a party."""
    codes = _PARTY_CODES.get(party.qualifier)
    if codes is None:
        raise ValueError(
            f"party {party.id!r}: code qualifier {party.qualifier!r} is not one MSCONS "
            f"knows (use {', '.join(sorted(_PARTY_CODES))})"
        )
    ident = to_latin1(party.id)
    return [ident, codes[0]], [ident, "", codes[1]]


def _interchange(plan: _Plan, reference: str, application: str) -> Interchange:
    sender, _ = _parties(plan.batch.sender)
    receiver, _ = _parties(plan.batch.receiver)
    interchange = Interchange(
        sender=sender,
        recipient=receiver,
        control_reference=reference,
        syntax_identifier=("UNOC", 3),
        timestamp=plan.ctx.created_at.astimezone(UTC),
        characters=Characters(decimal_point="."),
        extra_header_elements=["", application],
    )
    interchange.has_una_segment = True  # write UNA:+.? ' - the decimal mark is '.'
    return interchange


def _header(plan: _Plan, number: int, document: str, pruefi: str, reference: str) -> Message:
    variant = plan.variant
    message = Message(str(number), ["MSCONS", "D", "04B", "UN", variant.version])
    _, ms = _parties(plan.batch.sender)
    _, mr = _parties(plan.batch.receiver)
    for segment in (
        Segment("BGM", document, f"{reference}-{number}", "9"),
        Segment("DTM", ["137", *_stamp(plan.ctx.created_at)]),
        Segment("RFF", ["Z13", pruefi]),
        Segment("NAD", "MS", ms),
        Segment("NAD", "MR", mr),
        Segment("UNS", "D"),
        Segment("NAD", "DP"),
    ):
        message.add_segment(segment)
    return message


def _obis(plan: _Plan, channel: Channel) -> list[str]:
    code = normalise_obis(channel.obis) + plan.variant.obis_suffix
    return [to_latin1(code), "SRW"]


def _location_kind(battery: BatteryExport) -> str:
    return "market" if re.fullmatch(r"\d{11}", battery.metering_point) else "meter"


def _profiles_file(plan: _Plan) -> ExportFile:
    reference = plan.ctx.reference + "T"
    interchange = _interchange(plan, reference, "TL")
    sums = {c.name: Decimal(0) for c in plan.profiles}
    rows = 0
    period = plan.batch.period
    for number, battery in enumerate(plan.batch.batteries, start=1):
        kind = _location_kind(battery)
        message = _header(
            plan,
            number,
            plan.variant.profile_document[kind],
            plan.variant.profile_pruefi[kind],
            reference,
        )
        message.add_segment(Segment("LOC", "172", to_latin1(battery.metering_point)))
        message.add_segment(Segment("DTM", ["163", *_stamp(period.start_utc)]))
        message.add_segment(Segment("DTM", ["164", *_stamp(period.end_utc)]))
        for line, channel in enumerate(plan.profiles, start=1):
            message.add_segment(Segment("LIN", str(line)))
            message.add_segment(Segment("PIA", "5", _obis(plan, channel)))
            for row in battery.intervals:
                if not (period.start_utc <= row.start < row.end <= period.end_utc):
                    raise ValueError(
                        f"battery {battery.battery_id}: interval {row.start.isoformat()} "
                        f"lies outside the period {period.label}"
                    )
                value = round_kwh(getattr(row, channel.name))
                sums[channel.name] += value
                rows += 1
                message.segments.extend(
                    _interval_segments(plan, value, row.start, row.end, row.estimated)
                )
        _add_message(interchange, message)
    return _file(plan, interchange, "TL", reference, rows, sums)


def _interval_segments(
    plan: _Plan, value: Decimal, start: datetime, end: datetime, estimated: bool
) -> list[Segment]:
    segments = [
        plan.qty("67" if estimated else "220", value),
        plan.dtm("163", start),
        plan.dtm("164", end),
    ]
    return segments + _statuses(plan, estimated)


def _statuses(plan: _Plan, estimated: bool) -> list[Segment]:
    """STS in AHB order: Z32 (method), Z34 (correction), Z40 (reason for substitution)."""
    statuses = []
    if estimated:
        statuses.append(plan.sts("Z32", SUBSTITUTE_METHOD))
    if plan.ctx.is_correction:
        statuses.append(plan.sts("Z34", CORRECTION_REASON))
    if estimated:
        statuses.append(plan.sts("Z40", SUBSTITUTE_REASON))
    return statuses


def _registers_file(plan: _Plan) -> ExportFile:
    reference = plan.ctx.reference + "V"
    interchange = _interchange(plan, reference, "VL")
    sums = {c.name: Decimal(0) for c in plan.registers}
    rows = 0
    for number, battery in enumerate(plan.batch.batteries, start=1):
        message = _header(plan, number, "7", plan.variant.register_pruefi, reference)
        message.add_segment(Segment("LOC", "172", to_latin1(battery.metering_point)))
        # The battery is the (virtual) device whose registers these are: Gerätenummer.
        message.add_segment(Segment("RFF", ["MG", to_latin1(battery.battery_id)]))
        registers = battery.registers_end
        for line, channel in enumerate(plan.registers, start=1):
            value = round_kwh(getattr(registers, channel.name))
            sums[channel.name] += value
            rows += 1
            for segment in (
                Segment("LIN", str(line)),
                Segment("PIA", "5", _obis(plan, channel)),
                Segment("QTY", ["220", kwh_text(value)]),
                Segment("DTM", ["9", *_stamp(registers.at)]),
                Segment("DTM", ["7", *_stamp(registers.at)]),
                *_statuses(plan, estimated=False),
            ):
                message.add_segment(segment)
        _add_message(interchange, message)
    return _file(plan, interchange, "VL", reference, rows, sums)


def _add_message(interchange: Interchange, message: Message) -> None:
    """Interchange.add_message, without its per-segment calls (UNT is pydifact's)."""
    interchange.segments.extend(
        [message.get_header_segment(), *message.segments, message.get_footer_segment()]
    )


def _serialize(interchange: Interchange) -> str:
    """pydifact's serialisation, done once per distinct segment object.

    The shared DTM/QTY/STS segments recur thousands of times; pydifact's Serializer
    escapes each occurrence again, so each object is serialised once and reused.
    """
    serializer = Serializer(interchange.characters)
    done: dict[int, str] = {}
    parts = [interchange.characters.service_string_advice]
    segments = [interchange.get_header_segment(), *interchange.segments]
    segments.append(interchange.get_footer_segment())
    for segment in segments:
        text = done.get(id(segment))
        if text is None:
            text = done[id(segment)] = serializer.serialize([segment], with_una_header=False)
        parts.append(text)
    return "".join(parts)


def _file(
    plan: _Plan,
    interchange: Interchange,
    application: str,
    reference: str,
    rows: int,
    sums: dict[str, Decimal],
) -> ExportFile:
    content = _serialize(interchange).encode(ENCODING)
    return ExportFile(
        name=file_name(plan.batch, application, reference),
        content=content,
        rows=rows,
        values={name: float(total) for name, total in sums.items()},
    )


def file_name(batch: ExportBatch, application: str, reference: str) -> str:
    """MSCONS_<TL|VL>_<sender>_<receiver>_<period label>_<reference>.txt, filesystem-safe."""
    parts = ["MSCONS", application, batch.sender.id, batch.receiver.id, batch.period.label]
    safe = [_SAFE_NAME.sub("_", to_latin1(p)) for p in parts]
    return "_".join(safe + [reference]) + ".txt"
