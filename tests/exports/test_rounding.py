"""One rounding rule for every format (``exports/numbers.py``): the same value reads the
same in MSCONS, CSV and SDAT-CH, exact decimal ties included."""

from __future__ import annotations

import csv
import dataclasses
import io
import random
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from lxml import etree

from tests.exports import batches as b
from vbatt.exports.formats import csv as csv_format
from vbatt.exports.formats import mscons, sdat
from vbatt.exports.numbers import fixed, rounded
from vbatt.ingest.mscons import normalise_obis, read_mscons

# Exact decimal ties at 3 places whose nearest doubles lie above or below the tie: rounding
# the binary value gives the second column, the rule (the decimal a person reads, half-even)
# the third.
TIES = [
    (0.0025, "0.003", "0.002"),
    (0.0005, "0.001", "0.000"),
    (0.1125, "0.113", "0.112"),
    (1234.5675, "1234.568", "1234.568"),
    (2.0025, "2.002", "2.002"),
    (0.0015, "0.002", "0.002"),
    (7.0045, "7.005", "7.004"),
]


@pytest.mark.parametrize(("value", "binary", "rule"), TIES)
def test_a_tie_rounds_as_its_decimal_form_half_even(value, binary, rule):
    assert f"{value:.3f}" == binary  # what the test is about: the two rules differ or not
    assert fixed(value, 3) == rule
    assert str(rounded(value, 3)) == rule
    assert fixed(value, 3, decimal_point=",") == rule.replace(".", ",")


def test_the_rule_is_the_decimal_form_rounded_half_even_for_any_value():
    rng = random.Random(14)
    values = [rng.uniform(0, 5) for _ in range(20_000)]
    values += [round(rng.uniform(0, 5), rng.randint(1, 8)) for _ in range(20_000)]
    values += [k / 10**7 for k in range(0, 200_000, 5)] + [2.5e-06, 5e-05, 1.5e-07, 1e21 + 0.5]
    for decimals in (0, 1, 3, 6):
        quantum = Decimal(1).scaleb(-decimals)
        for v in values:
            want = Decimal(repr(v)).quantize(quantum, rounding=ROUND_HALF_EVEN).copy_abs()
            assert fixed(v, decimals) == f"{want:f}", (v, decimals)
            assert rounded(v, decimals) == want


def _tied_batch():
    period = b.day_period(b.SUMMER_DAY)
    batch = b.batch(period, count=1)
    bat = batch.batteries[0]
    rows = tuple(
        dataclasses.replace(
            row,
            charge=TIES[i % len(TIES)][0],
            discharge=TIES[(i + 3) % len(TIES)][0],
            shortfall=TIES[(i + 5) % len(TIES)][0],
        )
        for i, row in enumerate(bat.intervals)
    )
    return dataclasses.replace(batch, batteries=(dataclasses.replace(bat, intervals=rows),))


def test_mscons_csv_and_sdat_write_the_same_tied_values_alike():
    batch = _tied_batch()
    bat = batch.batteries[0]
    # MSCONS, read back through the project's reader
    (profiles,) = [
        f for f in mscons.render(batch, {"version": "2.2e"}, b.CONTEXT) if "_TL_" in f.name
    ]
    by_obis = {normalise_obis(c.obis): c.name for c in batch.channels}
    from_mscons: dict[str, list[str]] = {}
    for _message, series in read_mscons(profiles.content).series():
        from_mscons[by_obis[series.obis]] = [f"{v.quantity:.3f}" for v in series.values]
    # CSV with three decimals, as MSCONS
    (intervals,) = csv_format.render(batch, {"files": ["intervals"], "decimals": 3}, b.CONTEXT)
    table = list(csv.DictReader(io.StringIO(intervals.content.decode())))
    # SDAT-CH volumes (three decimals)
    from_sdat: dict[str, list[str]] = {}
    for f in sdat.render(batch, {}, b.CONTEXT):
        root = etree.fromstring(f.content)
        for product in root.iter("{*}MeteringData"):
            ident = product.findtext(".//{*}ProductID") or product.findtext(".//{*}Product")
            vols = [v.text for v in product.iter("{*}Volume")]
            from_sdat.setdefault(ident, vols)
    checked = 0
    for channel in ("charge", "discharge", "shortfall"):
        want = [fixed(getattr(r, channel), 3) for r in bat.intervals]
        if channel in from_mscons:
            assert from_mscons[channel] == want, channel
            checked += 1
        got_csv = [f"{float(row[f'{channel}_kwh']):.3f}" for row in table]
        assert got_csv == want, channel
    assert checked >= 2
    all_sdat = [v for vols in from_sdat.values() for v in vols]
    tie_texts = {rule for _, _, rule in TIES}
    assert all_sdat and set(all_sdat) & tie_texts
    assert not set(all_sdat) & ({binary for _, binary, _ in TIES} - tie_texts)
