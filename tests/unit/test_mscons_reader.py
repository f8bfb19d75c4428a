"""MSCONS reader against the real reference files and against deliberately broken input.

Expected numbers in the spot checks were read from the raw files by eye (segments split at
the apostrophe), not produced by the reader, so a reader bug cannot confirm itself.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from vbatt.ingest.mscons import (
    IntervalEnergy,
    MsconsError,
    MsconsInterchange,
    normalise_obis,
    read_mscons,
    to_counter_readings,
    to_interval_energies,
    to_readings,
)
from vbatt.readings import Reading

MSCONS_DIR = Path(__file__).resolve().parents[1] / "data" / "mscons"
DE_DIR = MSCONS_DIR / "real-de-2024"
CH_DIR = MSCONS_DIR / "real-ch"

DE_FILES = sorted(DE_DIR.glob("*.txt"))
CH_FILES = sorted(CH_DIR.glob("*.txt"))
CH_22E_FILES = [f for f in CH_FILES if f.name.startswith("20191215_")]
ZURICH = ZoneInfo("Europe/Zurich")


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _ref(pattern: str) -> Path:
    (match,) = sorted(MSCONS_DIR.glob(f"real-*/{pattern}"))
    return match


def _all_values(ic: MsconsInterchange) -> list:
    return [v for _m, s in ic.series() for v in s.values]


def _file_params() -> list:
    return [pytest.param(f, id=f"{f.parent.name}/{f.name}") for f in DE_FILES + CH_FILES]


# --------------------------------------------------------------------------- every file


@pytest.mark.parametrize("path", _file_params())
def test_every_reference_file_is_read(path: Path) -> None:
    ic = read_mscons(path)
    assert ic.messages, "an interchange without messages"
    for message in ic.messages:
        assert message.message_type.startswith("MSCONS:D:")
        assert message.series
        for series in message.series:
            assert series.obis and series.values
            for value in series.values:
                assert value.quantity >= 0
                for ts in (value.start, value.end, value.read_at):
                    assert ts is None or ts.utcoffset() == timedelta(0)


def test_reference_folders_hold_the_documented_files() -> None:
    assert len(DE_FILES) == 12
    assert len(CH_FILES) == 7
    assert len(CH_22E_FILES) == 6


@pytest.mark.parametrize("index", range(6))
def test_swiss_22e_files_warn_about_their_unt_count(index: int) -> None:
    ic = read_mscons(CH_22E_FILES[index])
    ref = ic.messages[0].reference
    assert ref.startswith("slevu1457284")
    assert len(ic.warnings) == 1
    # UNT says 109; UNH..UNT inclusive are 302 segments (96 x QTY/DTM/DTM + 14).
    assert ref in ic.warnings[0] and "109" in ic.warnings[0] and "302" in ic.warnings[0]


def test_german_and_d99a_files_have_no_warnings() -> None:
    d99a = [f for f in CH_FILES if f not in CH_22E_FILES]
    for path in DE_FILES + d99a:
        assert read_mscons(path).warnings == [], path.name


# --------------------------------------------------------------------------- spot checks


def test_german_load_profile_fsrcn() -> None:
    ic = read_mscons(_ref("*CS0000000FSRCN.txt"))
    assert (ic.sender, ic.receiver) == ("9905048000007", "9985046000001")
    assert ic.reference == "CS0000000FSRCN" and ic.application_reference == "TL"
    (message,) = ic.messages
    assert message.message_type == "MSCONS:D:04B:UN:2.4c" and message.version == "2.4c"
    assert (message.document_code, message.pruefidentifikator) == ("Z48", "13025")
    assert message.document_date == _utc(2024, 12, 25, 3, 7)
    assert message.segment_count == message.declared_segment_count == 393
    (series,) = message.series
    assert (series.location_id, series.obis, series.unit) == ("50120962218", "1-1:1.29.0", None)
    assert series.period_start == _utc(2024, 12, 23, 23) and series.period_end == _utc(
        2024, 12, 24, 23
    )
    values = series.values
    assert len(values) == 96
    assert values[0].start == _utc(2024, 12, 23, 23) and values[0].end == _utc(2024, 12, 23, 23, 15)
    assert values[0].quantity == pytest.approx(0.867) and values[0].quality == "true"
    assert [(s.category, s.reason) for s in values[0].statuses] == [("Z34", "ZA4")]
    assert values[-1].end == _utc(2024, 12, 24, 23)
    preliminary = [v for v in values if v.qualifier == "Z18"]
    assert len(preliminary) == 5
    assert preliminary[0].start == _utc(2024, 12, 24, 6, 45)
    assert preliminary[0].quantity == pytest.approx(0.94) and preliminary[0].quality == "Z18"
    local_day = [v for v in values if v.start.astimezone(ZURICH).date().isoformat() == "2024-12-24"]
    assert len(local_day) == 96


def test_german_substitute_values_carry_their_sts() -> None:
    ic = read_mscons(_ref("*CS0000000G9YZ4.txt"))
    values = _all_values(ic)
    assert len(values) == 96
    substitutes = [v for v in values if v.is_substitute]
    assert [v.start for v in substitutes] == [
        _utc(2024, 12, 9, 10, 15),
        _utc(2024, 12, 9, 10, 30),
        _utc(2024, 12, 9, 20, 0),
        _utc(2024, 12, 9, 20, 15),
    ]
    assert [v.quantity for v in substitutes] == pytest.approx([3.337, 3.337, 1.75, 1.75])
    assert [(s.category, s.reason) for s in substitutes[0].statuses] == [
        ("Z32", "ZJ2"),
        ("Z34", "ZB0"),
        ("Z40", "ZB0"),
    ]
    energies = to_interval_energies(ic)
    assert sum(e.substitute for e in energies) == 4
    assert values[-1].quantity == pytest.approx(0.884)


def test_german_multi_message_interchange() -> None:
    ic = read_mscons(_ref("*CS0000000GAO6O.txt"))
    assert len(ic.messages) == 31
    values = _all_values(ic)
    assert len(values) == 2976
    assert sum(v.is_substitute for v in values) == 274


def test_german_meter_reading_has_no_location_id_and_no_export() -> None:
    ic = read_mscons(_ref("MSCONS_VL_*.txt"))
    (message,) = ic.messages
    assert message.pruefidentifikator == "13017"
    (series,) = message.series
    assert series.location_id is None and series.location_references == (("AGK", "25282"),)
    assert series.obis == "1-1:1.8.0" and series.kind == "register"
    (value,) = series.values
    assert value.quantity == pytest.approx(92.234)
    assert value.read_at == _utc(2024, 11, 30, 23)
    readings, rejected = to_readings(ic)
    assert readings == []
    (row,) = rejected
    assert row.reason.startswith("only the import register at 2024-11-30T23:00:00+00:00")
    assert row.raw == "QTY+220:92,234 2024-11-30T23:00:00+00:00"
    assert row.where.endswith("#segment 15")


def test_german_energy_quantity_is_not_a_load_profile() -> None:
    ic = read_mscons(_ref("MSCONS_EM_*.txt"))
    (value,) = _all_values(ic)
    assert value.quantity == pytest.approx(5669.998)
    assert (value.start, value.end) == (_utc(2024, 11, 30, 23), _utc(2024, 12, 31, 23))
    assert [(s.category, s.status) for s in value.statuses] == [("10", "Z36"), ("10", "Z37")]
    assert to_interval_energies(ic) == []


def test_swiss_22e_profile_in_local_time() -> None:
    ic = read_mscons(_ref("*ESLEVU14572840_*.txt"))
    (series,) = ic.messages[0].series
    assert series.obis_raw == "1-1:1.29.0*255" and series.obis == "1-1:1.29.0"
    assert series.location_id == "CH1008801234500000000000000113813"
    values = series.values
    assert len(values) == 96
    # 201912140000?+01 -> 2019-12-13T23:00Z; last end 201912150000?+01 -> 2019-12-14T23:00Z
    assert values[0].start == _utc(2019, 12, 13, 23) and values[0].quantity == pytest.approx(36.3)
    assert values[1].quantity == pytest.approx(36.0)
    assert values[-1].end == _utc(2019, 12, 14, 23) and values[-1].quantity == pytest.approx(51.6)
    local_day = {v.start.astimezone(ZURICH).date().isoformat() for v in values}
    assert local_day == {"2019-12-14"}
    # The zone-less document date (203) is read as UTC unless the caller says otherwise.
    assert ic.messages[0].document_date == _utc(2019, 12, 14)
    local = read_mscons(_ref("*ESLEVU14572840_*.txt"), naive_tz=ZURICH)
    assert local.messages[0].document_date == _utc(2019, 12, 13, 23)


def test_swiss_d99a_positional_values() -> None:
    ic = read_mscons(_ref("MSCONS_LG_*.txt"))
    (message,) = ic.messages
    assert message.message_type == "MSCONS:D:99A:UN:1.6" and message.pruefidentifikator is None
    (series,) = message.series
    assert series.location_id == "CH1022201234500000000000000022079"
    assert series.resolution == timedelta(minutes=15) and series.unit == "KWH"
    values = series.values
    assert len(values) == 96
    assert values[0].start == _utc(2013, 3, 23, 23) and values[0].quantity == pytest.approx(20.8)
    # The 17th and 18th QTY are qualified 79, not 46: kept as sent.
    assert [v.qualifier for v in values[16:18]] == ["79", "79"]
    assert [v.quantity for v in values[16:18]] == pytest.approx([9.6, 19.2])
    assert values[16].start == _utc(2013, 3, 24, 3, 0)
    assert values[-1].end == _utc(2013, 3, 24, 23) and values[-1].quantity == pytest.approx(10.4)


# --------------------------------------------------------------------------- synthetic files


def _interchange(body: list[str], *, unt: int | None = None, location: str = "CH100") -> str:
    """A minimal 2.4c interchange; UNT counts UNH..UNT unless told otherwise."""
    head = ["UNH+1+MSCONS:D:04B:UN:2.4c", "BGM+7+DOC1+9", "UNS+D", f"LOC+172+{location}"]
    segments = head + body
    count = unt if unt is not None else len(segments) + 1
    parts = ["UNB+UNOC:3+SENDER:500+RECEIVER:500+250101:0000+REF1++TL", *segments]
    parts += [f"UNT+{count}+1", "UNZ+1+REF1"]
    return "UNA:+,? '" + "'".join(parts) + "'"


def _stamp(ts: datetime) -> str:
    return ts.strftime("%Y%m%d%H%M") + "?+00:303"


def _profile(obis: str, start: datetime, values: list[str], unit: str = "") -> list[str]:
    segments = ["LIN+1", f"PIA+5+{obis.replace(':', '?:')}:SRW"]
    for i, quantity in enumerate(values):
        begin = start + i * timedelta(minutes=15)
        segments += [
            f"QTY+220:{quantity}{':' + unit if unit else ''}",
            f"DTM+163:{_stamp(begin)}",
            f"DTM+164:{_stamp(begin + timedelta(minutes=15))}",
        ]
    return segments


@pytest.mark.parametrize(
    ("first_utc", "last_end_utc", "day", "quarter_hours"),
    [
        # spring forward: 2025-03-30 runs 202503292300?+00 .. 202503302200?+00
        (_utc(2025, 3, 29, 23), _utc(2025, 3, 30, 22), "2025-03-30", 92),
        (_utc(2025, 6, 14, 22), _utc(2025, 6, 15, 22), "2025-06-15", 96),
        # fall back: 2025-10-26 runs 202510252200?+00 .. 202510262300?+00
        (_utc(2025, 10, 25, 22), _utc(2025, 10, 26, 23), "2025-10-26", 100),
    ],
)
def test_zurich_local_day_has_92_96_or_100_quarter_hours(
    first_utc: datetime, last_end_utc: datetime, day: str, quarter_hours: int
) -> None:
    count = int((last_end_utc - first_utc) / timedelta(minutes=15))
    ic = read_mscons(_interchange(_profile("1-1:1.29.0", first_utc, ["0,1"] * count)))
    assert ic.warnings == []
    values = _all_values(ic)
    local_days = {v.start.astimezone(ZURICH).date().isoformat() for v in values}
    assert local_days == {day}
    assert len(values) == quarter_hours


def test_power_values_become_energy_by_interval_length() -> None:
    start = _utc(2025, 1, 1)
    text = _interchange(
        _profile("1-0:1.29.0*255", start, ["4"], unit="KWT")
        + _profile("1-0:2.29.0", start, ["500"], unit="WHR")
    )
    energies = to_interval_energies(read_mscons(text))
    assert [(e.register, e.kwh) for e in energies] == [("import", 1.0), ("export", 0.5)]
    assert energies[0].meter_id == "CH100" and energies[0].interval_end == start + timedelta(
        minutes=15
    )


def test_register_readings_pair_import_and_export_in_kwh() -> None:
    ts = _stamp(_utc(2025, 1, 31, 23))
    body = [
        "LIN+1", "PIA+5+1-1?:1.8.0:SRW", "QTY+220:1234567:WHR", f"DTM+7:{ts}",
        "LIN+2", "PIA+5+1-1?:2.8.0:SRW", "QTY+220:89,5:KWH", f"DTM+7:{ts}",
    ]  # fmt: skip
    readings, rejected = to_readings(read_mscons(_interchange(body)))
    assert rejected == []
    assert readings == [Reading("CH100", _utc(2025, 1, 31, 23), 1234.567, 89.5)]


def test_text_bytes_and_path_give_the_same_result(tmp_path: Path) -> None:
    text = _interchange(_profile("1-1:1.29.0", _utc(2025, 1, 1), ["1,5", "2"]))
    path = tmp_path / "profile.txt"
    path.write_bytes(text.encode("latin-1"))
    from_text, from_bytes, from_path = (
        read_mscons(text),
        read_mscons(text.encode("latin-1")),
        read_mscons(path),
    )
    assert from_text.messages == from_bytes.messages == from_path.messages
    assert from_path.source == "profile.txt"


def test_synthetic_wrong_unt_count_is_a_warning_not_an_error() -> None:
    ic = read_mscons(_interchange(_profile("1-1:1.29.0", _utc(2025, 1, 1), ["1"]), unt=99))
    assert len(_all_values(ic)) == 1
    (warning,) = ic.warnings
    assert "message 1" in warning and "99" in warning and "10" in warning


def test_wrong_unt_counts_of_many_messages_are_one_warning_for_the_sender() -> None:
    one = _interchange(_profile("1-1:1.29.0", _utc(2025, 1, 1), ["1"]), unt=99)
    head, message = one.split("'UNH+1", 1)
    message = "UNH+1" + message.removesuffix("UNZ+1+REF1'")
    messages = [message.replace("+1'", f"+{n}'").replace("UNH+1+", f"UNH+{n}+") for n in "123"]
    ic = read_mscons(f"{head}'{''.join(messages)}UNZ+3+REF1'")
    assert [m.reference for m in ic.messages] == ["1", "2", "3"]
    (warning,) = ic.warnings  # was one per message, each with the file's name
    assert warning == (
        "3 of 3 messages: message 1: UNT declares 99 segments, has 10; message 2: UNT declares"
        " 99 segments, has 10; message 3: UNT declares 99 segments, has 10 (UNH..UNT"
        " inclusive): every segment was read, nothing is missing; the sender's segment count"
        " is wrong: tell them"
    )


def test_normalise_obis() -> None:
    assert normalise_obis("1-1:1.29.0*255") == "1-1:1.29.0"
    assert normalise_obis("1-0:2.8.0") == "1-0:2.8.0"
    assert normalise_obis("1-1:1.8.1*01") == "1-1:1.8.1*1"
    assert normalise_obis("not-obis") == "not-obis"


# --------------------------------------------------------------------------- broken input


@pytest.fixture
def fsrcn_text() -> str:
    return _ref("*CS0000000FSRCN.txt").read_text(encoding="latin-1")


def _broken(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "broken.txt"
    path.write_text(text, encoding="latin-1")
    return path


@pytest.mark.parametrize("cut", [0.5, 0.999])
def test_truncated_real_file_raises(tmp_path: Path, fsrcn_text: str, cut: float) -> None:
    path = _broken(tmp_path, fsrcn_text[: int(len(fsrcn_text) * cut)])
    with pytest.raises(MsconsError, match=r"broken\.txt.*(truncated|segment)"):
        read_mscons(path)


def test_file_cut_after_a_complete_segment_raises(tmp_path: Path, fsrcn_text: str) -> None:
    cut = fsrcn_text[: fsrcn_text.index("UNT+")]
    with pytest.raises(MsconsError, match=r"broken\.txt: segment \d+ .*truncated.*no UNT"):
        read_mscons(_broken(tmp_path, cut))


def test_corrupt_number_names_the_segment(tmp_path: Path, fsrcn_text: str) -> None:
    # UNA=1 UNB=2 UNH=3 BGM=4 DTM=5 RFF=6 NAD=7 NAD=8 UNS=9 NAD=10 LOC=11 DTM=12 DTM=13
    # LIN=14 PIA=15 -> the first QTY is segment 16.
    text = fsrcn_text.replace("QTY+220:0,867'", "QTY+220:0,8x7'", 1)
    with pytest.raises(MsconsError, match=r"broken\.txt: segment 16 .*unparsable number '0,8x7'"):
        read_mscons(_broken(tmp_path, text))


def test_missing_unt_raises(tmp_path: Path, fsrcn_text: str) -> None:
    text = fsrcn_text.replace("UNT+393+1'", "", 1)
    with pytest.raises(MsconsError, match=r"UNZ while message '1' is still open \(missing UNT\)"):
        read_mscons(_broken(tmp_path, text))


def test_unknown_dtm_format_raises(tmp_path: Path, fsrcn_text: str) -> None:
    text = fsrcn_text.replace("?+00:303'", "?+00:999'", 1)
    with pytest.raises(MsconsError, match=r"segment 5 .*unknown DTM format code '999'"):
        read_mscons(_broken(tmp_path, text))


def test_impossible_date_raises(tmp_path: Path, fsrcn_text: str) -> None:
    text = fsrcn_text.replace("DTM+163:202412232300?+00", "DTM+163:202413232300?+00", 1)
    with pytest.raises(MsconsError, match=r"segment 12 .*invalid date/time '202413232300\+00'"):
        read_mscons(_broken(tmp_path, text))


def test_envelope_references_must_match(tmp_path: Path, fsrcn_text: str) -> None:
    with pytest.raises(MsconsError, match="UNT reference '2' differs from UNH '1'"):
        read_mscons(_broken(tmp_path, fsrcn_text.replace("UNT+393+1'", "UNT+393+2'")))
    with pytest.raises(MsconsError, match="UNZ count '2' but the interchange has 1"):
        read_mscons(_broken(tmp_path, fsrcn_text.replace("UNZ+1+", "UNZ+2+")))
    with pytest.raises(MsconsError, match="UNZ reference 'X' differs from UNB"):
        read_mscons(_broken(tmp_path, fsrcn_text.replace("UNZ+1+CS0000000FSRCN", "UNZ+1+X")))


@pytest.mark.parametrize(
    "garbage",
    [
        "hello world, this is not EDIFACT",
        "",
        "<?xml version='1.0'?><root/>",
        "UNB+UNOC:3+A",
        "UNB+UNOC:3+A+B+250101:0000+R'UNZ+0+R'",
    ],
)
def test_garbage_raises(garbage: str) -> None:
    with pytest.raises(MsconsError, match=r"<text>: .*(EDIFACT|truncated|segment)"):
        read_mscons(garbage)


def test_value_without_any_dtm_and_no_resolution_raises() -> None:
    text = _interchange(["LIN+1", "PIA+5+1-1?:1.29.0:SRW", "QTY+220:1"])
    with pytest.raises(MsconsError, match=r"segment 9 .*no period start .* resolution"):
        read_mscons(text)


# --------------------------------------------------------------------------- counters


def _by_start(energy: IntervalEnergy) -> datetime:
    return energy.interval_start


def _energies(register: str, start: datetime, kwhs: list[float]) -> list[IntervalEnergy]:
    step = timedelta(minutes=15)
    return [
        IntervalEnergy("M1", start + i * step, start + (i + 1) * step, register, kwh, False)
        for i, kwh in enumerate(kwhs)
    ]


def test_counter_readings_from_swiss_import_and_export_profiles() -> None:
    energies = to_interval_energies(read_mscons(_ref("*ESLEVU14572840_*.txt")))
    energies += to_interval_energies(read_mscons(_ref("*ESLEVU14572841_*.txt")))
    assert {e.register for e in energies} == {"import", "export"}
    readings, rejected = to_counter_readings(
        energies, {"CH1008801234500000000000000113813": (1000.0, 50.0)}
    )
    assert rejected == []
    assert len(readings) == 97
    assert readings[0] == Reading(
        "CH1008801234500000000000000113813", _utc(2019, 12, 13, 23), 1000.0, 50.0
    )
    imports = sorted((e for e in energies if e.register == "import"), key=_by_start)
    exports = sorted((e for e in energies if e.register == "export"), key=_by_start)
    steps = zip(readings[:-1], readings[1:], imports, exports, strict=True)
    for before, after, imp, exp in steps:
        assert after.ts == imp.interval_end == exp.interval_end
        assert after.import_kwh >= before.import_kwh and after.export_kwh >= before.export_kwh
        assert after.import_kwh - before.import_kwh == pytest.approx(imp.kwh)
        assert after.export_kwh - before.export_kwh == pytest.approx(exp.kwh)
    # Export is zero except four quarter hours: 4.350 (the 53rd QTY, 13:00 local), 0.150,
    # 2.100 and 0.450 kWh.
    assert exports[52].interval_start == _utc(2019, 12, 14, 12) and exports[52].kwh == 4.35
    assert readings[-1].export_kwh == pytest.approx(50.0 + 4.35 + 0.15 + 2.1 + 0.45)
    assert readings[-1].import_kwh == pytest.approx(1000.0 + sum(e.kwh for e in imports))


def test_counter_readings_are_monotone_and_differ_by_the_energies() -> None:
    start = _utc(2025, 3, 1)
    imports, exports = [0.5, 0.0, 1.25, 0.75], [0.0, 2.0, 0.125, 0.0]
    energies = _energies("import", start, imports) + _energies("export", start, exports)
    readings, rejected = to_counter_readings(energies[::-1])
    assert rejected == []
    assert [r.ts for r in readings] == [start + i * timedelta(minutes=15) for i in range(5)]
    assert readings[0] == Reading("M1", start, 0.0, 0.0)
    for i, (before, after) in enumerate(zip(readings, readings[1:], strict=False)):
        assert after.import_kwh - before.import_kwh == pytest.approx(imports[i])
        assert after.export_kwh - before.export_kwh == pytest.approx(exports[i])
        assert after.import_kwh >= before.import_kwh and after.export_kwh >= before.export_kwh


def test_import_only_profile_yields_rejected_rows_not_silence() -> None:
    energies = to_interval_energies(read_mscons(_ref("*CS0000000FSRCN.txt")))
    assert len(energies) == 96 and {e.register for e in energies} == {"import"}
    readings, rejected = to_counter_readings(energies)
    assert readings == []
    assert len(rejected) == 96
    assert rejected[0].meter_id == "50120962218"
    assert rejected[0].reason.startswith("only the import register at 2024-12-23T23:00:00+00:00")
    assert rejected[0].where.endswith("CS0000000FSRCN.txt#segment 16")


def test_interval_missing_one_register_is_rejected_and_counters_carry_over() -> None:
    start = _utc(2025, 3, 1)
    energies = _energies("import", start, [1.0, 2.0, 3.0]) + _energies("export", start, [0.5])
    energies += _energies("export", start + timedelta(minutes=30), [0.25])
    readings, rejected = to_counter_readings(energies)
    (row,) = rejected
    assert "only the import register at 2025-03-01T00:15:00+00:00" in row.reason
    assert [(r.ts.minute, r.import_kwh, r.export_kwh) for r in readings] == [
        (0, 0.0, 0.0),
        (15, 1.0, 0.5),
        (30, 1.0, 0.5),
        (45, 4.0, 0.75),
    ]


def test_conflicting_duplicate_energies_are_rejected() -> None:
    start = _utc(2025, 3, 1)
    energies = _energies("import", start, [1.0]) + _energies("import", start, [1.5])
    energies += _energies("export", start, [0.0])
    readings, rejected = to_counter_readings(energies)
    assert readings == []
    assert len(rejected) == 3 and all("conflicting import" in r.reason for r in rejected)


def test_file_ending_after_a_separator_raises(tmp_path: Path, fsrcn_text: str) -> None:
    # pydifact's tokenizer drops such a dangling segment silently; the reader must not.
    cut = fsrcn_text[: fsrcn_text.index("QTY+220:0,998")] + "QTY+220:"
    with pytest.raises(MsconsError, match=r"broken\.txt: truncated: .*not terminated"):
        read_mscons(_broken(tmp_path, cut))
