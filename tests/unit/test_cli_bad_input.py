"""Bad input fed to the CLI as a reviewer did: every case ends in a clear message (file,
line, what to do) or a quarantined row with its reason, never a traceback, wrong data or
lost rows; refused input writes nothing, and the other files of a run still load."""

from __future__ import annotations

import codecs

import pytest
from sqlalchemy import text

from vbatt import cli

DATABASE = "cli_bad_input"
HEADER = "meter_id,timestamp,import_kwh,export_kwh"
BATTERIES = (
    "battery_id,name,partner_id,customer_id,meter_id,capacity_kwh,start_date,reset_date,"
    "reset_repeat,end_date,timezone,initial_level_kwh"
)


@pytest.fixture(autouse=True)
def _migrated(cli_database):
    """The raw layer in place, so that "nothing was written" can be checked."""
    from vbatt.warehouse.migrate import migrate

    migrate(cli_database)


def _csv(path, *rows: str, header: str = HEADER):
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def _good(path, meter: str):
    return _csv(path, f"{meter},2025-06-01T00:00:00Z,1.5,2.5", f"{meter},2025-06-01T00:15:00Z,2,3")


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()  # rich wraps long lines
    return code, " ".join(captured.out.split()), " ".join(captured.err.split())


def _stored(engine, sql: str) -> list:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


def _rejected(engine) -> list[tuple]:
    return _stored(engine, "select location, meter_id, record, reason from raw.rejected_readings")


def test_a_row_with_decimal_commas_is_quarantined_not_loaded_shifted(
    cli_database, tmp_path, capsys
):
    path = _csv(
        tmp_path / "commas.csv",
        "M9,2025-06-01T00:00:00Z,1,5,2,5",
        "M9,2025-06-01T00:15:00Z,2.5,3.5",
    )
    code, out, _ = _run(capsys, "ingest", str(path))
    assert code == 0
    assert "2 values used, 0 ignored, 1 quarantined" in out
    assert _stored(cli_database, "select import_kwh, export_kwh from raw.meter_readings") == [
        (2.5, 3.5)
    ]
    reason = "6 fields where the header has 4 (a decimal comma? use '.')"
    assert _rejected(cli_database) == [
        ("commas.csv:2", "M9", "M9,2025-06-01T00:00:00Z,1,5,2,5", reason)
    ]


def test_a_batteries_row_with_more_fields_than_the_header_is_refused(
    cli_database, tmp_path, capsys
):
    path = _csv(
        tmp_path / "b.csv",
        "VB-1,Meier,P,C1,M1,10,5,2026-01-01,,,,Europe/Zurich,0",
        header=BATTERIES,
    )
    code, _, err = _run(capsys, "batteries", str(path))
    assert code == 2
    assert f"{path}:2: 13 fields where the header has 12 (a decimal comma? use '.')" in err
    assert _stored(cli_database, "select battery_id from raw.batteries") == []


def test_folders_are_refused_with_a_sentence(cli_database, tmp_path, capsys):
    folder = tmp_path / "folder"
    folder.mkdir()
    good = _csv(tmp_path / "b.csv", "VB-1,Meier,P,C1,M1,10,2026-01-01,,,,Europe/Zurich,0")
    for argv in (
        ["ingest", str(folder)],
        ["batteries", str(folder)],
        ["simulate", "--readings", str(good), "--batteries", str(folder), "--out", "o"],
    ):
        code, out, err = _run(capsys, *argv)
        assert code == 2, argv
        assert folder.name in out + err and "is a folder" in out + err, argv


def test_a_missing_file_is_refused_and_the_files_after_it_still_load(
    cli_database, tmp_path, capsys
):
    first, second = _good(tmp_path / "good20.csv", "M20"), _good(tmp_path / "good21.csv", "M21")
    missing = tmp_path / "nonexistent.csv"
    code, out, err = _run(capsys, "ingest", str(first), str(missing), str(second))
    assert code == 2
    assert "nonexistent.csv: refused, nothing loaded: no such file" in err
    assert "good20.csv: loaded" in out and "good21.csv: loaded" in out
    meters = "select distinct meter_id from raw.meter_readings order by 1"
    assert _stored(cli_database, meters) == [("M20",), ("M21",)]


