"""MSCONS variants the BDEW message implementation guides allow, one test each.

The messages in ``tests/data/mscons/variants/`` were written for these tests from the
guides' examples: MIG 2.2g (2016-04-01) and 2.4c (2023-10-24), and the AHB tables of
FV2410 (2.4c) and FV2504 (2.5). Each test names the MIG example or AHB row it follows.
Expected values are worked out by hand from the message text, not by the reader.

What a file holds is accounted for value by value (``vbatt.ingest.accounting``): used per
register, ignored per reason, quarantined per reason. Nothing may be left out silently.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from vbatt.ingest import load
from vbatt.ingest.mscons import MsconsError, read_mscons

VARIANTS = Path(__file__).resolve().parents[1] / "data" / "mscons" / "variants"
QUARTER = timedelta(minutes=15)


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _content(name: str) -> load.FileContent:
    content = load._read_mscons(VARIANTS / name)  # an absolute path stays itself
    content.account.quarantine(content.rejected)
    return content


def _energies(content: load.FileContent, register: str) -> list[tuple[datetime, float, bool]]:
    return sorted(
        (e.interval_start, e.kwh, e.substitute) for e in content.energies if e.register == register
    )


def test_every_variant_is_accounted_for_value_by_value() -> None:
    """Every QTY of every variant file is used, ignored or quarantined: the sums agree."""
    for path in sorted(VARIANTS.glob("*.edi")):
        content = _content(path.name)
        qty = path.read_text(encoding="latin-1").count("'QTY+")
        account = content.account
        assert account.values_used + account.values_ignored + account.values_quarantined == qty, (
            path.name,
            account.as_dict(),
        )


def test_qty_qualifiers_220_67_z18_are_used_201_187_ignored_20_quarantined() -> None:
    # MIG 2.4c SG10 QTY 6063 (AHB 13025: 220, 67, Z18); MIG 2.2g lists 201, 20, 187, 79 too
    content = _content("2.4c-profile-qty-qualifiers.edi")
    start = _utc(2025, 1, 14, 23)
    assert _energies(content, "import") == [
        (start, 1.0, False),  # QTY+220 true value
        (start + QUARTER, 2.0, True),  # QTY+67 substitute: estimated
        (start + 2 * QUARTER, 3.0, False),  # QTY+Z18 preliminary: the best value there is
    ]
    account = content.account
    assert account.ignored == {
        "proposed value (QTY+201) of 1-1:1.29.0": 1,
        "forecast value (QTY+187) of 1-1:1.29.0": 1,
    }
    assert account.quarantined == {"a value the sender marks not usable (QTY+20)": 1}
    assert account.used == {
        "1-1:1.29.0 (import load profile)": 3,
        "1-1:2.29.0 (export load profile)": 6,
    }


def test_dtm_304_with_seconds() -> None:
    # MIG 2.4c DTM 2379 = 304 CCYYMMDDHHMMSSZZZ (document date and values)
    content = _content("2.4c-profile-dtm-304.edi")
    start = _utc(2025, 1, 14, 23)
    assert _energies(content, "import") == [(start, 0.25, False), (start + QUARTER, 0.125, False)]
    ic = read_mscons(VARIANTS / "2.4c-profile-dtm-304.edi")
    assert ic.messages[0].document_date == _utc(2025, 1, 15, 6)


def test_mscons_2_5_reads_like_2_4c() -> None:
    # FV2504 (MSCONS 2.5): the same SG10 codes as FV2410 for 13025; only SG1 RFF went away
    content = _content("2.5-profile.edi")
    assert read_mscons(VARIANTS / "2.5-profile.edi").messages[0].version == "2.5"
    assert content.account.values_used == 4 and not content.rejected


def test_readings_with_dtm_102_day_and_document_date_203() -> None:
    # MIG 2.2g examples: DTM+137:199904081315:203 and DTM+9:20080201:102 (a reading day).
    # Zone-less dates are the sender's wall clock (Europe/Zurich = German time): 1 Feb 2008
    # 00:00 +01:00 is 31 Jan 23:00 UTC.
    content = _content("2.2g-readings-dtm-102.edi")
    (reading,) = content.readings
    assert reading.ts == _utc(2008, 1, 31, 23)
    assert (reading.import_kwh, reading.export_kwh) == (4250.465, 1250.0)
    ic = read_mscons(VARIANTS / "2.2g-readings-dtm-102.edi")
    assert ic.messages[0].document_date == _utc(1999, 4, 8, 13, 15)  # naive_tz UTC by default


def test_monthly_quantities_dtm_610_are_named_never_silent() -> None:
    # MIG 2.2g: DTM+306:201604:610 (Leistungsperiode), DTM+492:201604:610 (balancing month),
    # DTM+293:20100420103245:204 (version). A monthly energy quantity (1.9.0), maximum demand
    # (1.6.0) and a month on a load-profile code (1.29.0): nothing for a quarter-hour ledger.
    content = _content("2.2g-monthly-quantities-dtm-610.edi")
    account = content.account
    assert account.values_used == 0
    assert account.ignored == {
        "a register this project does not use (1-1:1.9.0: an energy quantity over a period)": 1,
        "a register this project does not use (1-1:1.6.0: maximum demand)": 1,
    }
    (rejected,) = content.rejected
    # April 2016 in local time: 31 Mar 22:00 UTC .. 30 Apr 22:00 UTC
    assert "2016-03-31T22:00:00+00:00..2016-04-30T22:00:00+00:00" in rejected.reason
    assert "not a UTC quarter hour" in rejected.reason
    line = account.nothing_usable()
    assert line.startswith("no usable values: ")
    assert "1-1:1.9.0" in line and "1-1:1.6.0" in line and "quarantined: 1" in line


def test_series_with_a_period_start_and_a_resolution_or_an_end() -> None:
    # A series: LOC-level DTM+163 and DTM+672:15:806 (resolution), QTY without DTM; and a
    # series with a period start and end only: four values in one hour = 15 minutes each.
    content = _content("2.4c-series-period-resolution.edi")
    start = _utc(2025, 1, 14, 23)
    by_meter: dict[str, list] = {}
    for e in content.energies:
        if e.register == "import":
            by_meter.setdefault(e.meter_id[-1], []).append((e.interval_start, e.kwh, e.substitute))
    assert sorted(by_meter["6"]) == [
        (start, 1.0, False),
        (start + QUARTER, 2.0, False),
        (start + 2 * QUARTER, 3.0, True),
        (start + 3 * QUARTER, 4.0, False),
    ]
    assert [kwh for _s, kwh, _e in sorted(by_meter["7"])] == [0.1, 0.2, 0.3, 0.4]


def test_units_wh_mwh_kw_are_converted_kvarh_and_gas_ignored_and_product_codes_named() -> None:
    # QTY 6411 / MEA units: WHR, MWH, KWT (mean power over 15 minutes), KVR (reactive);
    # MTQ (m3) is gas; PIA 7143 Z08 (medium) and Z02 (OBIS-like) are product codes.
    content = _content("2.4c-units-and-media.edi")
    start = _utc(2025, 1, 14, 23)
    assert _energies(content, "import") == [
        (start, 0.5, False),  # 500 Wh
        (start + QUARTER, 1.0, False),  # 0.001 MWh
        (start + 2 * QUARTER, 1.0, False),  # 4 kW for a quarter hour
    ]
    assert content.account.ignored == {
        "reactive energy (unit KVR) of 1-1:1.29.0": 1,
        "reactive energy (1-1:5.29.0)": 1,
        "not electricity: gas volume (7-20:3.0.0, MTQ)": 1,
        "not electricity: gas volume (1-1:1.29.0, MTQ)": 1,
        "a product code without an import/export OBIS (9991000000044:Z08)": 1,
        "a product code without an import/export OBIS (1-1:1.29.0:Z02)": 1,
    }


def test_swiss_local_offsets_plus_one_plus_two_and_hhmm() -> None:
    # MSCONS 2.2e (Swiss): local time with its offset, ?+01 in winter and ?+02 in summer; the
    # spring-forward quarter hour 01:45+01..03:00+02 is 15 minutes; ?+0100 is hours+minutes.
    content = _content("2.2e-swiss-local-offsets.edi")
    assert _energies(content, "import") == [
        (_utc(2025, 1, 14, 23), 3.0, False),
        (_utc(2025, 3, 30, 0, 45), 1.0, False),
        (_utc(2025, 3, 30, 1), 2.0, False),
    ]


def test_a_file_of_reactive_energy_only_says_so_in_one_line() -> None:
    content = _content("2.4c-reactive-only.edi")
    assert content.account.values_used == 0
    assert content.account.nothing_usable() == (
        "no usable values: 2 reactive energy (1-1:5.29.0); 2 reactive energy (1-1:8.29.0)"
    )


def test_an_unknown_format_on_a_used_date_is_refused_and_on_unused_ones_one_note() -> None:
    text = (VARIANTS / "2.4c-profile-dtm-304.edi").read_text(encoding="latin-1")
    bad_value_date = text.replace("DTM+163:20250114230000?+00:304", "DTM+163:2025011423:999", 1)
    with pytest.raises(MsconsError, match=r"unknown DTM format code '999'"):
        read_mscons(bad_value_date)
    # an unused date after every value: nothing depends on it, so one line for the report
    # sums them up (it was a warning per segment), and the UNT count stays right
    unused = text.replace("'QTY+", "'DTM+293:2025:999'QTY+")
    count = text.count("'QTY+")
    ic = read_mscons(unused.replace("UNT+26+", f"UNT+{26 + count}+"))
    assert ic.warnings == []
    (note,) = ic.notes
    assert note.startswith(f"ignored {count} DTM+293 dates (not used) in a form this reader")
    assert "the first: segment 14 (DTM+293:2025:999): unknown DTM format code '999'" in note


REAL = sorted((VARIANTS.parent).glob("real-*/*.txt"))


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.name[:48])
def test_every_value_of_the_real_files_is_accounted_for(path: Path) -> None:
    content = _content(str(path))
    qty = path.read_text(encoding="latin-1").count("'QTY+")
    account = content.account
    assert account.values_used + account.values_ignored + account.values_quarantined == qty


def test_what_the_real_files_hold_that_is_not_used_is_named() -> None:
    accounts = {
        p.name[:9]: _content(str(p)).account for p in REAL if p.name[7:9] in ("EM", "VL", "LG")
    }
    # the Swiss 2.2e set: import and export profiles, and four reactive-energy quadrants
    reactive = [_content(str(p)).account for p in REAL if p.name.startswith("20191215_")]
    assert sorted(a.values_used for a in reactive) == [0, 0, 0, 0, 96, 96]
    assert {r for a in reactive for r in a.ignored} == {
        f"reactive energy (1-1:{c}.29.0)" for c in (5, 6, 7, 8)
    }
    assert accounts["MSCONS_EM"].ignored == {
        "a register this project does not use (1-1:1.9.0: an energy quantity over a period)": 1
    }
    assert accounts["MSCONS_VL"].quarantined == {
        "only the import register at <instant>; a Reading needs both": 1
    }
    # D:99A 1.6: QTY 46 and 79 are both values of the series (96 quarter hours)
    assert accounts["MSCONS_LG"].used == {"1-1:1.29.0 (import load profile)": 96}
