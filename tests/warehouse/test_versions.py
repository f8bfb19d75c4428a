"""Battery versions in the warehouse (rule book, "Configuration over time"): what is
recorded, what is refused and why, and that the past a partner was sent stays put."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text

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


def _issue(conn, raw, label, partner="P"):
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
    _issue(conn, raw, "2026-02-10")
    _issue(conn, raw, "2026-01")
    _issue(conn, raw, "2026-03-20", partner="other")  # another partner's periods do not count
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
    # a month label ends later than its days
    _issue(conn, raw, "2026-02")
    with pytest.raises(BackdatedChange):
        add_version(
            conn, "V-1", date(2026, 2, 20), {"capacity_kwh": 6}, recorded_by="u", raw_schema=raw
        )


def test_end_date_set_moved_cleared(conn, raw):
    create_battery(conn, BATTERY, recorded_by="t", raw_schema=raw)
    add_version(conn, "V-1", date(2026, 3, 1), {"capacity_kwh": 5}, recorded_by="u", raw_schema=raw)
    with pytest.raises(BatteryInvalid, match="end_date"):
        set_end_date(conn, "V-1", date(2026, 3, 1), recorded_by="u", raw_schema=raw)
    assert set_end_date(conn, "V-1", "2026-06-01", recorded_by="u", raw_schema=raw)[
        "end_date"
    ] == date(2026, 6, 1)
    _issue(conn, raw, "2026-04-30")
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