def test_a_field_too_long_is_quarantined_and_the_other_rows_load(cli_database, tmp_path, capsys):
    long_value = f"M1,2025-06-01T00:00:00Z,1x{'9' * (2 << 20)},2"
    long_meter = f"{'A' * (2 << 20)},2025-06-01T00:15:00Z,1,2"
    meter_101 = f"{'B' * 101},2025-06-01T00:15:00Z,1,2"
    path = _csv(
        tmp_path / "long.csv",
        long_value,
        "M1,2025-06-01T00:15:00Z,1,2",
        long_meter,
        meter_101,
        "M1,2025-06-01T00:30:00Z,2,3",
    )
    code, out, _ = _run(capsys, "ingest", str(path))
    assert code == 0
    assert "4 values used, 0 ignored, 3 quarantined" in out
    assert _rejected(cli_database) == [
        (
            "long.csv:2",
            "M1",
            long_value,
            "field too long: more than 131,072 characters (a quote left open?)",
        ),
        # a meter id too long for the readings' index: its own reason, the record whole
        (
            "long.csv:4",
            None,
            long_meter,
            "column meter_id: is 2,097,152 characters long: a meter id has at most 100",
        ),
        (
            "long.csv:5",
            None,
            meter_101,
            "column meter_id: is 101 characters long: a meter id has at most 100",
        ),
    ]
    assert _stored(cli_database, "select count(*) from raw.meter_readings") == [(2,)]


def test_timestamps_out_of_range_nul_bytes_and_control_characters_are_quarantined(
    cli_database, tmp_path, capsys
):
    path = tmp_path / "odd.csv"
    path.write_bytes(
        (
            f"{HEADER}\n"
            "M1,0001-01-01T00:00:00+01:00,1,2\n"
            "M1,9999-12-31T23:00:00-05:00,1,2\n"
            "\x00\x00\x00\x00\n"
            '"M1\nX",2025-06-01T00:00:00Z,1,2\n'
            "M1\x07,2025-06-01T00:00:00Z,1,2\n"
            "M1,2025-06-01T00:00:00Z,1,2\n"
        ).encode()
    )
    code, out, _ = _run(capsys, "ingest", str(path))
    assert code == 0
    assert "2 values used" in out
    rejected = _rejected(cli_database)
    by_line = {}
    for location, meter, record, reason in rejected:
        by_line.setdefault(location, []).append((meter, record, reason))
    assert [r[2] for r in by_line["odd.csv:2"] + by_line["odd.csv:3"]] == [
        "column timestamp: '0001-01-01T00:00:00+01:00': is out of range: in UTC it falls"
        " before year 1 or after 9999",
        "column timestamp: '9999-12-31T23:00:00-05:00': is out of range: in UTC it falls"
        " before year 1 or after 9999",
    ]
    # a NUL cannot be stored: written escaped, with the row's reasons
    nul = by_line["odd.csv:4"]
    assert {(m, r) for m, r, _ in nul} == {("\\x00" * 4, "\\x00" * 4 + ",,,")}
    assert nul[0][2] == "column meter_id: control character in meter_id"
    assert by_line["odd.csv:6"] == [  # a record over lines 5-6: named by its end, as ever
        (
            "M1\nX",
            "M1\nX,2025-06-01T00:00:00Z,1,2",
            "column meter_id: control character in meter_id",
        )
    ]
    assert by_line["odd.csv:7"] == [
        (
            "M1\\x07",
            "M1\\x07,2025-06-01T00:00:00Z,1,2",
            "column meter_id: control character in meter_id",
        )
    ]
    assert _stored(cli_database, "select meter_id from raw.meter_readings") == [("M1",)]


