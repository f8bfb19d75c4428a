"""The result files' kWh: nine decimals exactly as ``round(x::numeric, 9)`` prints them,
whichever way ``KWH`` takes to get there (zeros skip the conversion)."""

from __future__ import annotations

import random

from sqlalchemy import text

from vbatt.ledger.simulate import KWH

EDGES = [
    0.0,
    -0.0,
    1e-12,
    -1e-12,
    5e-10,
    -5e-10,
    4.9999999e-10,
    1.5e-9,
    -1.5e-9,
    0.1396,
    -0.1396,
    0.0000000005,
    2.675,
    1234567.123456789,
    -987654.3210987654,
    1e15,
    123456789012.5,
    0.1 + 0.2,
    1 / 3,
    -2 / 3,
    10.0,
    5.0e-324,
]


def test_kwh_prints_what_round_to_nine_decimals_prints(engine):
    rng = random.Random(15)
    values = EDGES + [rng.uniform(-50, 50) for _ in range(2000)]
    values += [round(rng.uniform(0, 5), rng.randint(0, 12)) for _ in range(2000)]
    formatted = KWH.format(col="x")
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                f"select x, ({formatted})::text, round(x::numeric, 9)::text"
                " from unnest(cast(:values as float8[])) as v (x)"
                " union all select null, (" + KWH.format(col="cast(null as float8)") + ")::text,"
                " round(cast(null as float8)::numeric, 9)::text"
            ),
            {"values": values},
        ).all()
    assert len(rows) == len(values) + 1
    differ = [(x, ours, reference) for x, ours, reference in rows if ours != reference]
    assert differ == []
    assert {ours for x, ours, _ in rows if x == 0} == {"0.000000000"}
