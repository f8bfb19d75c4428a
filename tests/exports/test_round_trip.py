"""Files exported from a real warehouse read back to the warehouse's own numbers.

The unit tests of each format start from hand-made batches; these start from the ledger
(dbt over simulated meters, the autumn DST day, estimated intervals) and compare what a
partner's parser would read with ``battery_intervals`` and ``battery_registers``.
"""

from __future__ import annotations

import csv
import io

import pytest
from lxml import etree

from tests.exports.conftest import DAYS, make_partner
from vbatt.exports.formats.sdat import schema as sdat_schema
from vbatt.exports.mscons_check import check_mscons
from vbatt.exports.period import day_period
from vbatt.exports.run import export_partner
from vbatt.ingest.mscons import normalise_obis, read_mscons

pytestmark = pytest.mark.slow

DAY = day_period(DAYS[1], "Europe/Zurich")  # 2025-10-26: 100 quarter hours
SWISS = {"vb-1": "CH1000112345000000000000000000001", "vb-2": "CH1000112345000000000000000000002"}


def mart(warehouse) -> dict[str, list[dict]]:
    rows = warehouse.rows("battery_intervals", "battery_id, interval_start")
    out: dict[str, list[dict]] = {}
    for r in rows:
        if r["battery_id"] in SWISS and DAY.start_utc <= r["interval_start"] < DAY.end_utc:
            out.setdefault(r["battery_id"], []).append(r)
    return out


@pytest.fixture
def issued(warehouse, tmp_path):
    """p1's day as a Swiss receiver (EIC ids) and as a German one (BDEW codes) would get it."""
    batteries = {b: {"metering_point": mp} for b, mp in SWISS.items()}
    swiss = make_partner(
        "p1",
        [
            {"format": "mscons", "name": "mscons-ch", "options": {"version": "2.2e"}},
            {"format": "csv"},
            {"format": "sdat"},
        ],
        batteries=batteries,
        sender={"id": "12X-VBATT-DEMO-S", "qualifier": "305"},
        receiver={"id": "12X-EWA-DEMO---R", "qualifier": "305"},
    )
    german = make_partner("p1", [{"format": "mscons"}], batteries=batteries)
    files = {}
    for partner in (swiss, german):
        results, _ = export_partner(
            warehouse.engine,
            partner,
            DAY,
            tmp_path / "outbox",
            schema=warehouse.schema,
            raw_schema=warehouse.raw,
        )
        files.update({r.format_key: r.files for r in results})
    return files


def test_mscons_reads_back_to_the_ledger(warehouse, issued):
    expected = mart(warehouse)
    obis = {
        "1-1:1.29.0": "charge_kwh",
        "1-1:2.29.0": "discharge_kwh",
        "1-5:2.29.0": "overflow_kwh",
        "1-5:1.29.0": "shortfall_kwh",
    }
    for key in ("mscons", "mscons-ch"):
        profiles = next(p for p in issued[key] if "_TL_" in p.name)
        assert check_mscons(profiles) == [], key
        interchange = read_mscons(profiles.read_bytes())
        seen = set()
        for _message, series in interchange.series():
            battery = next(b for b, mp in SWISS.items() if mp == series.location_id)
            column = obis[normalise_obis(series.obis)]
            rows = expected[battery]
            assert len(series.values) == len(rows) == 100  # the autumn DST day
            for value, row in zip(series.values, rows, strict=True):
                assert value.start == row["interval_start"] and value.end == row["interval_end"]
                assert value.quantity == pytest.approx(row[column], abs=5e-4)
                assert value.is_substitute == row["estimated"]
            seen.add((battery, column))
        assert len(seen) == 8
    registers = {r["battery_id"]: r for r in warehouse.rows("battery_registers", "battery_id")}
    readings = next(p for p in issued["mscons"] if "_VL_" in p.name)
    assert check_mscons(readings) == []
    for _message, series in read_mscons(readings.read_bytes()).series():
        battery = next(b for b, mp in SWISS.items() if mp == series.location_id)
        if normalise_obis(series.obis) == "1-1:1.8.0":
            # the day is not the last one: registers at its end are those of the ledger row
            day_rows = mart(warehouse)[battery]
            total = registers[battery]["charged_total_kwh"] - sum(
                r["charge_kwh"]
                for r in warehouse.rows("battery_intervals", "battery_id, interval_start")
                if r["battery_id"] == battery and r["interval_start"] >= DAY.end_utc
            )
            assert series.values[0].quantity == pytest.approx(total, abs=5e-4)
            assert series.values[0].read_at == day_rows[-1]["interval_end"]


def test_csv_and_sdat_read_back_to_the_ledger(warehouse, issued):
    expected = mart(warehouse)
    intervals = next(p for p in issued["csv"] if p.name.endswith("_intervals.csv"))
    rows = list(csv.DictReader(io.StringIO(intervals.read_text(encoding="utf-8"))))
    assert len(rows) == 200
    for row in rows:
        ref = expected[row["battery_id"]].pop(0)
        assert row["interval_start"] == ref["interval_start"].strftime("%Y-%m-%dT%H:%M:%SZ")
        for column in ("charge_kwh", "discharge_kwh", "overflow_kwh", "shortfall_kwh", "level_kwh"):
            assert float(row[column]) == pytest.approx(ref[column], abs=1e-6)
        assert row["estimated"] in ("0", "1") and (row["estimated"] == "1") == ref["estimated"]

    xsd = sdat_schema()
    expected = mart(warehouse)
    ns = {"rsm": "http://www.strom.ch"}
    for path in issued["sdat"]:
        doc = etree.parse(str(path))
        xsd.assertValid(doc)
        point = doc.findtext(".//rsm:ConsumptionMeteringPoint/rsm:VSENationalID", namespaces=ns)
        battery = next(b for b, mp in SWISS.items() if mp == point)
        for block in doc.iterfind(".//rsm:MeteringData", ns):
            if block.findtext("rsm:Product/rsm:ID", namespaces=ns) != "1-1:1.29.0":
                continue
            volumes = [float(v) for v in block.xpath(".//rsm:Volume/text()", namespaces=ns)]
            assert volumes == pytest.approx([r["charge_kwh"] for r in expected[battery]], abs=5e-4)
