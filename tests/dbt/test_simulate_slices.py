"""`vbatt simulate` in slices side by side gives the files of one run, byte for byte.

Slices are whole groups of batteries and meters (vbatt.ledger.slices): a meter shared by
three batteries, a battery whose versions move it to another meter, and a conflicting
reading (the newest ingested wins: the ingestion order must survive the copy into a
slice's raw schema) are all here.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from tests.dbt.test_simulate_load import _sim_schemas
from vbatt.ledger import simulate as simulate_module
from vbatt.ledger.dbt_runner import DbtError
from vbatt.ledger.simulate import drop_schemas, simulate
from vbatt.ledger.slices import default_slices, plan_slices

HEADER = (
    "battery_id,name,partner_id,customer_id,meter_id,capacity_kwh,start_date,reset_date,"
    "reset_repeat,end_date,timezone,initial_level_kwh,valid_from\n"
)
BATTERIES = (
    HEADER
    + "A-0,,P1,,M1,0,2025-06-01,,,,Europe/Zurich,,\n"
    + "A-5,,P1,,M1,5,2025-06-01,,,,Europe/Zurich,,\n"
    + "A-10,,P1,,M1,10,2025-06-01,2025-06-02,,,Europe/Zurich,1,\n"
    + "MOVED,,P2,,M2,4,2025-06-01,,,,UTC,,\n"
    + "MOVED,,P2,,M3,2,2025-06-01,,,,UTC,,2025-06-02\n"
    + "ALONE,,P2,,M4,3,2025-06-01,2025-06-02,yearly,,Europe/Zurich,,\n"
)


CONFLICT = ("M2", "2025-06-01T10:00:00Z")


def _readings(path) -> dict[tuple[str, str], float]:
    """The readings file; returns each reading's import counter (the newest version)."""
    imports: dict[tuple[str, str], float] = {}
    lines = ["meter_id,timestamp,import_kwh,export_kwh"]
    start = datetime(2025, 5, 31, 22, tzinfo=UTC)
    for m, meter in enumerate(["M1", "M2", "M3", "M4"]):
        imported, exported = 100.0 + m, 50.0
        for k in range(3 * 96):
            ts = (start + timedelta(minutes=15 * k)).strftime("%Y-%m-%dT%H:%M:%SZ")
            lines.append(f"{meter},{ts},{imported:.4f},{exported:.4f}")
            imports[meter, ts] = round(imported, 4)
            net = math.sin(k / 96 * 2 * math.pi - 1.5 + m) * 0.6
            imported += max(-net, 0) + 0.01
            exported += max(net, 0)
    # a second value for an instant already read: the later line is the newer version
    old = next(line for line in lines if line.startswith(",".join(CONFLICT)))
    newer = imports[CONFLICT] + 0.005
    lines.append(f"{','.join(CONFLICT)},{newer:.4f},{old.split(',')[3]}")
    imports[CONFLICT] = newer
    path.write_text("\n".join(lines) + "\n")
    return imports


def _row(battery_id: str, meter_id: str) -> dict:
    return {"battery_id": battery_id, "meter_id": meter_id}


def test_a_slice_holds_whole_groups_of_batteries_and_meters():
    rows = [
        _row("A-0", "M1"),
        _row("A-5", "M1"),
        _row("MOVED", "M2"),
        _row("ALONE", "M4"),
        _row("MOVED", "M3"),
        _row("OTHER", "M3"),
    ]
    parts = plan_slices(rows, 4)
    assert len(parts) == 3  # three groups: the fourth slice would be empty
    groups = sorted(sorted(part.battery_ids) for part in parts)
    assert groups == [["A-0", "A-5"], ["ALONE"], ["MOVED", "OTHER"]]
    for part in parts:
        assert {row["meter_id"] for row in part.batteries} == part.meters
        assert part.batteries == [row for row in rows if row["battery_id"] in part.battery_ids]
    assert [sorted(p.battery_ids) for p in plan_slices(rows, 1)] == [
        ["A-0", "A-5", "ALONE", "MOVED", "OTHER"]
    ]
    # balanced: six single-meter batteries in three slices of two
    singles = [_row(f"B{i}", f"M{i}") for i in range(6)]
    assert sorted(len(part.battery_ids) for part in plan_slices(singles, 3)) == [2, 2, 2]


