"""Every fault of the simulated smart-me cloud at once, from the API through ingest and dbt.

The simulator alone knows the truth (``households.ground_truth``), so everything the
warehouse ends up with is checked against it: nothing doubled, nothing lost without a
rejection that says why, every interval exact unless it is estimated for a reason the rule
book gives, and a replayed run that changes nothing.

What the simulator does, and so what is honest to expect (simulator/app.py, faults.py):

* request faults (latency, 429 with Retry-After, 500, malformed JSON, hangs longer than the
  client's timeout) are transient: after ``max_consecutive_faults`` a path answers cleanly,
  so a client that retries gets every answer;
* value faults are part of an answer: a "missing" value (register absent, null, garbage or
  no Values list) is spoiled in that answer and the client does not ask again. It becomes a
  row of raw.rejected_readings and its instant is a gap in raw.meter_readings, until a later
  run fetches it clean (the last step here). Duplicates and shuffled lists must collapse;
* faults are drawn from (seed, path, request number): after ``/_sim/reset`` the same
  requests get the same answers, which makes "run it again" an exact replay.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from tests.oracle import Battery
from tests.scenarios import battery_row
from vbatt.ingest.load import IngestReport, ingest_smartme
from vbatt.ingest.smartme import SmartMeClient, SmartMeConfig, parse_timestamp
from vbatt.simulator import get_stats, reset, set_faults, start_in_background
from vbatt.simulator.app import DEMO_API_KEY
from vbatt.simulator.households import ground_truth, meter_id_for

pytestmark = [pytest.mark.xdist_group("warehouse"), pytest.mark.slow]

SEED = 5
METERS = [meter_id_for(i) for i in range(1, 5)]
START = datetime(2025, 6, 10, tzinfo=UTC)
END = START + timedelta(days=1, hours=12)
LOOKBACK = timedelta(hours=2)
QUARTER = timedelta(minutes=15)
DROP = {"SIM-0002": datetime(2025, 6, 10, 13, 0, tzinfo=UTC)}  # a meter exchange, in window
FAULTS = {
    "latency_ms": 5,
    "rate_429": 0.12,
    "retry_after_s": 1,
    "rate_500": 0.12,
    "rate_malformed": 0.12,
    "hang_rate": 0.08,
    "hang_ms": 1500,  # longer than the client's timeout: a hang is a timeout
    "rate_missing": 0.03,
    "rate_duplicate": 0.05,
    "rate_out_of_order": 0.5,
    "counter_drop": DROP,
    "max_consecutive_faults": 2,
}
SNAPSHOT = {
    "int_meter_intervals": "meter_id, interval_start",
    "int_battery_ledger": "battery_id, interval_start",
    "battery_daily": "battery_id, local_date",
}
IGNORED = {"computed_at", "max_load_id"}


@pytest.fixture(scope="module")
def sim() -> Iterator[str]:
    url, stop = start_in_background(meters=len(METERS), seed=SEED, faults=FAULTS)
    try:
        yield url
    finally:
        stop()


def client_for(url: str) -> SmartMeClient:
    """Fast retries so the test is quick; small pages so there are requests to spoil.

    24 values per call cuts the 38 hours into 7 calls per meter: enough requests for every
    request fault to strike, and the pages' seams are checked on the way.
    """
    return SmartMeClient(
        SmartMeConfig(
            base_url=url,
            api_key=DEMO_API_KEY,
            rate=None,
            timeout=1.0,
            max_retries=4,
            backoff_base=0.01,
            backoff_max=0.05,
            max_values_per_call=24,
        )
    )


def ingest(pipeline, url: str) -> IngestReport:
    with client_for(url) as client:
        report = ingest_smartme(
            pipeline.engine,
            client,
            start=START,
            end=END,
            lookback=LOOKBACK,
            raw_schema=pipeline.raw,
        )
    assert not report.failed, [(m.meter_id, m.error) for m in report.failed]
    assert sorted(m.meter_id for m in report.meters) == METERS
    assert {m.fetched_from for m in report.meters} == {START - LOOKBACK}
    return report


def batteries() -> list[dict]:
    """One battery per meter, starting with the window, so ingest finds the meters."""
    return [
        battery_row(
            Battery(
                battery_id=f"B-{meter}",
                meter_id=meter,
                capacity_kwh=cap,
                start_date=START.date(),
                reset_date=None,
                reset_repeat="none",
                end_date=None,
                timezone="UTC",
                initial_level_kwh=0.0,
            )
        )
        for meter, cap in zip(METERS, [5.0, 2.5, 0.0, 10.0], strict=True)
    ]


def truth(meter: str, ts: datetime) -> tuple[float, float]:
    return ground_truth(meter, ts, seed=SEED, counter_drops=DROP)


def quarters(first: datetime, last: datetime) -> list[datetime]:
    out, ts = [], first
    while ts <= last:
        out.append(ts)
        ts += QUARTER
    return out


def query(pipeline, sql: str) -> list[tuple]:
    with pipeline.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql.format(raw=pipeline.raw)))]


def stored_readings(pipeline) -> list[tuple]:
    return query(
        pipeline,
        "select meter_id, ts, import_kwh, export_kwh, source from {raw}.meter_readings"
        " order by meter_id, ts, import_kwh, export_kwh",
    )


def rejected_instants(pipeline) -> dict[str, set[datetime]]:
    """Instants of the values the client refused; each rejection must say why and where."""
    out: dict[str, set[datetime]] = {m: set() for m in METERS}
    for meter, record, reason, location in query(
        pipeline, "select meter_id, record, reason, location from {raw}.rejected_readings"
    ):
        assert reason and location.startswith("http"), (meter, record, reason, location)
        fields = {k.lower(): v for k, v in json.loads(record).items()}
        ts = parse_timestamp(fields.get("date"))
        assert ts is not None, record
        out[meter].add(ts)
    return out


def check_raw_against_truth(pipeline, refetched: bool = False) -> dict[str, set[datetime]]:
    """No (meter, ts) twice, every value true, and every missing instant explained.

    Rejections stay (raw is append-only): once a later run fetched a refused value clean,
    its instant is both stored and rejected, so ``refetched`` allows that overlap."""
    expected = quarters(START - LOOKBACK, END)
    rows = stored_readings(pipeline)
    keys = [(m, ts) for m, ts, *_ in rows]
    assert len(keys) == len(set(keys)), "a reading is stored twice"
    present: dict[str, set[datetime]] = {m: set() for m in METERS}
    for meter, ts, imp, exp, source in rows:
        assert source == "smartme"
        assert (imp, exp) == truth(meter, ts), (meter, ts)
        present[meter].add(ts)
    rejected = rejected_instants(pipeline)
    for meter in METERS:
        assert present[meter] <= set(expected), f"{meter}: readings outside the window"
        overlap = present[meter] & rejected[meter]
        assert refetched or not overlap, f"{meter}: stored and rejected"
        unexplained = set(expected) - present[meter] - rejected[meter]
        assert not unexplained, f"{meter}: lost without a rejection: {sorted(unexplained)[:3]}"
    return present


def drop_segment(present: set[datetime], meter: str) -> tuple[datetime, datetime] | None:
    """The readings either side of the meter exchange: the energy between them counts 0."""
    drop_at = DROP.get(meter)
    if drop_at is None:
        return None
    before = max(ts for ts in present if ts < drop_at)
    after = min(ts for ts in present if ts >= drop_at)
    return before, after


def check_intervals_against_truth(pipeline, present: dict[str, set[datetime]]) -> int:
    """Exact where both boundaries were read; estimated exactly where the rule book says;
    and between any two readings the energies add up to what the registers moved.

    Returns how many intervals were estimated because of a gap (not the exchange)."""
    rows = pipeline.rows("int_meter_intervals", "meter_id, interval_start")
    gaps = 0
    for meter in METERS:
        mine = [r for r in rows if r["meter_id"] == meter]
        seen = present[meter]
        starts = quarters(min(seen), max(seen) - QUARTER)
        assert [r["interval_start"] for r in mine] == starts, meter
        segment = drop_segment(seen, meter)
        since, moved = min(seen), [0.0, 0.0]
        for row in mine:
            b, e = row["interval_start"], row["interval_start"] + QUARTER
            in_drop = segment is not None and b < segment[1] and e > segment[0]
            gap = b not in seen or e not in seen
            gaps += gap and not in_drop
            assert row["estimated"] == (gap or in_drop), (meter, b)
            energy = (row["import_kwh"], row["export_kwh"])
            moved = [moved[0] + energy[0], moved[1] + energy[1]]
            if not (gap or in_drop):
                assert energy == pytest.approx(delta(meter, b, e), abs=1e-6), (meter, b)
            if e in seen:  # a reading: the interpolated stretch since the last one adds up
                want = (0.0, 0.0) if segment == (since, e) else delta(meter, since, e)
                assert moved == pytest.approx(want, abs=1e-6), (meter, since, e)
                since, moved = e, [0.0, 0.0]
    return gaps


def delta(meter: str, b: datetime, e: datetime) -> tuple[float, float]:
    (i0, x0), (i1, x1) = truth(meter, b), truth(meter, e)
    return i1 - i0, x1 - x0


def snapshot(pipeline) -> dict[str, list[dict]]:
    return {
        table: [
            {k: v for k, v in row.items() if k not in IGNORED}
            for row in pipeline.rows(table, order)
        ]
        for table, order in SNAPSHOT.items()
    }


def rejection_set(pipeline) -> set[tuple]:
    return set(query(pipeline, "select meter_id, record, reason from {raw}.rejected_readings"))


def test_all_faults_at_once_lose_nothing_double_nothing_and_replay_changes_nothing(pipeline, sim):
    pipeline.batteries(batteries())
    reset(sim)
    first = ingest(pipeline, sim)

    injected = get_stats(sim)["faults"]
    for kind in ("429", "500", "malformed", "hang", "missing", "duplicate", "out_of_order"):
        assert injected.get(kind, 0) > 0, f"no {kind} fault struck: {injected}"
    present = check_raw_against_truth(pipeline)
    stored = query(pipeline, "select count(*) from {raw}.rejected_readings")[0][0]
    assert sum(m.rejected for m in first.meters) == stored > 0  # a spoiled duplicate: twice

    pipeline.run()
    with pipeline.engine.connect() as conn:
        marked = {
            r[0]
            for r in conn.execute(text(f"select meter_id from {pipeline.raw}.ingest_watermarks"))
        }
    refused = {m.meter_id for m in first.meters if m.rejected}
    assert refused and not marked & refused  # refused values are fetched again next run
    gaps = check_intervals_against_truth(pipeline, present)
    assert gaps, "no value went missing: the test does not exercise interpolation"
    before = snapshot(pipeline)
    readings, rejections = stored_readings(pipeline), rejection_set(pipeline)

    # The same window again, and the simulator replays the very same answers.
    reset(sim)
    second = ingest(pipeline, sim)
    assert second.loaded == 0
    assert [m.received for m in second.meters] == [m.received for m in first.meters]
    assert stored_readings(pipeline) == readings
    assert rejection_set(pipeline) == rejections  # nothing new refused
    pipeline.run()
    assert snapshot(pipeline) == before

    # A later run gets the spoiled values clean: the gaps fill and every interval is true.
    set_faults(sim, rate_missing=0.0)
    try:
        ingest(pipeline, sim)
    finally:
        set_faults(sim, rate_missing=FAULTS["rate_missing"])
    full = {m: set(quarters(START - LOOKBACK, END)) for m in METERS}
    assert check_raw_against_truth(pipeline, refetched=True) == full
    # complete only now: each meter's watermark moved to the window's end
    with pipeline.engine.connect() as conn:
        marks = dict(
            conn.execute(
                text(f"select meter_id, complete_until from {pipeline.raw}.ingest_watermarks")
            ).all()
        )
    assert marks == dict.fromkeys(METERS, END)
    pipeline.run()
    assert check_intervals_against_truth(pipeline, full) == 0
    incremental = snapshot(pipeline)
    pipeline.run(full_refresh=True)
    assert snapshot(pipeline) == incremental
