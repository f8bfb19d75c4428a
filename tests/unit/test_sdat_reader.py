"""SDAT-CH E66 reader: the project's own exports read back to the values written, the
documents in ``tests/data/sdat/`` (other roots, resolutions, units, Condition codes,
metering-point mapping) and refusals with a reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.exports import batches as b
from vbatt.exports.formats import sdat as writer
from vbatt.exports.numbers import fixed
from vbatt.ingest import load
from vbatt.ingest.accounting import ValueAccount
from vbatt.ingest.sdat import (
    MeteringPoints,
    SdatError,
    load_metering_points,
    read_sdat,
    to_interval_energies,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "sdat"
QUARTER = timedelta(minutes=15)
CHANNELS = {  # the writer's blocks: channel -> (metering point kind, OBIS)
    "charge": ("ConsumptionMeteringPoint", "1-1:1.29.0"),
    "discharge": ("ProductionMeteringPoint", "1-1:2.29.0"),
    "overflow": ("ProductionMeteringPoint", "1-5:2.29.0"),
    "shortfall": ("ConsumptionMeteringPoint", "1-5:1.29.0"),
}


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "positions"), [(b.SUMMER_DAY, 96), (b.SPRING_DAY, 92), (b.AUTUMN_DAY, 100)]
)
def test_own_exports_read_back_to_the_values_written(day, positions) -> None:
    batch = b.batch(b.day_period(day))
    files = writer.render(batch, {}, b.CONTEXT)
    assert len(files) == len(batch.batteries)
    for file, battery in zip(files, batch.batteries, strict=True):
        document = read_sdat(file.content)
        assert document.root == "ValidatedMeteredData_12"
        assert len(document.blocks) == len(CHANNELS)
        for block, (channel, (kind, obis)) in zip(document.blocks, CHANNELS.items(), strict=True):
            assert (block.kind, block.product_id, block.product_scheme) == (kind, obis, "OBIS")
            assert block.metering_point == battery.metering_point
            assert block.resolution == "15 MIN"
            assert len(block.observations) == positions
            for obs, row in zip(block.observations, battery.intervals, strict=True):
                assert (obs.start, obs.end) == (row.start, row.end)
                assert obs.volume == fixed(getattr(row, channel), 3)
                assert obs.estimated == row.estimated


@pytest.mark.parametrize("root", ["ValidatedMeteredData_13", "ValidatedMeteredData_14"])
def test_later_roots_share_the_structure(root) -> None:
    batch = b.batch(b.day_period(b.SUMMER_DAY), count=1)
    content = writer.render(batch, {}, b.CONTEXT)[0].content
    document = read_sdat(content.replace(b"ValidatedMeteredData_12", root.encode()))
    assert document.root == root and len(document.blocks) == 4


def test_five_minute_values_in_wh_reactive_and_a_negative_volume() -> None:
    points = load_metering_points(DATA / "metering_points.csv")
    document = read_sdat(DATA / "E66_13_5min_wh_reactive.xml")
    energies, rejected, ignored = to_interval_energies(document, points)
    account = ValueAccount(ignored=ignored)
    kept = load.quarter_hours(energies, rejected, account)
    start = _utc(2025, 1, 14, 23)
    got = sorted(
        (e.meter_id, e.register, e.interval_start, round(e.kwh, 9), e.substitute) for e in kept
    )
    assert got == [
        # the consumption point P1 is meter M-PV-1's import: 5-minute values summed
        ("M-PV-1", "export", start, 0.25, False),  # 250 Wh
        ("M-PV-1", "export", start + QUARTER, 0.1255, True),  # Condition 56
        ("M-PV-1", "import", start, 0.06, True),  # one of three estimated
        ("M-PV-1", "import", start + QUARTER, 0.15, False),
    ]
    assert ignored == {"reactive energy (1-1:5.29.0, unit KVARH)": 2}
    (negative,) = rejected
    assert negative.meter_id == "CH1007901234500000000000000000013"  # not mapped: the point id
    assert "negative" in negative.reason
    assert account.used == {
        "ConsumptionMeteringPoint volume (import load profile)": 6,
        "1-1:2.29.0 (export load profile)": 2,
    }


def test_hourly_values_are_quarantined_and_times_without_zone_are_utc() -> None:
    document = read_sdat(DATA / "E66_14_hourly_local_condition.xml")
    # once, with where and what to ask the sender; the file's name is the caller's to print
    assert document.warnings == [
        "times without Z or an offset (the first: '2025-01-14T23:00:00', line 25) are read"
        " as UTC, as SDAT-CH defines them: if the sender meant local time, ask for times with"
        " Z or an offset"
    ]
    # how a volume was taken is a line of the load report, counted, not a warning
    assert document.notes == [
        "1 volume with Condition '99' (neither 21 measured nor 56 estimated): taken as estimated"
    ]
    (block,) = document.blocks
    assert [o.start for o in block.observations] == [
        _utc(2025, 1, 14, 23 + i) for i in range(1)
    ] + [_utc(2025, 1, 15, i) for i in range(2)]
    assert [o.estimated for o in block.observations] == [False, True, False]
    energies, rejected, _ = to_interval_energies(document)
    kept = load.quarter_hours(energies, rejected, ValueAccount())
    assert kept == [] and len(rejected) == 3
    assert all("is not a UTC quarter hour" in r.reason for r in rejected)


def test_metering_points_default_to_the_meter_of_the_same_id(tmp_path) -> None:
    assert load_metering_points(tmp_path / "missing.csv") == MeteringPoints()
    assert MeteringPoints().meter("ConsumptionMeteringPoint", "CH1") == "CH1"
    clash = tmp_path / "points.csv"
    clash.write_text("meter_id,consumption_point,production_point\nM1,P1,\nM2,P1,\n")
    with pytest.raises(SdatError, match=r"P1 is already the point of meter M1"):
        load_metering_points(clash)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (b"ValidatedMeteredData_12", b"MeteredData_12", "not an SDAT-CH E66 document"),
        (b"<rsm:ebIXCode>E66<", b"<rsm:ebIXCode>E31<", "is not E66"),
        (b"<rsm:Unit>MIN</rsm:Unit>", b"<rsm:Unit>FORTNIGHT</rsm:Unit>", "Resolution"),
        (b"<rsm:Sequence>96</rsm:Sequence>", b"<rsm:Sequence>97</rsm:Sequence>", "after the"),
        (b"</rsm:ValidatedMeteredData_12>", b"", "not well-formed"),
    ],
)
def test_broken_documents_are_refused_with_a_reason(old, new, message) -> None:
    batch = b.batch(b.day_period(b.SUMMER_DAY), count=1)
    content = writer.render(batch, {}, b.CONTEXT)[0].content
    assert old in content
    with pytest.raises(SdatError, match=message):
        read_sdat(content.replace(old, new))
