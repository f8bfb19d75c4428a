"""Exports follow battery versions, and the past stays put (issue 12, item 3): a change
from a future date leaves every issued file byte-identical; a backdated change re-issues
exactly the periods it touched, as corrections."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text

from tests.exports.conftest import DAYS, make_partner
from tests.exports.test_issue import tree
from vbatt.exports.period import day_period
from vbatt.exports.run import export_partner
from vbatt.warehouse.versions import BackdatedChange, add_version, set_end_date

pytestmark = pytest.mark.slow

FORMATS = [{"format": "csv"}, {"format": "mscons"}, {"format": "ise"}]


def export_days(warehouse, partner, outbox) -> dict[str, list[str]]:
    statuses = {}
    for day in DAYS:
        results, _ = export_partner(
            warehouse.engine,
            partner,
            day_period(day, "Europe/Zurich"),
            outbox,
            schema=warehouse.schema,
            raw_schema=warehouse.raw,
        )
        statuses[day.isoformat()] = [r.status for r in results]
    return statuses


def change(warehouse, valid_from, changes, **kw):
    with warehouse.engine.begin() as conn:
        return add_version(
            conn, "vb-1", valid_from, changes, recorded_by="test", raw_schema=warehouse.raw, **kw
        )


def ledger_stamps(warehouse) -> dict:
    with warehouse.engine.connect() as conn:
        return dict(
            conn.execute(
                text(
                    f"select interval_start, computed_at from {warehouse.schema}_intermediate"
                    ".int_battery_ledger where battery_id = 'vb-1'"
                )
            ).all()
        )


def test_future_change_leaves_issued_files_byte_identical(warehouse, tmp_path):
    partner = make_partner("p1", FORMATS)
    outbox = tmp_path / "outbox"
    assert set(map(tuple, export_days(warehouse, partner, outbox).values())) == {("new",) * 3}
    issued = tree(outbox)
    stamps = ledger_stamps(warehouse)

    # "today" for the battery but inside a period the partner was sent: backdated
    with pytest.raises(BackdatedChange, match="already issued"):
        change(warehouse, DAYS[2], {"capacity_kwh": 20})
    # an upgrade and a new meter (vb-2's: offers of one partner may share one) from the day
    # after the last issued one
    change(warehouse, date(2025, 10, 28), {"capacity_kwh": 20, "meter_id": "SIM-0002"})
    with warehouse.engine.begin() as conn:
        set_end_date(conn, "vb-2", date(2025, 11, 30), recorded_by="test", raw_schema=warehouse.raw)
    warehouse.run()
    assert ledger_stamps(warehouse) == stamps  # nothing recomputed
    assert set(map(tuple, export_days(warehouse, partner, outbox).values())) == {("unchanged",) * 3}
    assert tree(outbox) == issued
    # files of those days show the meter and capacity in force then
    from vbatt.exports.data import read_batch

    batch = read_batch(
        warehouse.engine,
        partner,
        day_period(DAYS[2], "Europe/Zurich"),
        schema=warehouse.schema,
        raw_schema=warehouse.raw,
    )
    vb1 = next(b for b in batch.batteries if b.battery_id == "vb-1")
    assert (vb1.meter_id, vb1.capacity_kwh) == ("SIM-0001", 5.0)


def test_backdated_change_corrects_exactly_the_touched_periods(warehouse, tmp_path):
    partner = make_partner("p1", FORMATS)
    outbox = tmp_path / "outbox"
    export_days(warehouse, partner, outbox)
    issued = tree(outbox)
    stamps = ledger_stamps(warehouse)

    # the house meter was exchanged on the last issued day and the capacity lowered
    change(
        warehouse,
        DAYS[2],
        {"capacity_kwh": 0.5, "meter_id": "SIM-0002"},
        backdate=True,
        reason="meter exchanged",
    )
    warehouse.run()
    boundary = day_period(DAYS[2], "Europe/Zurich").start_utc
    after = ledger_stamps(warehouse)
    assert {t: s for t, s in after.items() if t < boundary} == {
        t: s for t, s in stamps.items() if t < boundary
    }
    assert all(after[t] > stamps[t] for t in after if t >= boundary)
    capacities = {
        r["capacity_kwh"]
        for r in warehouse.rows("int_battery_ledger", "interval_start")
        if r["battery_id"] == "vb-1" and r["interval_start"] >= boundary
    }
    assert capacities == {0.5}

    # what daily_settlement re-issues: the issued periods from the change's day on
    from vbatt.exports.reissue import mark_reissued, periods_to_reissue

    with warehouse.engine.begin() as conn:
        periods, requests = periods_to_reissue(conn, partner, warehouse.schema, warehouse.raw)
        assert [p.label for p in periods] == [DAYS[2].isoformat()] and len(requests) == 1
        mark_reissued(conn, requests, warehouse.raw)
        assert periods_to_reissue(conn, partner, warehouse.schema, warehouse.raw) == ([], [])

    statuses = export_days(warehouse, partner, outbox)
    assert statuses == {
        DAYS[0].isoformat(): ["unchanged"] * 3,
        DAYS[1].isoformat(): ["unchanged"] * 3,
        DAYS[2].isoformat(): ["correction"] * 3,
    }
    now = tree(outbox)
    assert {k: v for k, v in now.items() if k in issued} == issued  # the originals stay
    added = sorted(set(now) - set(issued))
    assert added and all("_v2" in name for name in added), added
    with warehouse.engine.connect() as conn:
        corrected = (
            conn.execute(
                text(
                    f"select distinct period_label from {warehouse.raw}.export_files where version = 2"
                )
            )
            .scalars()
            .all()
        )
    assert corrected == [DAYS[2].isoformat()]
