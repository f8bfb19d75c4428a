"""A value the cloud keeps refusing to send properly is quarantined once, not every run.

The smart-me ingest fetches a meter with a refused value again from where it was complete
(so a value sent properly later is not lost); before, every such run wrote the same
rejection to ``raw.rejected_readings`` again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import text

from vbatt.ingest.load import ingest_smartme
from vbatt.ingest.smartme import SmartMeClient, SmartMeConfig

START = datetime(2025, 6, 1, tzinfo=UTC)
BAD = START + timedelta(minutes=30)


def _cloud(request: httpx.Request, twice: bool = False) -> httpx.Response:
    """Quarter-hour registers of M1; the one at BAD always arrives as null (``twice``: in
    each answer two copies of it, as a cloud that repeats a record sends it)."""
    if request.url.path == "/Devices/M1":
        return httpx.Response(200, json={"id": "M1", "counterReadingImport": 3.0})
    q = request.url.params
    ts = datetime.fromisoformat(q["startDate"])
    end = datetime.fromisoformat(q["endDate"])
    ts += (-ts.minute % 15) * timedelta(minutes=1)
    rows = []
    while ts <= end:
        k = (ts - START) / timedelta(minutes=15)
        value = None if ts == BAD else 0.1 * k
        rows.append(
            {
                "date": ts.strftime("%Y-%m-%dT%H:%M:%S.0000000Z"),
                "deviceId": "M1",
                "values": [
                    {"obis": "1-0:1.8.0*255", "value": value},
                    {"obis": "1-0:2.8.0*255", "value": 0.0},
                ],
            }
        )
        if twice and ts == BAD:
            rows.append(rows[-1])
        ts += timedelta(minutes=15)
    return httpx.Response(200, json=rows)


def test_a_value_the_cloud_keeps_refusing_is_quarantined_once(pipeline):
    config = SmartMeConfig(base_url="https://api.smart-me.com", api_key="k", rate=None)
    runs = []
    with SmartMeClient(config, transport=httpx.MockTransport(_cloud)) as client:
        for hours in (2, 3, 4):  # three runs, each later; M1 never gets complete
            runs.append(
                ingest_smartme(
                    pipeline.engine,
                    client,
                    start=START,
                    end=START + timedelta(hours=hours),
                    lookback=timedelta(0),
                    meter_ids=["M1"],
                    raw_schema=pipeline.raw,
                )
            )
    assert [r.meters[0].rejected for r in runs] == [1, 1, 1]  # refused on every run
    with pipeline.engine.connect() as conn:
        held = conn.execute(
            text(f"select meter_id, reason from {pipeline.raw}.rejected_readings")
        ).all()
        readings = conn.execute(
            text(f"select count(distinct ts) from {pipeline.raw}.meter_readings")
        ).scalar()
    assert held == [("M1", "import register 1-0:1.8.0 is null or missing")]
    assert readings == 4 * 4  # 00:00 .. 04:00 without the refused 00:30


def test_a_refused_value_sent_twice_in_one_run_is_quarantined_as_reported(pipeline):
    """Only earlier runs make a rejection "already recorded": within a run, the table holds
    what the load reports, so a bad record sent twice in one answer is held twice."""
    config = SmartMeConfig(base_url="https://api.smart-me.com", api_key="k", rate=None)
    transport = httpx.MockTransport(lambda request: _cloud(request, twice=True))
    runs = []
    with SmartMeClient(config, transport=transport) as client:
        for hours in (2, 3):
            runs.append(
                ingest_smartme(
                    pipeline.engine,
                    client,
                    start=START,
                    end=START + timedelta(hours=hours),
                    lookback=timedelta(0),
                    meter_ids=["M1"],
                    raw_schema=pipeline.raw,
                )
            )
    assert [r.meters[0].rejected for r in runs] == [2, 2]
    with pipeline.engine.connect() as conn:
        held = conn.execute(
            text(f"select load_id, reason from {pipeline.raw}.rejected_readings")
        ).all()
    assert len(held) == runs[0].meters[0].rejected  # both copies, both of the first load
    assert len({load_id for load_id, _ in held}) == 1
