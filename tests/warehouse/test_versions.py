"""Battery versions in the warehouse (rule book, "Configuration over time"): what is
recorded, what is refused and why, and that the past a partner was sent stays put."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text

from vbatt.battery_config import (
    BatteryConfigError,
    check_batteries,
    field_problems,
    is_number,
    shown,
)
from vbatt.ingest.csv_inputs import InputFileError, read_batteries_csv
from vbatt.warehouse.versions import (
    BackdatedChange,
    BatteryExists,
    BatteryInvalid,
    BatteryNotFound,
    VersionError,
    VersionExists,
    add_version,
    create_battery,
    list_versions,
    set_end_date,
    version_history,
)

BATTERY = {
    "battery_id": "V-1",
    "name": "Meier",
    "partner_id": "P",
    "customer_id": "C-1",
    "meter_id": "M-1",
    "capacity_kwh": 10,
    "start_date": "2026-01-01",
    "reset_date": "2026-04-01",
    "reset_repeat": "yearly",
    "timezone": "Europe/Zurich",
    "initial_level_kwh": 2.5,
}


@pytest.fixture
def raw(pipeline):
    return pipeline.raw


@pytest.fixture
def conn(pipeline):
    with pipeline.engine.begin() as connection:
        yield connection


def issue(conn, raw, label, partner="P"):
    """A period as if issued to the partner (raw.export_files): what makes changes up to
    its end backdated (also for the batteries CSV's tests)."""
    conn.execute(
        text(
            f"insert into {raw}.export_files (partner_id, format_key, period_label, version,"
            " reference, created_at, file_name, sha256, rows, status) values"
            " (:p, 'csv', :l, 1, 'VB1', now(), :l || '.csv', 'x', 1, 'issued')"
        ),
        {"p": partner, "l": label},
    )


def test_create_records_the_battery_and_its_first_version(conn, raw):
    created = create_battery(conn, BATTERY, recorded_by="key:abc", reason="new", raw_schema=raw)
    assert created["start_date"] == date(2026, 1, 1) and created["capacity_kwh"] == 10.0
    [first] = created["versions"]
    assert first["valid_from"] == date(2026, 1, 1) and first["valid_until"] is None
    assert (first["recorded_by"], first["reason"], first["supersedes"]) == ("key:abc", "new", 0)
    with pytest.raises(BatteryExists):
        create_battery(conn, BATTERY, recorded_by="key:abc", raw_schema=raw)


def test_create_names_every_bad_field(conn, raw):
    bad = {
        **BATTERY,
        "capacity_kwh": -1,
        "timezone": "Mars/Olympus",
        "start_date": "2026-13-01",
        "reset_date": "soon",
        "valid_from": "2026-02-01",
        "colour": "red",
    }
    with pytest.raises(BatteryInvalid) as refused:
        create_battery(conn, bad, recorded_by="t", raw_schema=raw)
    problems = refused.value.problems
    assert set(problems) == {"capacity_kwh", "timezone", "start_date", "reset_date", "colour"}
    assert "negative" in problems["capacity_kwh"]
    assert isinstance(refused.value, VersionError) and "capacity_kwh" in str(refused.value)
    with pytest.raises(BatteryInvalid, match="valid_from"):
        create_battery(
            conn, {**BATTERY, "valid_from": "2026-02-01"}, recorded_by="t", raw_schema=raw
        )


def test_versions_carry_over_replace_keeps_history(conn, raw):
    create_battery(conn, BATTERY, recorded_by="t", raw_schema=raw)
    v = add_version(
        conn, "V-1", date(2026, 3, 1), {"capacity_kwh": 20}, recorded_by="u", raw_schema=raw
    )
    assert (v["capacity_kwh"], v["meter_id"], v["name"]) == (20.0, "M-1", "Meier")
    add_version(conn, "V-1", "2026-05-01", {"meter_id": "M-2"}, recorded_by="u", raw_schema=raw)
    with pytest.raises(VersionExists):
        add_version(
            conn, "V-1", date(2026, 3, 1), {"capacity_kwh": 5}, recorded_by="u", raw_schema=raw
        )
    fixed = add_version(
        conn,
        "V-1",
        date(2026, 3, 1),
        {"capacity_kwh": 15},
        recorded_by="u",
        reason="typo",
        replace=True,
        raw_schema=raw,
    )
    assert fixed["capacity_kwh"] == 15.0 and fixed["supersedes"] == 1
    versions = list_versions(conn, "V-1", raw_schema=raw)
    assert [(v["valid_from"], v["capacity_kwh"], v["meter_id"]) for v in versions] == [
        (date(2026, 1, 1), 10.0, "M-1"),
        (date(2026, 3, 1), 15.0, "M-1"),  # carried over from the version before
        (date(2026, 5, 1), 20.0, "M-2"),  # carried over when it was recorded
    ]
    assert versions[0]["valid_until"] == date(2026, 3, 1)
    history = version_history(conn, "V-1", raw_schema=raw)
    assert [(h["valid_from"], h["capacity_kwh"], h["in_force"]) for h in history][1:3] == [
        (date(2026, 3, 1), 20.0, False),
        (date(2026, 3, 1), 15.0, True),
    ]
    # raw.batteries shows the newest version's terms for its readers
    row = conn.execute(text(f"select meter_id, capacity_kwh from {raw}.batteries")).one()
    assert tuple(row) == ("M-2", 20.0)
    with pytest.raises(Exception, match="append-only"):
        with conn.begin_nested():
            conn.execute(text(f"update {raw}.battery_versions set capacity_kwh = 1"))


def test_version_refusals(conn, raw):
    create_battery(conn, {**BATTERY, "end_date": "2027-01-01"}, recorded_by="t", raw_schema=raw)
    with pytest.raises(BatteryNotFound):
        add_version(conn, "nope", date(2026, 3, 1), {}, recorded_by="u", raw_schema=raw)
    cases = [
        (date(2025, 12, 31), {}, "valid_from"),
        (date(2027, 1, 1), {}, "valid_from"),
        (date(2026, 3, 1), {"timezone": "UTC"}, "timezone"),
        (date(2026, 3, 1), {"end_date": "2026-06-01"}, "end_date"),
        (date(2026, 3, 1), {"capacity_kwh": -3}, "capacity_kwh"),
        (date(2026, 3, 1), {"capacity_kwh": "big"}, "capacity_kwh"),
        (date(2026, 3, 1), {"reset_repeat": "monthly"}, "reset_repeat"),
        ("2026-02-30", {}, "valid_from"),
    ]
    for valid_from, changes, field in cases:
        with pytest.raises(BatteryInvalid) as refused:
            add_version(conn, "V-1", valid_from, changes, recorded_by="u", raw_schema=raw)
        assert field in refused.value.problems, (valid_from, changes)
    # the first version's capacity must hold the initial level
    with pytest.raises(BatteryInvalid, match="capacity_kwh"):
        add_version(
            conn,
            "V-1",
            date(2026, 1, 1),
            {"capacity_kwh": 1},
            recorded_by="u",
            replace=True,
            raw_schema=raw,
        )
    # a later version may be smaller than the initial level (the excess is forfeited)
    add_version(conn, "V-1", date(2026, 2, 1), {"capacity_kwh": 1}, recorded_by="u", raw_schema=raw)


def test_issued_periods_make_a_change_backdated(conn, raw):
    create_battery(conn, BATTERY, recorded_by="t", raw_schema=raw)
    issue(conn, raw, "2026-02-10")
    issue(conn, raw, "2026-01")
    issue(conn, raw, "2026-03-20", partner="other")  # another partner's periods do not count
    with pytest.raises(BackdatedChange) as refused:
        add_version(
            conn, "V-1", date(2026, 2, 10), {"capacity_kwh": 5}, recorded_by="u", raw_schema=raw
        )
    assert refused.value.issued_until == date(2026, 2, 11)
    assert "backdate" in str(refused.value)
    add_version(
        conn, "V-1", date(2026, 2, 11), {"capacity_kwh": 5}, recorded_by="u", raw_schema=raw
    )
    add_version(
        conn,
        "V-1",
        date(2026, 2, 1),
        {"capacity_kwh": 7},
        recorded_by="u",
        backdate=True,
        raw_schema=raw,
    )
    # the backdated change asks for the partner's periods from its day to be issued again
    requests = conn.execute(
        text(f"select partner_id, battery_id, from_date from {raw}.reissue_requests")
    ).all()
    assert [tuple(r) for r in requests] == [("P", "V-1", date(2026, 2, 1))]
    # a month label ends later than its days
    issue(conn, raw, "2026-02")
    with pytest.raises(BackdatedChange):
        add_version(
            conn, "V-1", date(2026, 2, 20), {"capacity_kwh": 6}, recorded_by="u", raw_schema=raw
        )


def test_a_new_battery_in_issued_periods_is_backdated(conn, raw):
    """A partner's files of a period went out without a battery created later with a start
    inside it: that battery's energy of those periods would reach no one. So it is a
    backdated change like any other, refused unless asked for; then re-issued."""
    issue(conn, raw, "2026-01")
    issue(conn, raw, "2026-03-20", partner="other")  # another partner's periods do not count
    # a bad field is what to fix first (422 in the API), backdated or not
    with pytest.raises(BatteryInvalid, match="capacity_kwh"):
        create_battery(conn, {**BATTERY, "capacity_kwh": -1}, recorded_by="t", raw_schema=raw)
    with pytest.raises(BackdatedChange) as refused:
        create_battery(conn, BATTERY, recorded_by="t", raw_schema=raw)
    assert (refused.value.issued_until, refused.value.affected_from) == (
        date(2026, 2, 1),
        date(2026, 1, 1),
    )
    message = str(refused.value)
    assert "a new battery starting on 2026-01-01 reaches into periods already issued" in message
    assert "--backdate" in message
    for table in ("batteries", "battery_versions", "reissue_requests"):  # nothing written
        assert conn.execute(text(f"select count(*) from {raw}.{table}")).scalar() == 0
    # from the end of the issued periods on: nothing to re-issue
    after = {**BATTERY, "battery_id": "V-2", "start_date": "2026-02-01"}
    create_battery(conn, after, recorded_by="t", raw_schema=raw)

    create_battery(conn, BATTERY, recorded_by="t", backdate=True, raw_schema=raw)
    requests = conn.execute(
        text(f"select partner_id, battery_id, from_date, reason from {raw}.reissue_requests")
    ).all()
    assert [tuple(r) for r in requests] == [
        ("P", "V-1", date(2026, 1, 1), "a new battery starting on 2026-01-01")
    ]
    # a taken id is the clash to report, not the issued periods
    with pytest.raises(BatteryExists):
        create_battery(conn, BATTERY, recorded_by="t", raw_schema=raw)


def test_end_date_set_moved_cleared(conn, raw):
    create_battery(conn, BATTERY, recorded_by="t", raw_schema=raw)
    add_version(conn, "V-1", date(2026, 3, 1), {"capacity_kwh": 5}, recorded_by="u", raw_schema=raw)
    with pytest.raises(BatteryInvalid, match="end_date"):
        set_end_date(conn, "V-1", date(2026, 3, 1), recorded_by="u", raw_schema=raw)
    assert set_end_date(conn, "V-1", "2026-06-01", recorded_by="u", raw_schema=raw)[
        "end_date"
    ] == date(2026, 6, 1)
    issue(conn, raw, "2026-04-30")
    with pytest.raises(BackdatedChange):
        set_end_date(conn, "V-1", date(2026, 4, 1), recorded_by="u", raw_schema=raw)
    set_end_date(conn, "V-1", date(2026, 5, 15), recorded_by="u", raw_schema=raw)  # after issued
    assert set_end_date(conn, "V-1", None, recorded_by="u", raw_schema=raw)["end_date"] is None
    ends = (
        conn.execute(text(f"select end_date from {raw}.battery_end_dates order by record_id"))
        .scalars()
        .all()
    )
    assert ends == [date(2026, 6, 1), date(2026, 5, 15), None]


# --- The rules every path into raw.batteries shares (vbatt.battery_config, versions): a meter
# serves one partner at a time, ids fit in URLs, dates lie in 2000-2199, text holds no NUL
# and has a maximum length, timezones are IANA names; the batteries CSV and the utility's
# import meet the same rules as the API; a battery written by SQL takes versions; each
# refusal carries one hint.


def row(battery_id: str = "A-1", **over) -> dict:
    return {
        "battery_id": battery_id,
        "name": "Meier",
        "partner_id": "A",
        "customer_id": "C-1",
        "meter_id": "M-1",
        "capacity_kwh": 10.0,
        "start_date": date(2026, 1, 1),
        "reset_date": None,
        "reset_repeat": "yearly",
        "end_date": None,
        "timezone": "Europe/Zurich",
        "initial_level_kwh": 0.0,
        **over,
    }


def test_a_meter_serves_one_partner_at_a_time(conn, raw):
    create_battery(conn, row(end_date=date(2027, 1, 1)), recorded_by="t", raw_schema=raw)
    # the same partner may put a second battery on it (an offer side by side)
    create_battery(conn, row("A-2", name="Offer"), recorded_by="t", raw_schema=raw)
    for start in (date(2026, 1, 1), date(2026, 12, 31), date(2025, 1, 1)):
        with pytest.raises(BatteryInvalid) as refused:
            with conn.begin_nested():
                other = row("B-1", partner_id="B", start_date=start)
                create_battery(conn, other, recorded_by="t", raw_schema=raw)
        assert set(refused.value.problems) == {"meter_id"}
        message = refused.value.problems["meter_id"]
        assert "not available" in message and "ask the utility" in message
        assert "'A'" not in message and "A-1" not in message  # nothing about the other
    # A's batteries end... except A-2, which runs on: B waits until A-2 ends too
    set_end_date(conn, "A-2", date(2027, 1, 1), recorded_by="t", raw_schema=raw)
    switched = row("B-1", partner_id="B", start_date=date(2027, 1, 1))
    create_battery(conn, switched, recorded_by="t", raw_schema=raw)
    # ... and A's battery cannot run on into B's time
    with pytest.raises(BatteryInvalid, match="end_date"):
        with conn.begin_nested():
            set_end_date(conn, "A-1", date(2027, 2, 1), recorded_by="t", raw_schema=raw)
    with pytest.raises(BatteryInvalid, match="end_date"):
        with conn.begin_nested():
            set_end_date(conn, "A-1", None, recorded_by="t", raw_schema=raw)

    # a version of another partner's battery onto the meter: refused while A has it
    create_battery(
        conn, row("B-2", partner_id="B", meter_id="M-9"), recorded_by="t", raw_schema=raw
    )
    with pytest.raises(BatteryInvalid) as refused:
        with conn.begin_nested():
            add_version(
                conn, "B-2", "2026-06-01", {"meter_id": "M-1"}, recorded_by="t", raw_schema=raw
            )
    assert set(refused.value.problems) == {"meter_id"}
    # until the version that follows it: a version on M-1 up to 2027 would still overlap
    add_version(conn, "B-2", "2027-03-01", {"meter_id": "M-1"}, recorded_by="t", raw_schema=raw)
    with pytest.raises(BatteryInvalid):
        with conn.begin_nested():
            add_version(
                conn, "B-2", "2026-12-01", {"meter_id": "M-1"}, recorded_by="t", raw_schema=raw
            )
    # a version that keeps the meter it has does not ask again
    add_version(conn, "B-2", "2027-05-01", {"capacity_kwh": 3}, recorded_by="t", raw_schema=raw)


def test_the_utilitys_import_meets_the_meter_rule(pipeline):
    """upsert_batteries (the loader under ``vbatt batteries`` and the demo) goes through
    the same rule: two partners on one meter at once is a data error, all or nothing."""
    rows = [row(), row("B-1", partner_id="B", start_date=date(2026, 6, 1))]
    with pytest.raises(BatteryInvalid, match="meter_id"):
        pipeline.batteries(rows)
    with pipeline.engine.connect() as conn:
        assert conn.execute(text(f"select count(*) from {pipeline.raw}.batteries")).scalar() == 0
    # one ending when the other starts: both stored
    pipeline.batteries([row(end_date=date(2026, 6, 1)), rows[1]])


@pytest.mark.parametrize(
    "over, field",
    [
        ({"battery_id": "x/y z"}, "battery_id"),
        ({"battery_id": "new"}, "battery_id"),
        ({"battery_id": "a" * 101}, "battery_id"),
        ({"name": "a\0b"}, "name"),
        ({"customer_id": "c" * 201}, "customer_id"),
        ({"meter_id": "m" * 101}, "meter_id"),
        ({"start_date": date(1, 1, 1)}, "start_date"),
        ({"end_date": date(2200, 1, 1)}, "end_date"),
        ({"reset_date": date(1999, 12, 31)}, "reset_date"),
        ({"timezone": "Europe"}, "timezone"),
        ({"timezone": "A" * 300}, "timezone"),
    ],
)
def test_the_shared_rules(over, field):
    problems = dict(field_problems(row(**over)))
    assert set(problems) == {field}, problems
    with pytest.raises(BatteryConfigError, match=field):
        check_batteries([row(**over)])


def test_the_rules_bounds_pass():
    edge = row(
        battery_id="a" * 100,
        name="n" * 200,
        start_date=date(2000, 1, 1),
        end_date=date(2199, 12, 31),
        timezone="UTC",
    )
    assert field_problems(edge) == []
    problem = dict(field_problems(row(start_date=date(1999, 12, 31))))["start_date"]
    assert "2000-01-01 to 2199-12-31" in problem


def test_the_batteries_csv_meets_the_shared_rules(tmp_path):
    header = "battery_id,name,partner_id,customer_id,meter_id,capacity_kwh,start_date,reset_date,reset_repeat,end_date,timezone,initial_level_kwh"
    path = tmp_path / "b.csv"
    path.write_text(
        "\n".join(
            [
                header,
                "x/y z,Meier,P,C,M1,5,2026-01-01,,,,Europe/Zurich,",
                "new,Meier,P,C,M1,5,2026-01-01,,,,Europe/Zurich,",
                "ok-1,Meier,P,C,M1,5,0001-01-01,,,,Europe,",
            ]
        )
        + "\n"
    )
    with pytest.raises(InputFileError) as refused:
        read_batteries_csv(path)
    shown_ = str(refused.value)
    assert "b.csv:2, column battery_id" in shown_
    assert "b.csv:3, column battery_id" in shown_ and "reserved" in shown_
    assert "b.csv:4, column start_date" in shown_ and "b.csv:4, column timezone" in shown_


def test_a_battery_written_by_sql_takes_versions(conn, raw):
    conn.execute(
        text(
            f"insert into {raw}.batteries (battery_id, name, partner_id, customer_id,"
            " meter_id, capacity_kwh, start_date) values"
            " ('S-1', 'By SQL', 'A', 'C', 'M-1', 5, '2026-01-01')"
        )
    )
    with pytest.raises(VersionExists) as refused:
        with conn.begin_nested():
            add_version(
                conn, "S-1", "2026-01-01", {"capacity_kwh": 6}, recorded_by="t", raw_schema=raw
            )
    assert "None" not in str(refused.value)
    add_version(conn, "S-1", "2026-03-01", {"capacity_kwh": 6}, recorded_by="t", raw_schema=raw)
    versions = list_versions(conn, "S-1", raw_schema=raw)
    assert [(v["valid_from"], v["capacity_kwh"]) for v in versions] == [
        (date(2026, 1, 1), 5.0),
        (date(2026, 3, 1), 6.0),
    ]


def test_refusals_carry_one_hint(conn, raw):
    create_battery(conn, row(), recorded_by="t", raw_schema=raw)
    add_version(conn, "A-1", "2026-03-01", {"capacity_kwh": 5}, recorded_by="t", raw_schema=raw)
    with pytest.raises(VersionExists) as exists:
        with conn.begin_nested():
            add_version(
                conn, "A-1", "2026-03-01", {"capacity_kwh": 6}, recorded_by="t", raw_schema=raw
            )
    assert str(exists.value).count("replace") == 1 and "supersede" in str(exists.value)
    assert "replace" not in exists.value.detail
    issue(conn, raw, "2026-02", partner="A")
    with pytest.raises(BackdatedChange) as backdated:
        with conn.begin_nested():
            add_version(
                conn, "A-1", "2026-02-10", {"capacity_kwh": 6}, recorded_by="t", raw_schema=raw
            )
    message = str(backdated.value)
    assert message.count("--backdate") == 1 and "say backdate" not in message
    assert "backdate" not in backdated.value.detail


def test_values_are_shown_shortened_and_huge_numbers_are_no_numbers():
    assert shown("x" * 1000) == repr("x" * 1000)[:80] + "…"
    assert shown("short") == "'short'"
    assert not is_number(10**400) and not is_number(float("nan")) and is_number(1e300)
    problems = dict(field_problems(row(capacity_kwh=10**400)))
    assert set(problems) == {"capacity_kwh"} and len(problems["capacity_kwh"]) < 120