def test_a_bad_row_before_a_quoted_field_over_two_lines_counts_once(cli_database, tmp_path, capsys):
    path = tmp_path / "multi.csv"
    path.write_text(
        f"{HEADER}\nM1,not a time,1,2\nM1,2025-06-01T00:00:00Z,1,2\n"
        '"M2",2025-06-01T00:00:00Z,"1\n",2\n'
    )
    code, out, _ = _run(capsys, "ingest", str(path))
    assert code == 0
    assert "0 already stored" in out and "quarantined 1 values" in out
    assert len(_rejected(cli_database)) == 1
    loads = "select rows_received, rows_loaded, rows_rejected from raw.loads"
    assert _stored(cli_database, loads) == [(3, 2, 1)]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (f"{HEADER}\nM\xfc,2025-06-01T00:00:00Z,1,2\n".encode("latin-1"), None),
        (codecs.BOM_UTF16_LE + f"{HEADER}\n".encode("utf-16-le"), "UTF-16"),
        (b"", "empty"),
    ],
    ids=["latin1", "utf16", "empty"],
)
def test_files_not_in_utf8_say_so_and_what_to_do(cli_database, tmp_path, capsys, content, message):
    path = tmp_path / "enc.csv"
    path.write_bytes(content)
    code, _, err = _run(capsys, "ingest", str(path))
    assert code == 2
    expected = {
        None: "line 2: not UTF-8 (byte 0xfc; Latin-1?): save the file as UTF-8",
        "UTF-16": "the file is UTF-16: save it as UTF-8",
        "empty": "the file is empty",
    }[message]
    assert f"enc.csv: refused, nothing loaded: {expected}" in err
    assert _stored(cli_database, "select count(*) from raw.loads") == [(0,)]


def test_a_batteries_file_in_latin1_names_file_and_line(cli_database, tmp_path, capsys):
    path = tmp_path / "b_latin1.csv"
    path.write_bytes(
        f"{BATTERIES}\nVB-1,M\xfcller,P,C1,M1,10,2026-01-01,,,,Europe/Zurich,0\n".encode("latin-1")
    )
    code, _, err = _run(capsys, "batteries", str(path))
    assert code == 2
    assert f"{path}: line 2: not UTF-8 (byte 0xfc; Latin-1?): save the file as UTF-8" in err


def test_text_that_looks_like_markup_is_printed_as_written(cli_database, tmp_path, capsys):
    bad = _csv(
        tmp_path / "b.csv",
        "VB-1,Meier,P,C1,M1,[/b],2026-01-01,,,,Europe/Zurich,0",
        header=BATTERIES,
    )
    code, _, err = _run(capsys, "batteries", str(bad))
    assert (code, "'[/b]' is not a number" in err) == (2, True)
    code, _, err = _run(capsys, "batteries", "history", "[/x]")
    assert (code, "no battery '[/x]'" in err) == (2, True)
    code, _, err = _run(capsys, "export", "--partner", "[/x]", "--period", "2025-06")
    assert (code, "no partner '[/x]'" in err) == (2, True)


def test_an_sdat_warning_with_markup_does_not_lose_the_report(cli_database, tmp_path, capsys):
    from tests.unit.test_sdat_reader import DATA

    document = (DATA / "E66_13_5min_wh_reactive.xml").read_text()
    assert "<rsm:Condition>56</rsm:Condition>" in document
    sdat = tmp_path / "condition.xml"
    sdat.write_text(document.replace("<rsm:Condition>56<", "<rsm:Condition>[/i]<", 1))
    after = _good(tmp_path / "after.csv", "M7")
    code, out, _ = _run(capsys, "ingest", str(sdat), str(after))
    assert code == 0
    assert "'[/i]'" in out and "condition.xml: loaded" in out and "after.csv: loaded" in out


def test_simulate_refuses_an_out_that_is_a_file_before_loading(cli_database, tmp_path, capsys):
    readings = _good(tmp_path / "r.csv", "M1")
    batteries = _csv(
        tmp_path / "b.csv", "VB-1,Meier,P,C1,M1,10,2025-06-01,,,,Europe/Zurich,0", header=BATTERIES
    )
    out = tmp_path / "o.txt"
    out.write_text("mine\n")
    code, _, err = _run(
        capsys,
        "simulate",
        "--readings",
        str(readings),
        "--batteries",
        str(batteries),
        "--out",
        str(out),
    )
    assert code == 2
    assert "--out must be a folder" in err
    assert out.read_text() == "mine\n"
    schemas = "select nspname from pg_namespace where nspname like 'sim_%'"
    assert _stored(cli_database, schemas) == []


