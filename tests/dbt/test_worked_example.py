"""The rule book's worked example, end to end through `vbatt simulate`."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

# rule book, "Worked example": (interval, import, export, charge, discharge, overflow, shortfall, level)
EXAMPLE = [
    ("2025-05-31T22:00:00Z", 0.30, 0.00, 0, 0, 0, 0.30, 0),
    ("2025-06-01T10:00:00Z", 0.10, 2.10, 2.00, 0, 0, 0, 2.00),
    ("2025-06-01T10:15:00Z", 0.05, 4.05, 3.00, 0, 1.00, 0, 5.00),
    ("2025-06-01T18:00:00Z", 1.20, 0.00, 0, 1.20, 0, 0, 3.80),
    ("2025-06-01T22:00:00Z", 4.50, 0.00, 0, 3.80, 0, 0.70, 0),
]
BATTERIES = (
    "battery_id,name,partner_id,customer_id,meter_id,capacity_kwh,start_date,reset_date,"
    "reset_repeat,end_date,timezone,initial_level_kwh\n"
    "EX,Worked example,P1,C1,M1,5,2025-06-01,,,,Europe/Zurich,\n"
)


def write_example_readings(path: Path) -> None:
    """15-minute readings whose differences are the example's energies, zero elsewhere."""
    from datetime import UTC, datetime, timedelta

    energies = {datetime.fromisoformat(e[0].replace("Z", "+00:00")): e[1:3] for e in EXAMPLE}
    ts = datetime(2025, 5, 31, 21, 45, tzinfo=UTC)
    imp, exp = 1000.0, 500.0
    lines = ["meter_id,timestamp,import_kwh,export_kwh"]
    while ts <= datetime(2025, 6, 1, 22, 15, tzinfo=UTC):
        lines.append(f"M1,{ts.strftime('%Y-%m-%dT%H:%M:%SZ')},{imp:.2f},{exp:.2f}")
        di, de = energies.get(ts, (0.0, 0.0))
        imp, exp = imp + di, exp + de
        ts += timedelta(minutes=15)
    path.write_text("\n".join(lines) + "\n")


def run_vbatt(*args: str, env_url: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, WAREHOUSE_URL=env_url)
    return subprocess.run(
        [sys.executable, "-m", "vbatt.cli", *args], capture_output=True, text=True, env=env
    )


@pytest.fixture
def example_files(tmp_path):
    readings, batteries = tmp_path / "readings.csv", tmp_path / "batteries.csv"
    write_example_readings(readings)
    batteries.write_text(BATTERIES)
    return readings, batteries


def test_worked_example_reproduces(example_files, warehouse_url, tmp_path):
    readings, batteries = example_files
    out = tmp_path / "out"
    result = run_vbatt(
        "simulate",
        "--readings",
        str(readings),
        "--batteries",
        str(batteries),
        "--out",
        str(out),
        env_url=warehouse_url,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "EX" in result.stdout  # the summary table
    rows = {r["interval_start"]: r for r in csv.DictReader((out / "battery_intervals.csv").open())}
    assert len(rows) == 97  # the local day 2025-06-01 plus the first interval of 2 June
    for start, imp, exp, charge, discharge, overflow, shortfall, level in EXAMPLE:
        row = rows[start]
        for column, value in (
            ("import_kwh", imp),
            ("export_kwh", exp),
            ("charge_kwh", charge),
            ("discharge_kwh", discharge),
            ("overflow_kwh", overflow),
            ("shortfall_kwh", shortfall),
            ("level_kwh", level),
        ):
            assert abs(float(row[column]) - value) <= 1e-9, (start, column, row[column])
        assert row["estimated"] == "false"
    daily = list(csv.DictReader((out / "battery_daily.csv").open()))
    assert [(d["date"], d["intervals"]) for d in daily] == [
        ("2025-06-01", "96"),
        ("2025-06-02", "1"),
    ]
    assert abs(float(daily[0]["level_end_kwh"]) - 3.80) <= 1e-9


def test_simulate_twice_gives_byte_identical_files(example_files, warehouse_url, tmp_path):
    readings, batteries = example_files
    outputs = []
    for name in ("a", "b"):
        result = run_vbatt(
            "simulate",
            "--readings",
            str(readings),
            "--batteries",
            str(batteries),
            "--out",
            str(tmp_path / name),
            env_url=warehouse_url,
        )
        assert result.returncode == 0, result.stderr
        outputs.append(
            [
                (tmp_path / name / f).read_bytes()
                for f in ("battery_intervals.csv", "battery_daily.csv")
            ]
        )
    assert outputs[0] == outputs[1]


BAD_INPUTS = {
    "missing column": (
        "readings",
        "meter_id,timestamp,import_kwh\nM1,2025-06-01T00:00:00Z,1\n",
        "readings.csv:1, column export_kwh: missing column",
    ),
    "bad timestamp": (
        "readings",
        "meter_id,timestamp,import_kwh,export_kwh\nM1,yesterday,1,2\n",
        "readings.csv:2, column timestamp",
    ),
    "naive timestamp": (
        "readings",
        "meter_id,timestamp,import_kwh,export_kwh\nM1,2025-06-01T00:00:00,1,2\n",
        "has no time zone",
    ),
    "bad number": (
        "readings",
        "meter_id,timestamp,import_kwh,export_kwh\nM1,2025-06-01T00:00Z,x,2\n",
        "readings.csv:2, column import_kwh: 'x' is not a number",
    ),
    "negative register": (
        "readings",
        "meter_id,timestamp,import_kwh,export_kwh\nM1,2025-06-01T00:00Z,1,-2\n",
        "readings.csv:2, column export_kwh: -2 is negative",
    ),
    "unknown timezone": (
        "batteries",
        BATTERIES.replace("Europe/Zurich", "Mars/Olympus"),
        "batteries.csv:2, column timezone: 'Mars/Olympus' is not an IANA",
    ),
    "negative capacity": (
        "batteries",
        BATTERIES.replace(",5,", ",-5,"),
        "batteries.csv:2, column capacity_kwh: -5 is negative",
    ),
    "initial above capacity": (
        "batteries",
        BATTERIES.replace("Europe/Zurich,", "Europe/Zurich,7"),
        "column initial_level_kwh: 7.0 exceeds the capacity 5.0",
    ),
    "end before start": (
        "batteries",
        BATTERIES.replace(",,,,Europe", ",,,2025-05-01,Europe"),
        "column end_date: 2025-05-01 is not after start_date",
    ),
    "unknown meter": (
        "batteries",
        BATTERIES.replace(",M1,", ",M9,"),
        "column meter_id: 'M9' has no readings",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_exits_2_and_writes_nothing(case, example_files, warehouse_url, tmp_path):
    readings, batteries = example_files
    which, content, message = BAD_INPUTS[case]
    (readings if which == "readings" else batteries).write_text(content)
    out = tmp_path / "out"
    result = run_vbatt(
        "simulate",
        "--readings",
        str(readings),
        "--batteries",
        str(batteries),
        "--out",
        str(out),
        env_url=warehouse_url,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in " ".join(result.stderr.split()), result.stderr
    assert not out.exists() or not any(out.iterdir())
