"""The gate's streaming MSCONS tally agrees with the full reader on our own files."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from tests.exports import batches as b
from vbatt.exports import readback
from vbatt.exports.formats import mscons
from vbatt.exports.model import Party
from vbatt.exports.partners import FormatConfig


@pytest.mark.parametrize("options", [{"version": "2.2e"}, {}])
def test_streaming_tally_equals_the_full_reader(options):
    batch = b.batch(b.day_period(date(2025, 10, 26)), count=3)  # autumn DST day, estimates
    if not options:  # 2.4c wants BDEW codes
        batch = replace(
            batch, sender=Party("9900000000017", "293"), receiver=Party("9900000000024", "293")
        )
    files = mscons.render(batch, options, b.CONTEXT)
    fast = readback.contents(batch, FormatConfig(format="mscons", options=options), files)
    full = readback._Tally(batch)
    for file in files:
        readback._mscons_full(full, file)
    assert fast == full.rows()
    assert {r["value_count"] for r in fast} == {100} and len(fast) == 12
    # a lost value shows: drop one QTY/DTM/DTM group of the first profile
    content = files[0].content
    start = content.index(b"QTY+")
    end = content.index(b"QTY+", start + 4)
    damaged = replace(files[0], content=content[:start] + content[end:])
    counts = readback.contents(batch, FormatConfig(format="mscons", options=options), [damaged])
    assert min(r["value_count"] for r in counts) == 99
