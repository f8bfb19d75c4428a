"""`vbatt simulate` on the big-load way (COPY straight into its raw table): a bad file
still refuses the run with file, line and column, and leaves no schema behind.

``BIG_LOAD`` is lowered so that the few rows of these files take that way; the CLI tests
of the worked example cover the same refusals on the staged way.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from vbatt.ingest.csv_inputs import InputFileError
from vbatt.ledger import simulate as simulate_module
from vbatt.ledger.simulate import simulate
from vbatt.warehouse import loader

HEADER = "meter_id,timestamp,import_kwh,export_kwh\n"
GOOD = "".join(f"M1,2025-06-01T00:{m:02d}:00Z,{m},1\n" for m in range(0, 60, 15))
BATTERIES = (
    "battery_id,name,partner_id,customer_id,meter_id,capacity_kwh,start_date,reset_date,"
    "reset_repeat,end_date,timezone,initial_level_kwh\nB1,,P1,,{meter},5,2025-06-01,,,,UTC,\n"
)


def _sim_schemas(engine) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text("select nspname from pg_namespace where nspname like 'sim\\_%' order by 1")
            ).scalars()
        )


@pytest.mark.parametrize(
    ("readings", "meter", "message"),
    [
        (HEADER + GOOD + "M1,2025-06-01T01:00:00Z,-1,1\n", "M1", ":6, column import_kwh"),
        (HEADER + GOOD, "M9", "column meter_id: 'M9' has no readings"),
    ],
)
def test_a_bad_file_on_the_big_load_way_leaves_nothing(
    engine, warehouse_url, tmp_path, monkeypatch, readings, meter, message
):
    monkeypatch.setattr(loader, "BIG_LOAD", 1)
    copied = []

    def copy_into_raw(*args):
        copied.append(loader.copy_readings_into_raw(*args))
        return copied[-1]

    monkeypatch.setattr(simulate_module, "copy_readings_into_raw", copy_into_raw)
    before = _sim_schemas(engine)
    (tmp_path / "r.csv").write_text(readings)
    (tmp_path / "b.csv").write_text(BATTERIES.format(meter=meter))
    steps: list[str] = []
    with pytest.raises(InputFileError, match=message):
        simulate(
            engine,
            warehouse_url,
            tmp_path / "r.csv",
            tmp_path / "b.csv",
            tmp_path / "out",
            step=steps.append,
        )
    assert len(copied) == 1 and copied[0] is not None  # the rows went straight in
    assert _sim_schemas(engine) == before
    assert not (tmp_path / "out").exists()


def test_the_result_files_written_in_parts_are_the_bytes_of_one_copy(
    engine, warehouse_url, tmp_path
):
    """The files are written by one COPY per range of batteries at the same time: joined,
    they are byte for byte the file one COPY of every battery writes (ids whose order
    differs between collations included)."""
    ids = ["b2", "B1", "a3", "Z9", "x_1", "x-1", "b10"]
    (tmp_path / "r.csv").write_text(HEADER + GOOD + GOOD.replace("M1", "M2"))
    (tmp_path / "b.csv").write_text(
        BATTERIES.split("\n")[0]
        + "\n"
        + "".join(f"{b},,P1,,M{1 + k % 2},{k},2025-06-01,,,,UTC,\n" for k, b in enumerate(ids))
    )
    before = set(_sim_schemas(engine))
    result = simulate(
        engine, warehouse_url, tmp_path / "r.csv", tmp_path / "b.csv", tmp_path / "out",
        keep_schema=True,
    )  # fmt: skip
    (schema,) = {"_".join(name.split("_")[:2]) for name in set(_sim_schemas(engine)) - before}
    try:
        ranges = simulate_module._battery_ranges(engine, schema, parts=3)
        assert len(ranges) == 3
        for template, written in (
            (simulate_module.INTERVALS_QUERY, result.intervals_csv),
            (simulate_module.DAILY_QUERY, result.daily_csv),
        ):
            one = tmp_path / f"one-{written.name}"
            simulate_module._copy_out(engine, [simulate_module._query(template, schema)], one)
            parts = tmp_path / f"parts-{written.name}"
            simulate_module._copy_out(
                engine, [simulate_module._query(template, schema, r) for r in ranges], parts
            )
            assert written.read_bytes() == one.read_bytes() == parts.read_bytes()
            assert {line.split(",")[0] for line in one.read_text().splitlines()[1:]} == set(ids)
    finally:
        simulate_module.drop_schemas(engine, schema)
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_a_part_that_fails_leaves_no_file_and_no_part(engine, tmp_path):
    """One part's COPY fails: the error reaches the caller, the destination is not
    written (an old one stays as it was), and no temporary part is left beside it."""
    destination = tmp_path / "battery_intervals.csv"
    destination.write_text("the previous file\n")
    with pytest.raises(Exception, match="division by zero"):
        simulate_module._copy_out(
            engine, ["select 1 as a", "select 1 / 0 as a", "select 2 as a"], destination
        )
    assert destination.read_text() == "the previous file\n"
    assert [p.name for p in tmp_path.iterdir()] == [destination.name]
