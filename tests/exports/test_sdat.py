"""SDAT-CH export: every document validates against the XSD and parses back to the batch."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from lxml import etree

from tests.exports import batches as b
from vbatt.exports.channels import channels_for
from vbatt.exports.formats import sdat
from vbatt.exports.model import Party, RenderContext

NS = {"rsm": "http://www.strom.ch"}
OBIS = {
    "charge": "1-1:1.29.0",
    "discharge": "1-1:2.29.0",
    "overflow": "1-5:2.29.0",
    "shortfall": "1-5:1.29.0",
}
KIND = {
    "charge": "Consumption",
    "discharge": "Production",
    "overflow": "Production",
    "shortfall": "Consumption",
}


def text(node, path: str) -> str:
    found = node.find(path, NS)
    assert found is not None, path
    return found.text


def when(value: str) -> datetime:
    assert value.endswith("Z")
    return datetime.fromisoformat(value)


def parse(file) -> etree._Element:
    sdat.validate_document(file.content)  # the XSD check, on every file a test looks at
    return etree.fromstring(file.content)


def test_one_valid_document_per_battery_with_a_block_per_channel_that_parses_back():
    batch = b.batch(b.day_period(b.SUMMER_DAY))
    files = sdat.render(batch, {}, b.CONTEXT)
    assert [f.name for f in files] == [
        f"ewb_2025-06-01_E66_{x.metering_point}.xml" for x in batch.batteries
    ]
    for number, (file, battery) in enumerate(zip(files, batch.batteries, strict=True), start=1):
        root = parse(file)
        assert root.tag == "{http://www.strom.ch}ValidatedMeteredData_12"
        head = root.find("rsm:ValidatedMeteredData_HeaderInformation", NS)
        assert text(head, "rsm:Sender/rsm:ID/rsm:EICID") == "12X-0000001216-O"
        assert text(head, "rsm:Receiver/rsm:ID/rsm:EICID") == "12X-LIPPUNEREM-T"
        document = head.find("rsm:InstanceDocument", NS)
        assert text(document, "rsm:DocumentID") == f"VB000042-{number}"
        assert text(document, "rsm:DocumentType/rsm:ebIXCode") == "E66"
        assert when(text(document, "rsm:Creation")) == b.CONTEXT.created_at
        assert text(document, "rsm:Status") == "9"
        report = head.find("rsm:BusinessScopeProcess/rsm:ReportPeriod", NS)
        assert when(text(report, "rsm:StartDateTime")) == batch.period.start_utc
        assert when(text(report, "rsm:EndDateTime")) == batch.period.end_utc
        blocks = root.findall("rsm:MeteringData", NS)
        assert len(blocks) == 4
        rows = 0
        for block, channel in zip(blocks, OBIS, strict=True):
            assert text(block, "rsm:Product/rsm:ID") == OBIS[channel]
            assert block.find("rsm:Product/rsm:ID", NS).get("schemeID") == "OBIS"
            assert text(block, "rsm:Product/rsm:MeasureUnit") == "KWH"
            point = block.find(f"rsm:{KIND[channel]}MeteringPoint/rsm:VSENationalID", NS)
            assert point.text == battery.metering_point
            assert (
                text(block, "rsm:Resolution/rsm:Resolution"),
                text(block, "rsm:Resolution/rsm:Unit"),
            ) == ("15", "MIN")
            assert when(text(block, "rsm:Interval/rsm:StartDateTime")) == battery.intervals[0].start
            assert when(text(block, "rsm:Interval/rsm:EndDateTime")) == battery.intervals[-1].end
            observations = block.findall("rsm:Observation", NS)
            assert [int(text(o, "rsm:Position/rsm:Sequence")) for o in observations] == list(
                range(1, 97)
            )
            for observation, interval in zip(observations, battery.intervals, strict=True):
                volume = text(observation, "rsm:Volume")
                assert len(volume.split(".")[1]) == 3
                assert abs(float(volume) - getattr(interval, channel)) <= 5e-4 + 1e-12
                condition = observation.find("rsm:Condition", NS)
                assert (condition is not None and condition.text == "56") == interval.estimated
            assert sum(float(text(o, "rsm:Volume")) for o in observations) == pytest.approx(
                file.values[channel]
            )
            rows += len(observations)
        assert rows == file.rows == 4 * 96
        assert any(i.estimated for i in battery.intervals)


@pytest.mark.parametrize(
    ("period", "quarters"),
    [
        (b.day_period(b.SPRING_DAY), 92),
        (b.day_period(b.AUTUMN_DAY), 100),
        (b.month_period(2025, 10), 31 * 96 + 4),
    ],
)
def test_dst_days_and_a_month_have_every_quarter_hour_in_utc(period, quarters):
    batch = b.batch(period)
    for file in sdat.render(batch, {}, b.CONTEXT):
        root = parse(file)
        for block in root.findall("rsm:MeteringData", NS):
            sequences = [
                int(s.text) for s in block.findall("rsm:Observation/rsm:Position/rsm:Sequence", NS)
            ]
            assert sequences == list(range(1, quarters + 1))
            start = when(text(block, "rsm:Interval/rsm:StartDateTime"))
            end = when(text(block, "rsm:Interval/rsm:EndDateTime"))
            assert (start, end) == (period.start_utc, period.end_utc)
            assert (end - start).total_seconds() == quarters * 900


def test_a_gap_is_a_missing_position_not_a_zero():
    batch = b.batch(b.day_period(b.SUMMER_DAY), count=1)
    battery = batch.batteries[0]
    holey = replace(battery, intervals=battery.intervals[:10] + battery.intervals[12:])
    file = sdat.render(replace(batch, batteries=(holey,)), {"channels": ["shortfall"]}, b.CONTEXT)[
        0
    ]
    sequences = [int(s.text) for s in parse(file).iterfind(".//rsm:Sequence", NS)]
    assert sequences == [*range(1, 11), *range(13, 97)]


def test_gs1_product_corrections_and_channel_choice():
    batch = b.batch(b.day_period(b.SUMMER_DAY), count=1)
    correction = RenderContext("VB000043", datetime(2025, 11, 3, 6, 0, tzinfo=UTC), version=2)
    file = sdat.render(
        batch, {"product_id": "gs1", "channels": ["overflow", "shortfall"]}, correction
    )[0]
    root = parse(file)
    assert text(root, ".//rsm:InstanceDocument/rsm:Status") == "5"
    assert text(root, ".//rsm:InstanceDocument/rsm:DocumentID") == "VB000043-1"
    ids = root.findall("rsm:MeteringData/rsm:Product/rsm:ID", NS)
    assert [(i.text, i.get("schemeAgencyID")) for i in ids] == [("8716867000030", "9")] * 2
    assert [text(m, "rsm:DocumentID") for m in root.findall("rsm:MeteringData", NS)] == [
        "VB000043-1-O",
        "VB000043-1-S",
    ]
    assert root.find("rsm:MeteringData/rsm:ProductionMeteringPoint", NS) is not None
    assert set(file.values) == {"overflow", "shortfall"}


def test_the_partners_obis_mapping_and_channels_are_used():
    batch = b.batch(b.day_period(b.SUMMER_DAY), count=1)
    mapped = replace(
        batch, channels=channels_for({"shortfall": "1-5:1.29.3"}, ["shortfall", "level"])
    )
    root = parse(sdat.render(mapped, {}, b.CONTEXT)[0])
    assert [i.text for i in root.iterfind(".//rsm:Product/rsm:ID", NS)] == ["1-5:1.29.3"]


def test_same_batch_twice_gives_identical_bytes():
    first = sdat.render(b.batch(b.day_period(b.AUTUMN_DAY)), {}, b.CONTEXT)
    again = sdat.render(b.batch(b.day_period(b.AUTUMN_DAY)), {}, b.CONTEXT)
    assert [(f.name, f.content) for f in first] == [(f.name, f.content) for f in again]


@pytest.fixture(scope="module")
def valid() -> str:
    batch = b.batch(b.day_period(b.SUMMER_DAY), count=1)
    return sdat.render(batch, {"validate": False}, b.CONTEXT)[0].content.decode()


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        ("<rsm:Volume>0.000</rsm:Volume>", "<rsm:Volume>-0.250</rsm:Volume>", "minInclusive"),
        (
            "<rsm:Position><rsm:Sequence>7</rsm:Sequence></rsm:Position>",
            "<rsm:Position></rsm:Position>",
            "Sequence",
        ),
        (
            "2025-05-31T22:00:00Z</rsm:StartDateTime>",
            "2025-06-01T00:00:00+02:00</rsm:StartDateTime>",
            "pattern",
        ),
        (
            "</rsm:Volume></rsm:Observation>",
            "</rsm:Volume><rsm:Condition>99</rsm:Condition></rsm:Observation>",
            "Condition",
        ),
        ("CH1007901234500000000000000000001", "CH-not-a-metering-point", "VSENationalID"),
        ("<rsm:ebIXCode>E66</rsm:ebIXCode>", "<rsm:ebIXCode>E31</rsm:ebIXCode>", "E66"),
        ("<rsm:Unit>MIN</rsm:Unit>", "<rsm:Unit>SEC</rsm:Unit>", "Unit"),
        (
            '<rsm:EICID schemeAgencyID="305">12X-0000001216-O',
            '<rsm:EICID schemeAgencyID="305">7640000000000',
            "EICID",
        ),
        (
            "<rsm:DocumentID>VB000042-1-D</rsm:DocumentID>",
            "<rsm:DocumentID>VB000042-1-C</rsm:DocumentID>",
            "unique",
        ),
        ("</rsm:ValidatedMeteredData_12>", "", "well-formed"),
    ],
)
def test_a_broken_document_fails_validation(valid, old, new, reason):
    assert old in valid
    broken = valid.replace(old, new, 1).encode()
    with pytest.raises(sdat.SdatValidationError, match=reason):
        sdat.validate_document(broken)


def test_bad_input_is_refused_before_anything_is_written():
    batch = b.batch(b.day_period(b.SUMMER_DAY), count=1)
    local_id = replace(batch, batteries=(replace(batch.batteries[0], metering_point="M-4711"),))
    with pytest.raises(ValueError, match="'M-4711' is not a 33-character Swiss metering point id"):
        sdat.render(local_id, {}, b.CONTEXT)
    gln = replace(batch, receiver=Party("7640000000000", "14"))
    with pytest.raises(ValueError, match="receiver must be an EIC code"):
        sdat.render(gln, {}, b.CONTEXT)
    with pytest.raises(ValueError, match=r"SDAT channels \['level'\] are not profile channels"):
        sdat.render(batch, {"channels": ["level"]}, b.CONTEXT)
    with pytest.raises(ValueError, match="product_id must be 'obis' or 'gs1'"):
        sdat.render(batch, {"product_id": "ean"}, b.CONTEXT)
    with pytest.raises(ValueError, match="must stay within 33 characters"):
        sdat.render(batch, {}, RenderContext("R" * 40, b.CONTEXT.created_at))
    negative = replace(batch.batteries[0].intervals[3], charge=-0.5)
    intervals = list(batch.batteries[0].intervals)
    intervals[3] = negative
    with pytest.raises(ValueError, match="charge -0.500 at 2025-05-31T22:45:00Z is negative"):
        sdat.render(
            replace(batch, batteries=(replace(batch.batteries[0], intervals=tuple(intervals)),)),
            {},
            b.CONTEXT,
        )


def test_a_battery_without_quarter_hours_gets_no_document():
    batch = b.batch(b.day_period(b.SUMMER_DAY))
    empty = replace(batch.batteries[0], intervals=())
    files = sdat.render(replace(batch, batteries=(empty, batch.batteries[1])), {}, b.CONTEXT)
    assert [f.name.rsplit("_", 1)[1] for f in files] == [f"{batch.batteries[1].metering_point}.xml"]
    assert text(parse(files[0]), ".//rsm:InstanceDocument/rsm:DocumentID") == "VB000042-2"