def test_the_refused_values_of_a_load_are_listed_where_the_report_points(
    cli_database, tmp_path, capsys
):
    path = _csv(
        tmp_path / "mixed.csv",
        "M7,2025-06-01T00:00:00Z,1.5,2.5",
        "M7,2025-06-01T00:15:00Z,abc,3",
    )
    code, out, _ = _run(capsys, "ingest", str(path))
    assert code == 0
    (load,) = _stored(cli_database, "select load_id from raw.loads")
    assert f"vbatt quarantine rejected --load {load[0]}" in out
    code, out, _ = _run(capsys, "quarantine", "rejected", "--load", str(load[0]))
    assert code == 0
    assert "mixed.csv:3" in out and "'abc' is not a number" in out and "M7" in out
    code, out, _ = _run(capsys, "quarantine", "list")
    assert "no readings held by the quality gates" in out
    assert "vbatt quarantine rejected" in out
    code, out, _ = _run(capsys, "quarantine", "rejected", "--load", str(load[0] + 1))
    assert out == f"no values refused by load {load[0] + 1}"


def test_an_empty_capacity_is_refused_as_the_api_refuses_it(cli_database, tmp_path, capsys):
    """0 means unlimited: an empty capacity_kwh is no silent default (battery_config's rule,
    which the API applies); an empty initial_level_kwh takes the rule book's default 0."""
    path = _csv(
        tmp_path / "b.csv",
        "VB-1,Meier,P,C1,M1,,2026-01-01,,,,Europe/Zurich,0",
        "VB-2,Keller,P,C2,M2,5,2026-01-01,,,,Europe/Zurich,",
        header=BATTERIES,
    )
    code, _, err = _run(capsys, "batteries", str(path))
    assert code == 2
    assert f"{path}:2, column capacity_kwh: is required (0 = unlimited) (battery 'VB-1')" in err
    assert "VB-2" not in err
    assert _stored(cli_database, "select battery_id from raw.batteries") == []
    path.write_text(path.read_text().replace("M1,,2026", "M1,0,2026"))
    code, _, _ = _run(capsys, "batteries", str(path))
    assert code == 0
    stored = "select battery_id, capacity_kwh, initial_level_kwh from raw.batteries order by 1"
    assert _stored(cli_database, stored) == [("VB-1", 0.0, 0.0), ("VB-2", 5.0, 0.0)]


def test_the_shipped_batteries_example_names_every_capacity():
    """The example a user copies loads under the rule (no capacity left empty)."""
    from pathlib import Path

    from vbatt.ingest.csv_inputs import read_batteries_csv

    example = Path(__file__).parents[2] / "examples" / "batteries.csv"
    assert all(row["capacity_kwh"] is not None for row in read_batteries_csv(example))


def test_mscons_and_sdat_deviations_are_said_once_with_what_to_do(cli_database, tmp_path, capsys):
    """A real Swiss file (its UNT count is wrong) and an SDAT file with times without a
    zone and an unknown Condition: each warning names the file once and says what to do;
    how values were taken is a line of the report; a refusal names the file once too."""
    from tests.unit.test_mscons_reader import CH_22E_FILES
    from tests.unit.test_sdat_reader import DATA

    swiss, sdat = CH_22E_FILES[0], DATA / "E66_14_hourly_local_condition.xml"
    broken = tmp_path / "broken.edi"
    broken.write_text(swiss.read_text(encoding="latin-1")[:400], encoding="latin-1")
    code, out, err = _run(capsys, "ingest", str(swiss), str(sdat), str(broken))
    assert code == 2
    assert out.count(swiss.name) == 2  # its warning and its report
    assert f"{swiss.name}: warning: message slevu14572840D: UNT declares 109" in out
    assert "the sender's segment count is wrong: tell them" in out
    assert out.count(sdat.name) == 2
    assert f"{sdat.name}: warning: times without Z or an offset" in out
    assert "if the sender meant local time, ask for times with Z or an offset" in out
    assert "warning: 1 volume" not in out
    assert "1 volume with Condition '99' (neither 21 measured nor 56 estimated)" in out
    assert err.count("broken.edi") == 1 and "broken.edi: refused, nothing loaded: truncated" in err
