"""The batteries CSV with versions (issue 12, item 4): several rows of a battery are its
versions; bad version files are refused with file, line, column and reason (exit 2,
nothing written); importing the same file twice records nothing new; `vbatt batteries
history ID` prints the versions."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import text

from vbatt.battery_config import BATTERY_FIELDS
from vbatt.ingest.csv_inputs import InputFileError, read_batteries_csv

DATABASE = "t_batteries_csv"  # cli_database: `vbatt batteries` writes to a database of its own
HEADER = ",".join((*BATTERY_FIELDS, "valid_from"))
GOOD = [
    "VB-1,Meier,P,C1,M1,10,2026-01-01,2026-04-01,yearly,,Europe/Zurich,0,",
    "VB-1,Meier,P,C1,M1,20,2026-01-01,2026-04-01,yearly,,Europe/Zurich,0,2026-03-01",
    "VB-1,Meier,P,C1,M2,20,2026-01-01,2026-06-15,none,,Europe/Zurich,0,2026-05-10",
    "VB-2,Keller,P,C2,M3,5,2026-02-01,,,,Europe/Zurich,,",
]


def _out(capsys) -> tuple[str, str]:
    captured = capsys.readouterr()  # rich wraps long lines
    return " ".join(captured.out.split()), " ".join(captured.err.split())


def _write(tmp_path, lines, header=HEADER):
    path = tmp_path / f"b{secrets.token_hex(2)}.csv"
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def test_rows_of_a_battery_are_its_versions(tmp_path):
    rows = read_batteries_csv(_write(tmp_path, GOOD))
    assert [(r["battery_id"], str(r["valid_from"]), r["meter_id"]) for r in rows] == [
        ("VB-1", "None", "M1"),
        ("VB-1", "2026-03-01", "M1"),
        ("VB-1", "2026-05-10", "M2"),
        ("VB-2", "None", "M3"),
    ]
    # the old header without valid_from still reads
    old = _write(tmp_path, [GOOD[3][:-1]], header=",".join(BATTERY_FIELDS))
    assert read_batteries_csv(old)[0]["valid_from"] is None


BAD = {
    "fixed field": (
        [
            "VB-1,Meier,P,C1,M1,10,2026-01-01,,,,Europe/Zurich,0,",
            "VB-1,Meier,P,C9,M1,10,2026-01-01,,,,Europe/Zurich,0,2026-03-01",
        ],
        ":3, column customer_id: differs from line 2",
    ),
    "end_date": (
        [
            "VB-1,Meier,P,C1,M1,10,2026-01-01,,,2027-01-01,Europe/Zurich,0,",
            "VB-1,Meier,P,C1,M1,10,2026-01-01,,,,Europe/Zurich,0,2026-03-01",
        ],
        ":3, column end_date: differs from line 2",
    ),
    "duplicate": (
        [
            "VB-1,Meier,P,C1,M1,10,2026-01-01,,,,Europe/Zurich,0,",
            "VB-1,Meier,P,C1,M1,10,2026-01-01,,,,Europe/Zurich,0,2026-03-01",
            "VB-1,Meier,P,C1,M1,12,2026-01-01,,,,Europe/Zurich,0,2026-03-01",
        ],
        ":4, column valid_from: 'VB-1' appears twice: line 3",
    ),
    "first after start": (
        ["VB-1,Meier,P,C1,M1,10,2026-01-01,,,,Europe/Zurich,0,2026-02-01"],
        ":2, column valid_from: no version starts on start_date 2026-01-01",
    ),
    "before start": (
        [
            "VB-1,Meier,P,C1,M1,10,2026-01-01,,,,Europe/Zurich,0,",
            "VB-1,Meier,P,C1,M1,10,2026-01-01,,,,Europe/Zurich,0,2025-12-01",
        ],
        ":3, column valid_from: 2025-12-01 is before start_date 2026-01-01",
    ),
    "on end": (
        [
            "VB-1,Meier,P,C1,M1,10,2026-01-01,,,2026-03-01,Europe/Zurich,0,",
            "VB-1,Meier,P,C1,M1,10,2026-01-01,,,2026-03-01,Europe/Zurich,0,2026-03-01",
        ],
        ":3, column valid_from: 2026-03-01 is on or after end_date 2026-03-01",
    ),
    "not a date": (
        [
            "VB-1,Meier,P,C1,M1,10,2026-01-01,,,,Europe/Zurich,0,",
            "VB-1,Meier,P,C1,M1,10,2026-01-01,,,,Europe/Zurich,0,March",
        ],
        ":3, column valid_from: 'March' is not a date",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_version_files_are_refused_with_line_and_column(tmp_path, case):
    lines, message = BAD[case]
    path = _write(tmp_path, lines)
    with pytest.raises(InputFileError) as refused:
        read_batteries_csv(path)
    assert f"{path}{message}" in str(refused.value)


def test_vbatt_batteries_imports_once_refuses_and_prints_history(cli_database, tmp_path, capsys):
    from vbatt import cli

    good = _write(tmp_path, GOOD)
    assert cli.main(["batteries", str(good)]) == 0
    assert "2 batteries created, 2 versions recorded" in _out(capsys)[0]
    assert cli.main(["batteries", str(good)]) == 0  # the same file again: nothing new
    assert (
        "0 batteries created, 0 versions recorded, 0 end dates changed, 4 rows unchanged"
        in _out(capsys)[0]
    )
    count = "select count(*) from raw.battery_versions"
    with cli_database.connect() as conn:
        assert conn.execute(text(count)).scalar() == 4

    bad = _write(tmp_path, [*GOOD, GOOD[1].replace(",20,", ",30,")])
    assert cli.main(["batteries", str(bad)]) == 2
    err = _out(capsys)[1]
    assert "nothing was written" in err and f"{bad}:6, column valid_from" in err
    # a changed fixed field of a stored battery: refused, nothing written
    moved = _write(tmp_path, [GOOD[3].replace("C2", "C7")])
    assert cli.main(["batteries", str(moved)]) == 2
    assert "customer_id: is fixed" in _out(capsys)[1]
    # a correction of one version: a new record, history kept
    fixed = _write(tmp_path, [GOOD[0], GOOD[1].replace(",20,", ",25,"), GOOD[2]])
    assert cli.main(["batteries", str(fixed), "--reason", "typo"]) == 0
    with cli_database.connect() as conn:
        assert conn.execute(text(count)).scalar() == 5

    assert cli.main(["batteries", "history", "VB-1"]) == 0
    out = _out(capsys)[0]
    assert "superseded" in out and "typo" in out and "M2" in out
    assert cli.main(["batteries", "history", "nope"]) == 2
    assert "no battery 'nope'" in _out(capsys)[1]


def test_a_new_battery_in_issued_periods_needs_backdate(cli_database, tmp_path, capsys):
    """A file's new battery starting inside periods already issued to its partner is
    refused (its energy of those periods would reach no one) until --backdate."""
    from tests.warehouse.test_versions import issue
    from vbatt import cli
    from vbatt.warehouse.migrate import migrate

    engine = cli_database
    migrate(engine)
    with engine.begin() as conn:
        issue(conn, "raw", "2026-02")
    late = _write(tmp_path, [GOOD[3]])  # VB-2 of partner P, from 2026-02-01
    assert cli.main(["batteries", str(late)]) == 2
    err = _out(capsys)[1]
    assert "'VB-2': a new battery starting on 2026-02-01 reaches into periods already" in err
    assert "re-run with --backdate" in err
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from raw.batteries")).scalar() == 0
    assert cli.main(["batteries", str(late), "--backdate"]) == 0
    assert "1 batteries created" in _out(capsys)[0]
    with engine.connect() as conn:
        requests = conn.execute(text("select battery_id, from_date from raw.reissue_requests"))
        assert [(b, str(d)) for b, d in requests] == [("VB-2", "2026-02-01")]
