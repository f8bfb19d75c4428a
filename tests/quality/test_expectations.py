"""Every expectation of every suite fails on a batch spoilt for it and passes on clean data.

The cases are keyed by ``suite.expectation``; a new expectation in ``expectations/``
without a case here fails ``test_every_expectation_has_a_bad_batch``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import text

from tests.quality.conftest import BATTERY, METER, battery_row, clean_readings
from vbatt.quality import check_export
from vbatt.quality.suites import SUITES, expectation_names
from vbatt.readings import Reading
from vbatt.settings import get_settings

PERIOD = (datetime(2025, 5, 31, 22, tzinfo=UTC), datetime(2025, 6, 2, 22, tzinfo=UTC))
EXPORT_CHANNELS = ("charge", "discharge", "overflow", "shortfall")


def at(ts: str) -> Reading:
    """The clean reading at ``ts`` (to derive spoilt ones from)."""
    when = datetime.fromisoformat(ts)
    return next(r for r in clean_readings() if r.ts == when)


def near(ts: str, minutes: int = 7, d_import: float = 0.0, meter: str = METER) -> Reading:
    r = at(ts)
    return Reading(meter, r.ts + timedelta(minutes=minutes), r.import_kwh + d_import, r.export_kwh)


# --- raw readings: clean history checked, then a bad load -------------------------------


def ingested(pipeline, gate, bad: list[Reading], before=None):
    pipeline.batteries([battery_row()])
    pipeline.load(clean_readings())
    assert gate.run("after_ingest").outcome == "passed"
    if before:
        before(pipeline, gate)
    pipeline.load(bad)
    return gate.run("after_ingest")


def _no_register_constraint(pipeline, gate):
    gate.sql("alter table {raw}.meter_readings drop constraint meter_readings_nonnegative")


RAW_CASES = {
    "reading_not_in_future": dict(
        bad=[Reading(METER, datetime.now(UTC) + timedelta(days=1), 5000.0, 5000.0)]
    ),
    "reading_not_before_meter_first_day": dict(
        bad=[Reading(METER, datetime(2025, 5, 1, tzinfo=UTC), 900.0, 400.0)]
    ),
    "registers_non_negative": dict(
        bad=[Reading(METER, datetime(2025, 6, 2, 0, 7, tzinfo=UTC), -1.0, 0.0)],
        before=_no_register_constraint,
    ),
    "registers_non_decreasing_after_rebasing": dict(
        bad=[near("2025-06-02T01:00:00+00:00", d_import=-5.0)]
    ),
    "interval_power_plausible": dict(bad=[near("2025-06-02T01:00:00+00:00", d_import=100.0)]),
    "meter_has_battery": dict(bad=[near("2025-06-02T01:00:00+00:00", meter="ORPHAN")]),
}


# --- meter intervals and ledger: a computed ledger, then spoilt data or tables ----------


def ledger(pipeline, gate, readings=None, tamper: str | None = None):
    pipeline.batteries([battery_row()])
    pipeline.load(readings or clean_readings())
    pipeline.run()
    if tamper:
        gate.sql(tamper)
    return gate.run("after_ledger")


def _jump(readings: list[Reading], at_ts: datetime, kwh: float) -> list[Reading]:
    return [
        Reading(r.meter_id, r.ts, r.import_kwh + (kwh if r.ts >= at_ts else 0), r.export_kwh)
        for r in readings
    ]


ROW = "battery_id = 'QB-1' and interval_start = '{ts}'"
LEDGER_CASES = {
    "meter_intervals.day_not_overfull": dict(
        tamper="update {marts}.battery_daily set intervals = 97 where local_date = '2025-06-02'"
    ),
    "meter_intervals.day_complete": dict(
        readings=clean_readings(start=datetime(2025, 6, 1, 3, tzinfo=UTC))
    ),
    "meter_intervals.estimated_share_under_bound": dict(
        readings=clean_readings(
            skip=(datetime(2025, 6, 2, 4, 5, tzinfo=UTC), datetime(2025, 6, 2, 12, tzinfo=UTC))
        )
    ),
    "meter_intervals.rebased_registers_non_decreasing": dict(
        tamper="update {intermediate}.int_meter_readings set import_kwh = import_kwh - 5"
        " where reading_at = '2025-06-02T03:00Z'"
    ),
    "meter_intervals.interval_power_plausible": dict(
        readings=_jump(clean_readings(), datetime(2025, 6, 2, 3, tzinfo=UTC), 30.0)
    ),
    "ledger.level_within_capacity": dict(
        tamper="update {intermediate}.int_battery_ledger set level_kwh = 3.5 where "
        + ROW.format(ts="2025-06-01T14:00Z")
    ),
    "ledger.level_follows_flows": dict(
        tamper="update {intermediate}.int_battery_ledger"
        " set charge_kwh = charge_kwh + 0.5, overflow_kwh = overflow_kwh - 0.5 where "
        + ROW.format(ts="2025-06-01T08:00Z")
    ),
    "ledger.net_energy_split": dict(
        tamper="update {intermediate}.int_battery_ledger set export_kwh = export_kwh + 0.3 where "
        + ROW.format(ts="2025-06-01T09:00Z")
    ),
    "ledger.one_direction_per_interval": dict(
        tamper="update {intermediate}.int_battery_ledger"
        " set overflow_kwh = 0.1, shortfall_kwh = 0.1 where " + ROW.format(ts="2025-06-01T02:00Z")
    ),
    "ledger.daily_sums_equal_interval_sums": dict(
        tamper="update {marts}.battery_daily set charge_kwh = charge_kwh + 1"
        " where local_date = '2025-06-02'"
    ),
    "ledger.registers_equal_running_sums": dict(
        tamper="update {marts}.battery_registers set charged_total_kwh = charged_total_kwh + 1"
    ),
}


# --- exports: what the files hold beside the warehouse ----------------------------------


def exported_frame(pipeline) -> pd.DataFrame:
    """What a correct export of PERIOD holds, read from the mart the way a writer would."""
    with pipeline.engine.connect() as conn:
        rows = pd.read_sql(
            text(
                f"select * from {pipeline.schema}_marts.battery_intervals"
                " where interval_start >= :s and interval_start < :e"
            ),
            conn,
            params={"s": PERIOD[0], "e": PERIOD[1]},
        )
    records = []
    for battery_id, group in rows.groupby("battery_id"):
        for channel in EXPORT_CHANNELS:
            values = group[f"{channel}_kwh"].round(3)  # files carry 3 decimals
            records.append((battery_id, channel, len(values), float(values.sum())))
    return pd.DataFrame(records, columns=["battery_id", "channel", "value_count", "sum_kwh"])


def export_check(pipeline, gate, spoil=None, partner: str = "P1"):
    pipeline.batteries([battery_row()])
    pipeline.load(clean_readings())
    pipeline.run()
    frame = exported_frame(pipeline)
    if spoil:
        frame = spoil(frame)
    return check_export(
        pipeline.url,
        partner,
        *PERIOD,
        frame,
        schema=pipeline.schema,
        raw_schema=pipeline.raw,
        docs_dir=gate.docs_dir,
    )


def _bump(column: str, by: float):
    def spoil(frame):
        frame.loc[0, column] += by
        return frame

    return spoil


EXPORT_CASES = {
    "every_warehouse_series_exported": lambda f: f.iloc[1:],
    "every_exported_series_in_warehouse": lambda f: pd.concat(
        [f, pd.DataFrame([("NOPE", "charge", 4, 1.0)], columns=f.columns)]
    ),
    "value_counts_equal": _bump("value_count", -1),
    "sums_equal": _bump("sum_kwh", 0.5),
}

CASES = {
    **{f"raw_readings.{k}": ("raw", v) for k, v in RAW_CASES.items()},
    **{k: ("ledger", v) for k, v in LEDGER_CASES.items()},
    **{f"exports.{k}": ("export", v) for k, v in EXPORT_CASES.items()},
}


def severities() -> dict[str, str]:
    found = {}
    for suite in SUITES:
        for e in json.loads((get_settings().expectations_dir / f"{suite}.json").read_text())[
            "expectations"
        ]:
            found[f"{suite}.{e['meta']['name']}"] = e.get("severity", "critical")
    return found


def all_expectations() -> list[str]:
    return [f"{suite}.{name}" for suite in SUITES for name in expectation_names(suite)]


def test_every_expectation_has_a_bad_batch():
    assert sorted(CASES) == sorted(all_expectations())


@pytest.mark.parametrize("key", sorted(CASES))
def test_expectation_fails_on_its_bad_batch(pipeline, gate, key):
    kind, case = CASES[key]
    if kind == "raw":
        result = ingested(pipeline, gate, **case)
    elif kind == "ledger":
        result = ledger(pipeline, gate, **case)
    else:
        result = export_check(pipeline, gate, spoil=case)
    failed = {f"{f.suite}.{f.expectation}": f for f in result.failures}
    assert key in failed, result.summary
    failure = failed[key]
    assert failure.unexpected_count, result.summary
    assert key.split(".")[1] in result.summary
    # critical expectations block, except after ingest (a warning gate)
    critical = severities()[key] == "critical"
    assert failure.level == ("block" if critical and kind != "raw" else "warn")
    assert result.blocked == (failure.level == "block")


def test_clean_data_passes_every_expectation(pipeline, gate):
    pipeline.batteries([battery_row()])
    pipeline.load(clean_readings())
    after_ingest = gate.run("after_ingest")
    pipeline.run()
    after_ledger = gate.run("after_ledger")
    export = check_export(
        pipeline.url,
        "P1",
        *PERIOD,
        exported_frame(pipeline),
        schema=pipeline.schema,
        raw_schema=pipeline.raw,
        docs_dir=gate.docs_dir,
    )
    for result in (after_ingest, after_ledger, export):
        assert result.outcome == "passed", result.summary
        assert result.ok
    evaluated = after_ingest.expectations + after_ledger.expectations + export.expectations
    assert evaluated == len(all_expectations())


def test_blocking_ledger_failure_keeps_rechecking_until_fixed(pipeline, gate):
    """A blocked run does not move the watermark: the next run sees the same rows."""
    first = ledger(pipeline, gate, tamper=LEDGER_CASES["ledger.net_energy_split"]["tamper"])
    assert first.blocked
    assert gate.run("after_ledger").blocked
    gate.sql(
        "update {intermediate}.int_battery_ledger set export_kwh = export_kwh - 0.3 where "
        + ROW.format(ts="2025-06-01T09:00Z")
    )
    assert gate.run("after_ledger").outcome == "passed"
    with pipeline.engine.connect() as conn:
        outcomes = (
            conn.execute(
                text(
                    f"select outcome from {pipeline.raw}.quality_runs"
                    " where checkpoint = 'after_ledger' order by run_id"
                )
            )
            .scalars()
            .all()
        )
    assert outcomes == ["blocked", "blocked", "passed"]


def test_one_partner_blocked_another_passes(pipeline, gate):
    # P2's battery on a meter of its own (a meter's readings belong to one partner at a
    # time), with the same readings
    pipeline.batteries(
        [battery_row(), battery_row(battery_id="QB-2", partner_id="P2", meter_id="QM-2")]
    )
    readings = clean_readings()
    pipeline.load(readings + [replace(r, meter_id="QM-2") for r in readings])
    pipeline.run()
    frame = exported_frame(pipeline)
    kwargs = dict(schema=pipeline.schema, raw_schema=pipeline.raw, docs_dir=gate.docs_dir)
    p1 = frame[frame.battery_id == BATTERY].reset_index(drop=True)
    p2 = frame[frame.battery_id == "QB-2"].reset_index(drop=True)
    p1.loc[0, "sum_kwh"] += 1.0
    blocked = check_export(pipeline.url, "P1", *PERIOD, p1, **kwargs)
    passed = check_export(pipeline.url, "P2", *PERIOD, p2, **kwargs)
    assert not blocked.ok and "sums_equal" in blocked.summary
    [failure] = blocked.failures
    assert (failure.examples[0]["battery_id"], failure.examples[0]["channel"]) == (
        BATTERY,
        p1.loc[0, "channel"],
    )  # the summary names the series, not just the numbers
    assert passed.ok, passed.summary
    # P1's frame holds no series of P2 and the other way round: scoped by partner
    assert "every_exported_series_in_warehouse" not in blocked.summary
    # each partner's latest report in a folder of its own
    assert blocked.data_docs == gate.docs_dir / "before_export" / "P1" / "index.html"
    assert blocked.data_docs.is_file() and passed.data_docs.is_file()


def test_empty_export_of_a_partner_with_data_is_blocked(pipeline, gate):
    empty = pd.DataFrame(columns=["battery_id", "channel", "value_count", "sum_kwh"])
    result = export_check(pipeline, gate, spoil=lambda f: empty)
    assert not result.ok
    assert "every_warehouse_series_exported" in result.summary


def test_export_frame_needs_its_columns(pipeline, gate):
    with pytest.raises(ValueError, match="sum_kwh"):
        check_export(
            pipeline.url,
            "P1",
            *PERIOD,
            pd.DataFrame({"battery_id": [], "channel": [], "value_count": []}),
            schema=pipeline.schema,
            raw_schema=pipeline.raw,
        )


def test_a_gate_that_cannot_look_does_not_pass(pipeline, gate):
    pipeline.batteries([battery_row()])
    pipeline.load(clean_readings())
    pipeline.run()
    gate.sql("drop table {marts}.battery_registers")
    with pytest.raises(RuntimeError, match="registers_equal_running_sums could not run"):
        gate.run("after_ledger")


def test_export_register_channels_noted_unknown_refused(pipeline, gate):
    def with_level(frame):
        return pd.concat([frame, pd.DataFrame([(BATTERY, "level", 2, 1.5)], columns=frame.columns)])

    result = export_check(pipeline, gate, spoil=with_level)
    assert result.ok, result.summary
    assert "not compared (register channels): level" in result.summary
    with pytest.raises(ValueError, match="unknown channel"):
        check_export(
            pipeline.url,
            "P1",
            *PERIOD,
            pd.DataFrame(
                [(BATTERY, "chrage", 1, 1.0)],
                columns=["battery_id", "channel", "value_count", "sum_kwh"],
            ),
            schema=pipeline.schema,
            raw_schema=pipeline.raw,
        )