def test_only_a_big_simulation_is_sliced(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert default_slices(999_999) == 1
    assert default_slices(7_000_000) == 4
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert default_slices(7_000_000) == 2


def test_slices_side_by_side_give_the_files_of_one_run(engine, warehouse_url, tmp_path):
    readings, batteries = tmp_path / "readings.csv", tmp_path / "batteries.csv"
    imports = _readings(readings)
    batteries.write_text(BATTERIES)
    before = _sim_schemas(engine)
    results = {}
    for slices in (1, 3):
        steps: list[str] = []
        results[slices] = simulate(
            engine,
            warehouse_url,
            readings,
            batteries,
            tmp_path / f"out{slices}",
            step=steps.append,
            keep_schema=slices == 3,
            slices=slices,
        )
        assert ("in 3 slices side by side" in " ".join(steps)) == (slices == 3)
    # a kept sliced simulation reads as one schema: its marts are views over the slices'
    new = [s for s in _sim_schemas(engine) if s not in before]
    schema = next(s[: -len("_raw")] for s in new if re.fullmatch(r"sim_[0-9a-f]{8}_raw", s))
    assert f"{schema}_s2_marts" in new
    with engine.connect() as conn:
        kept = conn.execute(
            text(f"select distinct battery_id from {schema}_marts.battery_intervals order by 1")
        ).scalars()
        assert list(kept) == ["A-0", "A-10", "A-5", "ALONE", "MOVED"]
    drop_schemas(engine, schema)
    one, sliced = results[1], results[3]
    assert one.intervals_csv.read_bytes() == sliced.intervals_csv.read_bytes()
    assert one.daily_csv.read_bytes() == sliced.daily_csv.read_bytes()
    assert one.summary == sliced.summary
    assert [r["battery_id"] for r in one.summary] == ["A-0", "A-10", "A-5", "ALONE", "MOVED"]
    # the conflicting reading's newer version is the one computed
    moved = {
        line.split(",")[1]: float(line.split(",")[2])
        for line in one.intervals_csv.read_text().splitlines()
        if line.startswith("MOVED,")
    }
    expected = imports[CONFLICT] - imports["M2", "2025-06-01T09:45:00Z"]
    assert abs(moved["2025-06-01T09:45:00Z"] - expected) <= 1e-9
    assert _sim_schemas(engine) == before


def test_slices_on_the_command_line_are_checked(capsys):
    from vbatt.cli import build_parser

    parser = build_parser()
    args = ["simulate", "--readings", "r", "--batteries", "b", "--out", "o"]
    assert parser.parse_args([*args, "--slices", "2"]).slices == 2
    assert parser.parse_args(args).slices is None  # the default: by size and cores
    for bad in ("0", "two"):
        with pytest.raises(SystemExit):
            parser.parse_args([*args, "--slices", bad])
        assert f"--slices must be a positive whole number, not '{bad}'" in capsys.readouterr().err


def test_a_failed_slice_fails_the_run_and_leaves_nothing(
    engine, warehouse_url, tmp_path, monkeypatch
):
    """One slice's dbt fails: the run ends with dbt's error, once the other slice has
    stopped, and no schema nor result file is left behind."""
    readings, batteries = tmp_path / "readings.csv", tmp_path / "batteries.csv"
    _readings(readings)
    batteries.write_text(BATTERIES)
    ran: list[str] = []

    def run_dbt(args, *, schema, **kwargs):
        ran.append(schema)
        if schema.endswith("_s1"):
            raise DbtError("dbt run failed (exit 1): the model of slice 1")

    monkeypatch.setattr(simulate_module, "run_dbt", run_dbt)
    before = _sim_schemas(engine)
    with pytest.raises(DbtError, match="slice 1"):
        simulate(engine, warehouse_url, readings, batteries, tmp_path / "out", slices=2)
    assert sorted(name[-3:] for name in ran) == ["_s0", "_s1"]
    assert _sim_schemas(engine) == before
    assert not list((tmp_path / "out").glob("*"))
